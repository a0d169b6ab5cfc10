//! A directory whose da B+tree needs three levels: over 127 000 names at the 4 KiB minimum
//! directory block, too many to add one at a time in a test (each add reads the whole
//! directory), so they are written by the rebuild every add and remove of this writer ends
//! in, as hard links to one file (xfs_repair -n then checks its link count). Names are then
//! added, renamed and removed through the public API down the three levels, and rebuilds
//! with fewer names take the directory back to two levels, leaf, block and shortform form.
//! Judged by xfs_repair -n and xfs_db (`ls`, the da root's level, the inode's format), and
//! the kernel's readdir where a loop mount works; the test skips in one line without xfsprogs.

use super::create::Txn;
use super::Xfs;
use crate::fs::Volume;
use ferry_formats::disk::{BlockDevice, CowOverlay, RawImage};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

fn have(cmd: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {cmd}")]).output().is_ok_and(|o| o.status.success())
}

fn extract(ov: &CowOverlay<RawImage>, to: &Path) {
    let mut f = std::fs::File::create(to).unwrap();
    f.set_len(ov.size()).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < ov.size() {
        ov.read_at(&mut buf, at).unwrap();
        if buf.iter().any(|&b| b != 0) {
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(&buf).unwrap();
        }
        at += buf.len() as u64;
    }
}

fn xfs_db(img: &Path, cmds: &[&str]) -> String {
    let mut c = Command::new("xfs_db");
    c.args(["-r", "-f"]);
    for k in cmds {
        c.args(["-c", k]);
    }
    let o = c.arg(img).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// `xfs_repair -n` is clean; xfs_db lists `want` names in /d besides "." and ".."; the
/// directory is in `form` ("btree3", "btree2": node form with a da root of that many
/// levels; "leaf", "block", "shortform").
fn judge(ov: &CowOverlay<RawImage>, img: &Path, want: usize, form: &str) {
    extract(ov, img);
    let o = Command::new("xfs_repair").args(["-n", "-f"]).arg(img).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "xfs_repair -n at {want} names:\n{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let ls = xfs_db(img, &["path /d", "ls"]);
    assert_eq!(ls.lines().filter(|l| l.ends_with("(good)")).count(), want + 2, "xfs_db ls /d");
    let core = xfs_db(img, &["path /d", "print core.format"]);
    let bs: u64 = xfs_db(img, &["sb 0", "print blocksize"]).trim().trim_start_matches("blocksize = ").parse().unwrap();
    // "data offset 8388608 startblock 1234 (0/1234) count 1 flag 0"
    let bmap = xfs_db(img, &["path /d", "bmap"]);
    let leaf_space = bmap.lines().filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok()).any(|o| o >= (32u64 << 30) / bs);
    let seen = if core.contains("core.format = 1 (local)") {
        "shortform".to_string()
    } else if !leaf_space {
        "block".to_string()
    } else {
        let root = xfs_db(img, &["path /d", &format!("dblock {}", (32u64 << 30) / bs), "print"]);
        // "nhdr.level = 2" (v5) or "hdr.level = 2" (v4) in a da node; a leaf block has none.
        match root.lines().find_map(|l| l.split_once("hdr.level = ")) {
            Some((_, level)) => format!("btree{}", level.trim().parse::<u32>().unwrap() + 1),
            None => "leaf".to_string(),
        }
    };
    assert_eq!(seen, form, "{want} names");
    // Where this host can loop-mount XFS (root, loop devices, v4 support for v4), the
    // kernel's verifiers and readdir see the same names.
    let mnt = img.with_extension("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount").args(["-t", "xfs", "-o", "loop,ro"]).arg(img).arg(&mnt).output().is_ok_and(|o| o.status.success());
    if mounted {
        let listed = std::fs::read_dir(mnt.join("d")).map(|d| d.filter(Result::is_ok).count());
        let _ = Command::new("umount").arg(&mnt).status();
        assert_eq!(listed.unwrap(), want, "readdir through a loop mount");
    }
}

fn three_levels(args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("fs.img");
    std::fs::File::create(&img).unwrap().set_len(320 << 20).unwrap();
    let o = Command::new("mkfs.xfs").args(["-q", "-f"]).args(args).arg(&img).output().unwrap();
    assert!(o.status.success(), "mkfs.xfs {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    let ov = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    let mut x = Xfs::open(Volume::new(&ov, 0, ov.size(), "fs.img").unwrap(), "fs.img").unwrap();
    x.create_file("/target", b"linked\n", 0o644, 0, 0).unwrap();
    x.mkdir("/d", 0o755, 0, 0).unwrap();
    let work = dir.path().join("work.img");
    // /d holds `n` names, all links to /target.
    let set = |x: &mut Xfs, n: usize| {
        let target = x.resolve("/target", true).unwrap();
        let root = x.resolve("/", true).unwrap().ino;
        let names: Vec<(Vec<u8>, u64, u8)> = (0..n).map(|i| (format!("n{i:05x}").into_bytes(), target.ino, 1)).collect();
        let mut t = Txn::default();
        let mut d = x.resolve("/d", true).unwrap();
        x.leaf_rebuild(&mut t, &mut d, root, &names, "/d").unwrap();
        let mut target = target;
        target.set_nlink(1 + n as u32);
        t.nodes.push(d);
        t.nodes.push(target);
        x.commit(t).unwrap();
    };
    // 504 (v5) or 510 (v4) half-full leaves fit under a two-level root: 135 000 names do not.
    let n = 135_000;
    set(&mut x, n);
    judge(&ov, &work, n, "btree3");
    // Through the public API, down the three levels: an add into a leaf's free room, a
    // rename, a removal.
    x.create_file("/d/added", b"added\n", 0o644, 0, 0).unwrap();
    x.rename("/d/n00007", "/d/renamed").unwrap();
    x.unlink("/d/n00008").unwrap();
    assert_eq!(x.read_file("/d/renamed", 100).unwrap(), b"linked\n");
    assert_eq!(x.read_file("/d/added", 100).unwrap(), b"added\n");
    judge(&ov, &work, n, "btree3");
    x.unlink("/d/added").unwrap();
    for (n, form) in [(20_000, "btree2"), (400, "leaf"), (100, "block"), (5, "shortform")] {
        set(&mut x, n);
        judge(&ov, &work, n, form);
    }
}

#[test]
fn da_tree_three_levels_v5_and_v4() {
    if !have("mkfs.xfs") || !have("xfs_repair") || !have("xfs_db") {
        eprintln!("skipping: xfsprogs not installed");
        return;
    }
    three_levels(&["-m", "rmapbt=0"]);
    three_levels(&["-m", "crc=0"]);
}
