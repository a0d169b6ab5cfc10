//! The conversion plan: an ordered list of changes, printable for `--dry-run`, serialisable for
//! `--json`, and [`apply`]-able to a [`GuestFs`]. Applying is idempotent: a change whose result
//! is already in place is skipped, so applying a plan twice changes nothing the second time.

use super::diff::line_diff;
use super::facts::InitramfsGenerator;
use super::LinuxError;
use crate::guestfs::{FileKind, GuestFs, GuestFsError};
use serde::Serialize;
use std::fmt;

/// One change to the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The guest path changed (for [`ChangeKind::InitramfsRebuild`], the initramfs).
    pub path: String,
    /// What is done.
    #[serde(flatten)]
    pub kind: ChangeKind,
    /// Why, in one line (several reasons joined with `; `).
    pub reason: String,
}

/// The kinds of change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeKind {
    /// Replace a text file's contents.
    Edit { before: String, after: String },
    /// Create a file that does not exist (parents created as needed, mode 0755).
    Create { contents: String, mode: u32 },
    /// Remove a file or symlink.
    Delete,
    /// Create (or retarget) a symbolic link.
    Symlink { target: String },
    /// Mask a systemd unit: `path` becomes a symlink to `/dev/null`.
    Mask,
    /// Rename a file to `to`.
    Rename { to: String },
    /// Create `path` (parents as needed) as a byte copy of the guest file `from`: boot loaders
    /// on the ESP (FAT, whose files get their SELinux label from the mount, never an xattr).
    Copy { from: String },
    /// Set the SELinux label (`security.selinux`) of `path` to `context`, from the guest's own
    /// policy. Labels of rebuilt initramfs images are applied by the caller after the rebuild
    /// ([`apply`] returns them after the rebuild steps; [`label`] applies one).
    Label { context: String },
    /// Rebuild the initramfs of `kernel_version` with the virtio `modules` (done by the caller:
    /// [`apply`] returns these). The old image is kept as `<initrd>.pre-ferry`.
    InitramfsRebuild {
        kernel_version: String,
        generator: InitramfsGenerator,
        modules: Vec<String>,
    },
}

/// The result of planning: changes in order, plus what the user should be told.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Changes, applied in this order.
    pub changes: Vec<Change>,
    /// Facts reported to the user (tools disabled, kernel chosen...).
    pub notes: Vec<String>,
    /// Things the conversion could not handle and left alone.
    pub warnings: Vec<String>,
    /// The virtio device model the guest's kernels need.
    pub virtio: super::kernel::VirtioNeed,
}

impl Plan {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
    /// The guest paths the plan touches, in order (a rename lists both names).
    pub fn paths(&self) -> Vec<String> {
        let mut v = Vec::new();
        for c in &self.changes {
            v.push(c.path.clone());
            if let ChangeKind::Rename { to } = &c.kind {
                v.push(to.clone());
            }
        }
        v
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.changes {
            match &c.kind {
                ChangeKind::Edit { before, after } => {
                    writeln!(f, "edit    {}: {}", c.path, c.reason)?;
                    for line in line_diff(before, after) {
                        writeln!(f, "        {}", shorten(&line))?;
                    }
                }
                ChangeKind::Create { contents, mode } => {
                    writeln!(f, "create  {} (mode {mode:o}): {}", c.path, c.reason)?;
                    for line in contents.lines() {
                        writeln!(f, "        +{line}")?;
                    }
                }
                ChangeKind::Delete => writeln!(f, "delete  {}: {}", c.path, c.reason)?,
                ChangeKind::Symlink { target } => {
                    writeln!(f, "symlink {} -> {target}: {}", c.path, c.reason)?
                }
                ChangeKind::Mask => writeln!(f, "mask    {} -> /dev/null: {}", c.path, c.reason)?,
                ChangeKind::Rename { to } => {
                    writeln!(f, "rename  {} -> {to}: {}", c.path, c.reason)?
                }
                ChangeKind::Copy { from } => writeln!(f, "copy    {from} -> {}: {}", c.path, c.reason)?,
                ChangeKind::Label { context } => writeln!(f, "label   {} {context}: {}", c.path, c.reason)?,
                ChangeKind::InitramfsRebuild {
                    kernel_version,
                    generator,
                    modules,
                } => writeln!(
                    f,
                    "rebuild {} (kernel {kernel_version}, {}, adding {}): {}",
                    c.path,
                    serde_plain(generator),
                    modules.join(" "),
                    c.reason
                )?,
            }
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

/// Cuts a displayed line to 160 characters (grubenv padding is 1 KiB of `#`).
fn shorten(line: &str) -> String {
    match line.char_indices().nth(160) {
        Some((i, _)) => format!("{}... ({} more bytes)", &line[..i], line.len() - i),
        None => line.to_owned(),
    }
}

fn serde_plain(g: &InitramfsGenerator) -> &'static str {
    match g {
        InitramfsGenerator::InitramfsTools => "initramfs-tools",
        InitramfsGenerator::Dracut => "dracut",
        InitramfsGenerator::Mkinitrd => "mkinitrd",
        InitramfsGenerator::Unknown => "unknown generator",
    }
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    /// Indexes (into `plan.changes`) of the changes written.
    pub applied: Vec<usize>,
    /// Indexes of changes already in place, skipped.
    pub already_done: Vec<usize>,
    /// Steps left to the caller (initramfs rebuilds, then the labels of the images they
    /// write), in order.
    pub deferred: Vec<Change>,
    /// Labels that could not be set, each with the fallback taken (`/.autorelabel`).
    pub warnings: Vec<String>,
}

/// Applies `plan` to the guest. Each change is checked first: an edit whose file no longer has
/// the planned `before` contents (and does not already have `after`) is refused, so a stale plan
/// never overwrites what it did not see.
pub fn apply(plan: &Plan, fs: &mut dyn GuestFs) -> Result<ApplyReport, LinuxError> {
    let mut report = ApplyReport::default();
    let rebuilt: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.kind, ChangeKind::InitramfsRebuild { .. }))
        .flat_map(|c| [c.path.clone(), format!("{}.pre-ferry", c.path)])
        .collect();
    for (i, c) in plan.changes.iter().enumerate() {
        if matches!(c.kind, ChangeKind::Label { .. }) && rebuilt.contains(&c.path) {
            report.deferred.push(c.clone());
            continue;
        }
        let done = match &c.kind {
            ChangeKind::Label { .. } => match label(fs, c)? {
                Labelled::Set => true,
                Labelled::AlreadySet => false,
                Labelled::Fallback(w) => {
                    if !report.warnings.contains(&w) {
                        report.warnings.push(w);
                    }
                    true
                }
            },
            _ => apply_one(c, fs)?,
        };
        match (&c.kind, done) {
            (ChangeKind::InitramfsRebuild { .. }, _) => report.deferred.push(c.clone()),
            (_, true) => report.applied.push(i),
            (_, false) => report.already_done.push(i),
        }
    }
    Ok(report)
}

/// What [`label`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Labelled {
    /// The label was written.
    Set,
    /// The file already had it.
    AlreadySet,
    /// The filesystem's writer cannot set it: `/.autorelabel` was created instead (the guest
    /// relabels itself at first boot); the message says so.
    Fallback(String),
}

/// The reason of the `/.autorelabel` flag created when labels cannot be set.
pub const AUTORELABEL_REASON: &str = "SELinux is on and files written host-side are not labelled by its policy: the guest relabels itself at its first boot, as an admin does with touch /.autorelabel";

/// Applies one [`ChangeKind::Label`] change (other kinds: nothing done). The value stored is the
/// context with a terminating NUL, as the kernel stores labels set by `setfiles`.
pub fn label(fs: &mut dyn GuestFs, c: &Change) -> Result<Labelled, LinuxError> {
    let ChangeKind::Label { context } = &c.kind else { return Ok(Labelled::AlreadySet) };
    let mut value = context.as_bytes().to_vec();
    value.push(0);
    if fs.get_xattr(&c.path, "security.selinux")?.as_deref() == Some(&value[..]) {
        return Ok(Labelled::AlreadySet);
    }
    match fs.set_xattr(&c.path, "security.selinux", &value) {
        Ok(()) => Ok(Labelled::Set),
        Err(GuestFsError::Unsupported { reason, .. }) => {
            if fs.lstat("/.autorelabel")?.is_none() {
                fs.write_file("/.autorelabel", b"", 0o644)?;
            }
            Ok(Labelled::Fallback(format!(
                "SELinux: {} not labelled ({reason}): /.autorelabel created, the guest relabels itself at its first boot",
                c.path
            )))
        }
        Err(e) => Err(e.into()),
    }
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Applies one change; `Ok(false)` when it was already in place.
fn apply_one(c: &Change, fs: &mut dyn GuestFs) -> Result<bool, LinuxError> {
    let p = c.path.as_str();
    match &c.kind {
        ChangeKind::Edit { before, after } => {
            let cur = fs.read_file(p)?;
            if cur == after.as_bytes() {
                return Ok(false);
            }
            if cur != before.as_bytes() {
                return Err(LinuxError::Stale { path: p.into() });
            }
            fs.write_file(p, after.as_bytes(), 0o644)?;
        }
        ChangeKind::Create { contents, mode } => {
            if fs.lstat(p)?.is_some() {
                if fs.read_file(p)? == contents.as_bytes() {
                    return Ok(false);
                }
                return Err(LinuxError::Stale { path: p.into() });
            }
            fs.mkdir_p(parent(p), 0o755)?;
            fs.write_file(p, contents.as_bytes(), *mode)?;
        }
        ChangeKind::Delete => {
            if fs.lstat(p)?.is_none() {
                return Ok(false);
            }
            fs.unlink(p)?;
        }
        ChangeKind::Symlink { target } => return ensure_symlink(fs, p, target),
        ChangeKind::Mask => return ensure_symlink(fs, p, "/dev/null"),
        ChangeKind::Rename { to } => {
            if fs.lstat(p)?.is_none() && fs.lstat(to)?.is_some() {
                return Ok(false);
            }
            fs.rename(p, to)?;
        }
        ChangeKind::Copy { from } => {
            let size = fs.lstat(from)?.filter(|st| st.kind == FileKind::File).map(|st| st.size);
            if size.is_none_or(|n| n > super::uefi::MAX_LOADER) {
                return Err(LinuxError::Stale { path: from.clone() });
            }
            let data = fs.read_file(from)?;
            if fs.lstat(p)?.is_some() {
                if fs.read_file(p)? == data {
                    return Ok(false);
                }
                return Err(LinuxError::Stale { path: p.into() });
            }
            fs.mkdir_p(parent(p), 0o755)?;
            fs.write_file(p, &data, 0o644)?;
        }
        ChangeKind::InitramfsRebuild { .. } | ChangeKind::Label { .. } => return Ok(false),
    }
    Ok(true)
}

fn ensure_symlink(fs: &mut dyn GuestFs, p: &str, target: &str) -> Result<bool, LinuxError> {
    match fs.lstat(p)? {
        Some(st) if st.kind == FileKind::Symlink && fs.read_link(p)? == target => return Ok(false),
        Some(st) if st.kind == FileKind::Dir => return Err(LinuxError::Stale { path: p.into() }),
        Some(_) => fs.unlink(p)?,
        None => fs.mkdir_p(parent(p), 0o755)?,
    }
    fs.symlink(target, p)?;
    Ok(true)
}
