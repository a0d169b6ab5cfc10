//! SELinux guests (enforcing or permissive): every file, directory and symlink the plan puts at
//! a new inode gets the label the guest's own policy gives its path and type
//! (`/etc/selinux/SELINUXTYPE/contexts/files/file_contexts`, read by [`super::file_contexts`]),
//! as a [`ChangeKind::Label`] step after the others; the plan notes "labelled from the guest's
//! file_contexts (N files)". Where that is not possible (no `SELINUXTYPE=`, no readable or
//! valid file_contexts, a path the policy gives no label) the guest gets `/.autorelabel`
//! instead and relabels itself at its first boot, and the note says why; where a filesystem's
//! writer cannot set the label, [`super::plan::label`] falls back the same way when applying.
//! Files edited in place keep their inode and label.

use super::draft::Draft;
use super::facts::GuestFacts;
use super::file_contexts::{FileContexts, FileType};
use super::plan::{Change, ChangeKind, AUTORELABEL_REASON};
use super::LinuxError;

/// `SELINUX=` from `/etc/selinux/config` text.
pub fn mode(config: &str) -> Option<String> {
    value(config, "SELINUX=").map(|v| v.to_ascii_lowercase())
}

/// `SELINUXTYPE=` (the policy's name: `targeted`, `default`...) from `/etc/selinux/config`.
pub fn policy_type(config: &str) -> Option<String> {
    value(config, "SELINUXTYPE=")
}

fn value(config: &str, key: &str) -> Option<String> {
    config
        .lines()
        .filter_map(|l| l.trim().strip_prefix(key))
        .next_back()
        .map(|v| v.trim().trim_matches('"').to_owned())
}

/// The labels of what the plan writes, or why the policy cannot give them.
fn labels(d: &Draft<'_>, config: Option<&str>) -> Result<Vec<(String, String)>, String> {
    let Some(config) = config else { return Err("no /etc/selinux/config names the policy".into()) };
    let Some(ty) = policy_type(config).filter(|t| !t.is_empty()) else {
        return Err("/etc/selinux/config names no SELINUXTYPE".into());
    };
    let fc = match FileContexts::load(d.fs(), &ty) {
        Ok(Some(fc)) => fc,
        Ok(None) => return Err(format!("/etc/selinux/{ty}/contexts/files/file_contexts is missing")),
        Err(e) => return Err(e.to_string()),
    };
    let written = d.written().map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(written.len());
    for (path, kind) in written {
        let Some(ft) = FileType::of(kind) else { continue };
        match fc.lookup(&path, ft) {
            Ok(Some(ctx)) => out.push((path, ctx.to_owned())),
            Ok(None) => return Err(format!("the policy gives {path} no label")),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(out)
}

/// Plans the labels (or the relabel flag). Runs after every other step, so it sees all they
/// write.
pub fn plan(d: &mut Draft<'_>, facts: &GuestFacts) -> Result<(), LinuxError> {
    let config = d.read("/etc/selinux/config")?;
    let on = match &config {
        Some(t) => matches!(mode(t).as_deref(), Some("enforcing") | Some("permissive")),
        None => facts.selinux,
    };
    if !on || d.lstat("/.autorelabel")?.is_some() {
        return Ok(());
    }
    match labels(d, config.as_deref()) {
        Ok(list) => {
            let n = list.len();
            for (path, context) in list {
                d.other(Change { path, kind: ChangeKind::Label { context }, reason: "SELinux: its label in the guest's policy (file_contexts)".into() });
            }
            d.note(format!("SELinux: labelled from the guest's file_contexts ({n} files)"));
        }
        Err(why) => {
            d.create("/.autorelabel", String::new(), 0o644, AUTORELABEL_REASON)?;
            d.note(format!("SELinux: not labelled from the guest's file_contexts ({why}): /.autorelabel makes the guest relabel itself at its first boot"));
        }
    }
    Ok(())
}
