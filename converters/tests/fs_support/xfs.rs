//! XFS oracles and fixtures shared by the XFS test files: `xfs_repair -n`, `xfs_db`, loop
//! mounts made by the host kernel, and the overlay copied back to an image.

use super::run;
use ferry_converters::fs::xfs::Xfs;
use ferry_converters::fs::{self, Filesystem, FsError, Volume};
use ferry_formats::disk::{BlockDevice, CowOverlay, RawImage};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Copies the overlay's view to `to` (sparse: zero MiBs are skipped).
pub fn extract(ov: &CowOverlay<RawImage>, to: &Path) {
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

/// `xfs_repair -n` exits 0.
pub fn assert_repair_clean(img: &Path) {
    let o = run("xfs_repair", &["-n", "-f", img.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "xfs_repair -n:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

pub fn xfs_db(img: &Path, cmds: &[&str]) -> String {
    let mut a = vec!["-r", "-f"];
    for c in cmds {
        a.extend_from_slice(&["-c", c]);
    }
    a.push(img.to_str().unwrap());
    let o = run("xfs_db", &a);
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

pub fn open<'a>(ov: &'a CowOverlay<RawImage>) -> Result<Xfs<'a>, FsError> {
    match fs::open(Volume::new(ov, 0, ov.size(), "fs.img")?, "xfs", "fs.img")? {
        Filesystem::Xfs(x) => Ok(x),
        _ => panic!("the dispatch returned another writer for xfs"),
    }
}

/// A loop mount of an image, unmounted on drop.
pub struct Mounted(pub PathBuf);

impl Mounted {
    /// Mounts `img` at a new directory under `dir`; None (one line said) where this host
    /// cannot loop-mount XFS (not root, no loop devices, no xfs module).
    pub fn new(img: &Path, dir: &Path) -> Option<Self> {
        Self::with(img, dir, "loop")
    }

    /// Mounts `img` read-only (nothing the kernel does changes the image).
    pub fn new_ro(img: &Path, dir: &Path) -> Option<Self> {
        Self::with(img, dir, "loop,ro")
    }

    fn with(img: &Path, dir: &Path, opts: &str) -> Option<Self> {
        let mnt = dir.join("mnt");
        std::fs::create_dir_all(&mnt).ok()?;
        let o = std::process::Command::new("mount").args(["-t", "xfs", "-o", opts]).arg(img).arg(&mnt).output().ok()?;
        if !o.status.success() {
            eprintln!("skipping the kernel-made XFS cases: cannot loop-mount ({})", String::from_utf8_lossy(&o.stderr).trim());
            return None;
        }
        Some(Mounted(mnt))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

pub fn db_sb(img: &Path, field: &str) -> u64 {
    let out = xfs_db(img, &["sb 0", &format!("print {field}")]);
    out.lines().find_map(|l| l.strip_prefix(&format!("{field} = "))).unwrap().trim().parse().unwrap()
}
