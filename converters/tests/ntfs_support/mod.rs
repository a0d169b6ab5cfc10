//! Shared by the NTFS writer tests: volumes made with mkntfs and filled through an ntfs-3g
//! FUSE mount, the overlay materialized, and the oracles (ntfsfix, ntfsresize's cluster
//! accounting, ntfs-3g's view of the tree).
#![allow(dead_code)]

use ferry_formats::disk::BlockDevice;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn have(tool: &str) -> bool {
    let ok = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: {tool} is not installed");
    }
    ok
}

pub fn tools() -> bool {
    have("mkntfs") && have("ntfs-3g") && have("ntfsfix") && have("ntfsresize") && have("ntfsls") && have("setfattr") && have("getfattr")
}

/// An mkntfs volume of `mb` MiB (cluster size `cluster` bytes, 0: mkntfs's choice).
pub fn mkvol(dir: &Path, name: &str, mb: u64, cluster: u32) -> PathBuf {
    let img = dir.join(name);
    std::fs::File::create(&img).unwrap().set_len(mb << 20).unwrap();
    let mut args = vec!["-q".to_string(), "-F".into(), "-f".into(), "-L".into(), "Test".into()];
    if cluster != 0 {
        args.extend(["-c".into(), cluster.to_string()]);
    }
    args.push(img.to_str().unwrap().into());
    let o = Command::new("mkntfs").args(&args).output().unwrap();
    assert!(o.status.success(), "mkntfs: {}", String::from_utf8_lossy(&o.stderr));
    img
}

/// Mounts `img` with ntfs-3g at `mnt`; false (one line printed) if FUSE is not usable.
pub fn mount(img: &Path, mnt: &Path, ro: bool) -> bool {
    std::fs::create_dir_all(mnt).unwrap();
    let mut c = Command::new("ntfs-3g");
    if ro {
        c.args(["-o", "ro"]);
    }
    let ok = c.args([img, mnt]).output();
    match ok {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!("skipped: ntfs-3g cannot mount here: {}", String::from_utf8_lossy(&o.stderr).trim());
            false
        }
        Err(e) => {
            eprintln!("skipped: ntfs-3g: {e}");
            false
        }
    }
}

/// Unmounts, retrying while the mount is busy (ntfs-3g may still be closing files on a
/// loaded machine).
pub fn umount(mnt: &Path) {
    let mut last = String::new();
    for _ in 0..50 {
        let o = Command::new("umount").arg(mnt).output().unwrap();
        if o.status.success() {
            return;
        }
        last = String::from_utf8_lossy(&o.stderr).trim().to_string();
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("umount {}: {last}", mnt.display());
}

/// What ntfs-3g sees under `mnt`: path → Some(content) for files (or
/// `<unreadable>`), None for directories.
pub fn walk(mnt: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    fn go(base: &Path, d: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = format!("/{}", p.strip_prefix(base).unwrap().to_str().unwrap());
            if e.file_type().unwrap().is_dir() {
                out.insert(rel, None);
                go(base, &p, out);
            } else {
                // A reparse point ntfs-3g has no plugin for reads as an error: kept as a
                // marker, so it must stay unreadable.
                let data = std::fs::read(&p).unwrap_or_else(|_| b"<unreadable>".to_vec());
                out.insert(rel, Some(data));
            }
        }
    }
    go(mnt, mnt, &mut out);
    out
}

pub fn materialize(dev: &dyn BlockDevice, out: &Path) {
    let mut b = vec![0u8; dev.size() as usize];
    dev.read_at(&mut b, 0).unwrap();
    std::fs::write(out, b).unwrap();
}

/// ntfsfix (no changes) and ntfsresize's check that every cluster in use is accounted
/// for in `$Bitmap` and no more.
pub fn check(img: &Path) {
    let o = Command::new("ntfsfix").args(["--no-action"]).arg(img).output().unwrap();
    assert!(o.status.success(), "ntfsfix: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let o = Command::new("ntfsresize").args(["--info", "--no-action", "--force"]).arg(img).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success() && text.contains("Accounting clusters") && !text.contains("ERROR"), "ntfsresize: {text}");
    mirror_equal(img);
}

/// `$MFTMirr` (ntfscat of record 1) equals the first records of `$MFT` (record 0).
pub fn mirror_equal(img: &Path) {
    let cat = |i: &str| {
        let o = Command::new("ntfscat").args(["-i", i]).arg(img).output().unwrap();
        assert!(o.status.success(), "ntfscat -i {i}: {}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    };
    let (mft, mirr) = (cat("0"), cat("1"));
    assert!(mirr.len() >= 4096 && mft.len() > mirr.len(), "$MFTMirr {} bytes, $MFT {}", mirr.len(), mft.len());
    assert!(mft[..mirr.len()] == mirr[..], "$MFTMirr equals the first records of $MFT");
}

/// `ntfsls` of a directory: its long names, or with `dos` its DOS 8.3 names.
pub fn ntfsls(img: &Path, dir: &str, dos: bool) -> Vec<String> {
    let mut c = Command::new("ntfsls");
    c.args(["-f", "-p", dir]);
    if dos {
        c.arg("-x");
    }
    let o = c.arg(img).output().unwrap();
    assert!(o.status.success(), "ntfsls: {}", String::from_utf8_lossy(&o.stderr));
    let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().filter(|l| *l != "." && *l != "..").map(|l| l.to_string()).collect();
    v.sort();
    v
}

pub fn ntfscat(img: &Path, path: &str) -> Vec<u8> {
    let o = Command::new("ntfscat").arg(img).arg(path).output().unwrap();
    assert!(o.status.success(), "ntfscat {path}: {}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}
