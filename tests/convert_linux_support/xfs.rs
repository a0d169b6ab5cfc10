//! XFS guest disks built in the tests (`mkfs.xfs -p` protofile from a tree of files) and
//! XFS roots read back with xfsprogs as the oracle: `xfs_repair -n`, files through `xfs_db`'s
//! `bmap` read straight from the image; the cached Debian guests with XFS filesystems.

use super::{cached_guest, guest, run};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

/// An `mkfs.xfs` protofile describing `tree` (directories, regular files; everything mode
/// 755/644 and owned by root).
fn protofile(tree: &Path) -> String {
    fn walk(dir: &Path, depth: usize, out: &mut String) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            let pad = " ".repeat(depth);
            if p.is_dir() {
                out.push_str(&format!("{pad}{name} d--755 0 0\n"));
                walk(&p, depth + 1, out);
                out.push_str(&format!("{pad}$\n"));
            } else {
                out.push_str(&format!("{pad}{name} ---644 0 0 {}\n", p.display()));
            }
        }
    }
    let mut s = String::from("/dev/null\n0 0\nd--755 0 0\n");
    walk(tree, 1, &mut s);
    s.push_str("$\n");
    s
}

/// A `size`-byte raw disk: MBR, one Linux partition at 1 MiB holding an XFS made by
/// `mkfs.xfs MKFS_ARGS -p` from `tree`; the directories `labelled` get a 28-byte
/// `security.selinux` (`xfs_db attr_set`, value "vvv...").
pub fn mbr_xfs_disk(raw: &Path, size: u64, tree: &Path, mkfs_args: &[&str], labelled: &[&str]) {
    super::partitioned(raw, size, "label: dos\nstart=2048, type=83\n");
    let dir = raw.parent().unwrap();
    let proto = dir.join("xfs.proto");
    std::fs::write(&proto, protofile(tree)).unwrap();
    let part = dir.join("xfs.part");
    std::fs::File::create(&part).unwrap().set_len(size - (1 << 20)).unwrap();
    run(Command::new("mkfs.xfs").args(["-q", "-f"]).args(mkfs_args).arg("-p").arg(&proto).arg(&part));
    for dir in labelled {
        run(Command::new("xfs_db")
            .args(["-x", "-f", "-c", &format!("path {dir}"), "-c", "attr_set -s -v 28 selinux"])
            .arg(&part));
    }
    run(Command::new("dd")
        .arg(format!("if={}", part.display()))
        .arg(format!("of={}", raw.display()))
        .args(["bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"]));
    std::fs::remove_file(&part).unwrap();
    std::fs::remove_file(&proto).unwrap();
}

/// Panics unless `xfs_repair -n` finds the XFS image `part` clean (exit 0).
pub fn xfs_repair_clean(part: &Path, what: &str) {
    let o = Command::new("xfs_repair").args(["-n", "-f"]).arg(part).output().unwrap();
    assert!(
        o.status.success(),
        "xfs_repair -n on {what}:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `xfs_db -r -c CMD...` on `part`: stdout and stderr.
pub fn xfs_db(part: &Path, cmds: &[&str]) -> String {
    let mut c = Command::new("xfs_db");
    c.args(["-r", "-f"]);
    for cmd in cmds {
        c.arg("-c").arg(cmd);
    }
    let o = c.arg(part).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn db_num(out: &str, field: &str) -> Option<u64> {
    out.lines().find_map(|l| l.strip_prefix(&format!("{field} = ")))?.trim().parse().ok()
}

/// The file `path` (no symlinks on the way) of the XFS image `part`, as xfs_db maps it
/// (`bmap`), read straight from the image; None when xfs_db does not find it.
pub fn xfs_read(part: &Path, path: &str) -> Option<Vec<u8>> {
    let sb = xfs_db(part, &["sb 0", "print blocksize agblocks"]);
    let (bs, agblocks) = (db_num(&sb, "blocksize").unwrap(), db_num(&sb, "agblocks").unwrap());
    let size = db_num(&xfs_db(part, &[&format!("path {path}"), "print core.size"]), "core.size")?;
    let img = std::fs::File::open(part).unwrap();
    let mut out = vec![0u8; size as usize];
    for l in xfs_db(part, &[&format!("path {path}"), "bmap"]).lines() {
        // data offset 0 startblock 32778 (1/10) count 1 flag 0
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 8 || w[0] != "data" {
            continue;
        }
        let off: u64 = w[2].parse().unwrap();
        let (ag, agbno) = w[5].trim_matches(|c| c == '(' || c == ')').split_once('/').unwrap();
        let (ag, agbno): (u64, u64) = (ag.parse().unwrap(), agbno.parse().unwrap());
        let count: u64 = w[7].parse().unwrap();
        if w.get(9) == Some(&"1") {
            continue; // unwritten: reads as zeros
        }
        let start = off * bs;
        if start >= size {
            continue;
        }
        let n = (count * bs).min(size - start) as usize;
        img.read_exact_at(&mut out[start as usize..start as usize + n], (ag * agblocks + agbno) * bs)
            .unwrap();
    }
    Some(out)
}

/// Whether `path`'s inode holds the one 28-byte `security.selinux` that
/// [`mbr_xfs_disk`] gives labelled directories (`xfs_db print a`).
pub fn xfs_labelled(part: &Path, path: &str) -> bool {
    let out = xfs_db(part, &[&format!("path {path}"), "print a"]);
    out.contains("a.sfattr.hdr.count = 1")
        && out.contains("a.sfattr.list[0].secure = 1")
        && out.contains("a.sfattr.list[0].name = \"selinux\"")
        && out.contains(&format!("a.sfattr.list[0].value = \"{}\"", "v".repeat(28)))
}

/// [`xfs_read`] as text; panics when the file is missing.
pub fn xfs_cat(part: &Path, path: &str) -> String {
    String::from_utf8(xfs_read(part, path).unwrap_or_else(|| panic!("xfs_db finds no {path}"))).unwrap()
}

/// The cached Debian guest NAME with XFS filesystems ([`guest`], needing `tools` too): its
/// script fills an XFS through a loop mount, so building it needs loop devices and the host
/// kernel's xfs (a cached build needs neither); None, with the reason printed, otherwise.
pub fn xfs_guest(name: &str, tools: &[&str]) -> Option<std::path::PathBuf> {
    if cached_guest(name).is_none() {
        let _ = Command::new("modprobe").arg("xfs").output();
        let xfs = std::fs::read_to_string("/proc/filesystems").is_ok_and(|f| f.lines().any(|l| l.trim_end().ends_with("\txfs")));
        if !Path::new("/dev/loop-control").exists() || !xfs {
            eprintln!("skipped: building the {name} guest needs loop devices and the host kernel's xfs");
            return None;
        }
    }
    guest(name, tools)
}
