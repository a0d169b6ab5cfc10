//! Shared helpers of the filesystem-writing tests: fixtures made with the real tools
//! (mkfs, e2fsck -D, debugfs) and the oracles that judge the results (e2fsck, debugfs).
#![allow(dead_code)]

pub mod xfs;

use ferry_formats::disk::{BlockDevice, CowOverlay, RawImage};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Offset of the filesystem inside the test disk: like a first partition.
pub const PART_OFFSET: u64 = 1 << 20;

pub fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

pub fn have(cmd: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {cmd}")]).output().is_ok_and(|o| o.status.success())
}

/// A deterministic byte pattern.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The source tree every ext fixture starts from.
pub fn populate(root: &Path) {
    let w = |p: &str, data: &[u8]| {
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    };
    w("etc/fstab", b"/dev/sda1 / ext4 errors=remount-ro 0 1\n");
    w("etc/hostname", b"guest\n");
    w("etc/motd", b"welcome\n");
    w("etc/issue", b"old issue\n");
    w("etc/new-issue", b"new issue\n");
    w("etc/shadow", b"root:*:19000:0:99999:7:::\n");
    w("etc/big.bin", &pattern(300_000, 1));
    w("etc/hard1", b"linked twice\n");
    std::fs::hard_link(root.join("etc/hard1"), root.join("etc/hard2")).unwrap();
    w("var/dir1/x", b"x\n");
    w("var/dir1/y", &pattern(20_000, 2));
    w("var/dir1/sub/z", b"z\n");
    std::fs::create_dir_all(root.join("var/empty")).unwrap();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("many")).unwrap();
    for i in 0..3000 {
        std::fs::write(root.join(format!("many/entry_with_a_longer_name_number_{i:05}")), format!("{i}\n")).unwrap();
    }
}

/// A test disk: `PART_OFFSET` bytes, then an ext filesystem made from `populate`, with its
/// large directory htree-indexed (e2fsck -D) and a fragmented file `/frag` (debugfs).
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub disk: PathBuf,
    pub fs_len: u64,
}

pub fn make_ext(mkfs: &str, args: &[&str], size_mb: u64) -> Fixture {
    make_ext_tuned(mkfs, args, &[], size_mb)
}

/// Like [`make_ext`], then `tune2fs TUNE` on the filesystem before it is indexed.
pub fn make_ext_tuned(mkfs: &str, args: &[&str], tune: &[&str], size_mb: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    populate(&src);
    let fs = dir.path().join("fs.img");
    let size = format!("{size_mb}M");
    let mut a = vec!["-q", "-F", "-d", src.to_str().unwrap()];
    a.extend_from_slice(args);
    a.extend_from_slice(&[fs.to_str().unwrap(), &size]);
    let out = run(mkfs, &a);
    assert!(out.status.success(), "{mkfs} {a:?}: {}", String::from_utf8_lossy(&out.stderr));
    if !tune.is_empty() {
        let mut t = tune.to_vec();
        t.push(fs.to_str().unwrap());
        let out = run("tune2fs", &t);
        assert!(out.status.success(), "tune2fs {t:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = run("e2fsck", &["-fyD", fs.to_str().unwrap()]);
    assert!(out.status.code().unwrap_or(8) <= 1, "e2fsck -D: {}", String::from_utf8_lossy(&out.stdout));
    // Fragment: 1000 one-block files, every other one removed, then a file fills the holes.
    let bs: usize = dumpe2fs_field(&fs, "Block size:").parse().unwrap();
    std::fs::write(dir.path().join("one"), pattern(bs, 3)).unwrap();
    std::fs::write(dir.path().join("fragsrc"), pattern(500 * bs + 77, 4)).unwrap();
    let mut script = String::from("mkdir /fragdir\ncd /fragdir\n");
    for i in 0..1000 {
        script += &format!("write {} f{i}\n", dir.path().join("one").display());
    }
    for i in (0..1000).step_by(2) {
        script += &format!("rm f{i}\n");
    }
    script += "cd /\n";
    script += &format!("write {} frag\n", dir.path().join("fragsrc").display());
    let sfile = dir.path().join("script");
    std::fs::write(&sfile, script).unwrap();
    let out = run("debugfs", &["-w", "-f", sfile.to_str().unwrap(), fs.to_str().unwrap()]);
    assert!(out.status.success());
    assert_clean(&fs);
    let mut disk = vec![0u8; PART_OFFSET as usize];
    disk.extend_from_slice(&std::fs::read(&fs).unwrap());
    let fs_len = disk.len() as u64 - PART_OFFSET;
    let path = dir.path().join("disk.raw");
    std::fs::write(&path, disk).unwrap();
    Fixture { dir, disk: path, fs_len }
}

/// A field of `dumpe2fs -h`.
pub fn dumpe2fs_field(fs: &Path, key: &str) -> String {
    let out = run("dumpe2fs", &["-h", fs.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("{key} not in dumpe2fs output"))
}

/// Copies the overlay's view of the filesystem partition to a plain file.
pub fn extract(ov: &CowOverlay<RawImage>, fs_len: u64, to: &Path) {
    extract_from(ov, PART_OFFSET, fs_len, to);
}

/// Copies `len` bytes of the overlay's view from offset `at` to a plain file.
pub fn extract_from(ov: &CowOverlay<RawImage>, at: u64, len: u64, to: &Path) {
    let mut out = vec![0u8; len as usize];
    ov.read_at(&mut out, at).unwrap();
    std::fs::write(to, out).unwrap();
}

/// `e2fsck -fn` exits 0; returns its output.
pub fn assert_clean(fs: &Path) -> String {
    let out = run("e2fsck", &["-fn", fs.to_str().unwrap()]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "e2fsck -fn {}:\n{text}", fs.display());
    text
}

/// (used inodes, total inodes, used blocks, total blocks) from e2fsck's summary line.
pub fn e2fsck_usage(text: &str) -> (u64, u64, u64, u64) {
    let line = text.lines().find(|l| l.contains(" files (") && l.contains(" blocks")).expect("summary line");
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit() && c != '/')
        .filter(|s| s.contains('/'))
        .filter_map(|s| {
            let (a, b) = s.split_once('/')?;
            Some([a.parse().ok()?, b.parse().ok()?])
        })
        .flatten()
        .collect();
    (nums[0], nums[1], nums[2], nums[3])
}

pub fn debugfs(fs: &Path, req: &str) -> Vec<u8> {
    let out = run("debugfs", &["-R", req, fs.to_str().unwrap()]);
    out.stdout
}

/// (mode, uid, gid, size, type) from `debugfs stat`.
pub fn debugfs_stat(fs: &Path, path: &str) -> Option<(u32, u32, u32, u64, String)> {
    let text = String::from_utf8_lossy(&debugfs(fs, &format!("stat {path}"))).into_owned();
    let field = |key: &str| -> Option<String> {
        let at = text.find(key)? + key.len();
        Some(text[at..].split_whitespace().next()?.to_string())
    };
    Some((
        u32::from_str_radix(&field("Mode:")?, 8).ok()?,
        field("User:")?.parse().ok()?,
        field("Group:")?.parse().ok()?,
        field("Size:")?.parse().ok()?,
        field("Type:")?,
    ))
}

/// Names in a directory from `debugfs ls -p` ("." and ".." excluded).
pub fn debugfs_ls(fs: &Path, dir: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(&debugfs(fs, &format!("ls -p {dir}"))).into_owned();
    text.lines()
        .filter(|l| l.split('/').nth(1).is_some_and(|ino| ino != "0"))
        .filter_map(|l| l.split('/').nth(5).map(str::to_string))
        .filter(|n| !n.is_empty() && n != "." && n != "..")
        .collect()
}

/// A symlink's target as debugfs sees it (fast links from stat, slow ones from their block).
pub fn debugfs_readlink(fs: &Path, path: &str) -> String {
    let text = String::from_utf8_lossy(&debugfs(fs, &format!("stat {path}"))).into_owned();
    if let Some(at) = text.find("Fast link dest: \"") {
        let rest = &text[at + 17..];
        return rest[..rest.find('"').unwrap()].to_string();
    }
    String::from_utf8(debugfs(fs, &format!("cat {path}"))).unwrap()
}

/// A deterministic generator (xorshift64) for the randomised tests.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
