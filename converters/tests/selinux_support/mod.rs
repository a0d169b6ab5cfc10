//! A real SELinux policy's file labelling rules for tests, and `matchpathcon` as the oracle of
//! the label a path gets. The policy is Debian's reference policy (`selinux-policy-default`,
//! downloaded by tests/run.sh into `$FERRY_CACHE/selinux-policy-default/`): its package ships
//! compiled modules only, so the `file_contexts` text is taken from each module with
//! `semodule_unpackage` (base first, then the modules in name order) into a temporary
//! directory; nothing is installed on the host.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn have(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        || ["/usr/sbin", "/sbin"].iter().any(|d| Path::new(d).join(tool).is_file())
}

/// Writes Debian's reference policy as `DIR/file_contexts` and `DIR/file_contexts.subs_dist`
/// and returns the first's path; `None` (with one line said) when the package or a tool is
/// missing.
pub fn reference_policy(dir: &Path) -> Option<PathBuf> {
    let tools = ["matchpathcon", "semodule_unpackage", "dpkg-deb", "bunzip2"];
    if let Some(t) = tools.iter().find(|t| !have(t)) {
        eprintln!("skipped: {t} not installed (tests/run.sh installs selinux-utils, semodule-utils, bzip2)");
        return None;
    }
    let cache = std::env::var_os("FERRY_CACHE").map(PathBuf::from).unwrap_or_else(|| "/var/tmp/ferry-cache".into());
    let debs = cache.join("selinux-policy-default");
    let deb = std::fs::read_dir(&debs).ok().and_then(|r| {
        r.filter_map(|e| e.ok().map(|e| e.path())).find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("selinux-policy-default_") && n.ends_with(".deb")))
    });
    let Some(deb) = deb else {
        eprintln!("skipped: no selinux-policy-default .deb in {} (tests/run.sh downloads it)", debs.display());
        return None;
    };
    let x = dir.join("deb");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&x));
    let mods = x.join("usr/share/selinux/default");
    let mut names: Vec<String> = std::fs::read_dir(&mods)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok()?.strip_suffix(".pp.bz2").map(str::to_owned))
        .collect();
    names.sort();
    names.sort_by_key(|n| n != "base");
    let mut fc = Vec::new();
    for n in &names {
        let pp = dir.join(format!("{n}.pp"));
        let o = Command::new("bunzip2").arg("-c").arg(mods.join(format!("{n}.pp.bz2"))).output().unwrap();
        assert!(o.status.success(), "bunzip2 {n}");
        std::fs::write(&pp, &o.stdout).unwrap();
        let (m, f) = (dir.join(format!("{n}.mod")), dir.join(format!("{n}.fc")));
        run(Command::new("semodule_unpackage").arg(&pp).arg(&m).arg(&f));
        fc.extend(std::fs::read(&f).unwrap_or_default());
        for p in [pp, m, f] {
            let _ = std::fs::remove_file(p);
        }
    }
    let out = dir.join("file_contexts");
    std::fs::write(&out, fc).unwrap();
    std::fs::copy(x.join("etc/selinux/default/contexts/files/file_contexts.subs_dist"), dir.join("file_contexts.subs_dist")).unwrap();
    std::fs::remove_dir_all(&x).unwrap();
    Some(out)
}

fn run(c: &mut Command) {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{c:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// `matchpathcon -N -f FC -m TYPE PATH...`: each path's context, `<<none>>` for none.
/// TYPE is matchpathcon's: file, dir, lnk_file, chr_file, blk_file, sock_file, pipe. With
/// `-m` it looks the path up as given (no lstat or realpath on the host).
pub fn matchpathcon(fc: &Path, ty: &str, paths: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for chunk in paths.chunks(500) {
        let o = Command::new("matchpathcon").arg("-N").arg("-f").arg(fc).args(["-m", ty]).args(chunk).output().unwrap();
        assert!(o.status.success(), "matchpathcon: {}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8(o.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), chunk.len(), "{text}");
        for (l, p) in lines.iter().zip(chunk) {
            let (path, ctx) = l.split_once('\t').unwrap();
            let given = if p.len() > 1 { p.strip_suffix('/').unwrap_or(p) } else { p };
            assert_eq!(path, given);
            out.push(ctx.to_owned());
        }
    }
    out
}
