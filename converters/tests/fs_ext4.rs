//! ext2/3/4 writing against real oracles: fixtures from mkfs -d (+ e2fsck -D for htree,
//! debugfs for fragmentation), edits through `Ext4` on a copy-on-write overlay, then
//! `e2fsck -fn` must be clean and debugfs must show exactly the expected tree.

mod fs_support;

use ferry_converters::fs::ext4::{Ext4, FileKind};
use ferry_converters::fs::{FsError, PathProblem, Volume};
use ferry_formats::disk::{CowOverlay, RawImage};
use fs_support::*;
use std::path::Path;

enum Exp {
    File(Vec<u8>, u32, u32, u32),
    Link(String),
    Dir(u32),
    Absent,
}

fn text(n: usize, tag: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < n {
        out.extend_from_slice(format!("{tag} line {i}\n").as_bytes());
        i += 1;
    }
    out.truncate(n);
    out
}

/// The edits conversion makes, and what the result must look like.
fn apply(fs: &mut Ext4) -> Vec<(String, Exp)> {
    let mut exp: Vec<(String, Exp)> = Vec::new();
    let file = |fs: &mut Ext4, path: &str, data: Vec<u8>, mode: u32| {
        fs.write_file(path, &data, mode as u16, 0, 0).unwrap_or_else(|e| panic!("write {path}: {e}"));
        assert_eq!(fs.read_file(path, 1 << 30).unwrap(), data, "read back {path}");
        (path.to_string(), Exp::File(data, mode, 0, 0))
    };
    exp.push(file(fs, "/etc/fstab", text(10_000, "fstab"), 0o644)); // grows
    exp.push(file(fs, "/etc/big.bin", pattern(5_000, 9), 0o644)); // shrinks
    exp.push(file(fs, "/frag", pattern(700_000, 10), 0o644)); // fragmented, indexed extents
    exp.push(file(fs, "/etc/empty-now", Vec::new(), 0o600));
    exp.push(file(fs, "/big.new", pattern(2_500_000, 11), 0o644)); // double indirect on ext2/3

    fs.mkdir("/etc/ferry", 0o755, 0, 0).unwrap();
    fs.mkdir("/etc/ferry/a", 0o700, 0, 0).unwrap();
    fs.mkdir("/etc/ferry/a/b", 0o750, 0, 0).unwrap();
    exp.push(("/etc/ferry/a".into(), Exp::Dir(0o700)));
    exp.push(file(fs, "/etc/ferry/new.conf", b"new\n".to_vec(), 0o640));
    assert_eq!(
        fs.create_file("/etc/ferry/new.conf", b"", 0o644, 0, 0).unwrap_err().path_problem(),
        Some(PathProblem::Exists)
    );

    let long_target = format!("/usr/share/{}/target", "deep/".repeat(20));
    fs.symlink("/etc/fast", "/etc/fstab", 0, 0).unwrap();
    fs.symlink("/etc/slow", &long_target, 0, 0).unwrap();
    fs.symlink("/etc/to-ferry", "ferry", 0, 0).unwrap();
    exp.push(("/etc/fast".into(), Exp::Link("/etc/fstab".into())));
    exp.push(("/etc/slow".into(), Exp::Link(long_target.clone())));
    assert_eq!(fs.read_link("/etc/slow").unwrap(), long_target.as_bytes());
    // A path through a symlink lands in its target.
    exp.push(file(fs, "/etc/to-ferry/via.txt", b"via link\n".to_vec(), 0o644));
    exp.push(("/etc/ferry/via.txt".into(), Exp::File(b"via link\n".to_vec(), 0o644, 0, 0)));
    assert_eq!(fs.read_file("/etc/fast", 1 << 20).unwrap(), text(10_000, "fstab"));

    fs.unlink("/etc/hostname").unwrap();
    fs.unlink("/etc/hard1").unwrap();
    exp.push(("/etc/hostname".into(), Exp::Absent));
    exp.push(("/etc/hard1".into(), Exp::Absent));
    exp.push(("/etc/hard2".into(), Exp::File(b"linked twice\n".to_vec(), 0o644, 0, 0)));
    assert_eq!(fs.metadata("/etc/hard2").unwrap().links, 1);

    fs.rename("/etc/motd", "/etc/motd.old").unwrap();
    fs.rename("/etc/new-issue", "/etc/issue").unwrap();
    fs.rename("/var/dir1", "/etc/ferry/dir1").unwrap();
    assert_eq!(fs.rename("/etc/ferry", "/etc/ferry/a/b/c").unwrap_err().path_problem(), Some(PathProblem::IntoItself));
    exp.push(("/etc/motd".into(), Exp::Absent));
    exp.push(("/etc/motd.old".into(), Exp::File(b"welcome\n".to_vec(), 0o644, 0, 0)));
    exp.push(("/etc/new-issue".into(), Exp::Absent));
    exp.push(("/etc/issue".into(), Exp::File(b"new issue\n".to_vec(), 0o644, 0, 0)));
    exp.push(("/var/dir1".into(), Exp::Absent));
    // A directory renamed within its parent, and one moved over an empty directory.
    fs.rename("/etc/ferry/dir1/sub", "/etc/ferry/dir1/sub2").unwrap();
    fs.mkdir("/etc/ferry/target", 0o755, 0, 0).unwrap();
    fs.rename("/etc/ferry/a/b", "/etc/ferry/target").unwrap();
    exp.push(("/etc/ferry/dir1/sub".into(), Exp::Absent));
    exp.push(("/etc/ferry/dir1/sub2/z".into(), Exp::File(b"z\n".to_vec(), 0o644, 0, 0)));
    exp.push(("/etc/ferry/a/b".into(), Exp::Absent));
    exp.push(("/etc/ferry/target".into(), Exp::Dir(0o750)));
    exp.push(("/etc/ferry/dir1/y".into(), Exp::File(pattern(20_000, 2), 0o644, 0, 0)));

    assert_eq!(fs.rmdir("/etc/ferry/dir1").unwrap_err().path_problem(), Some(PathProblem::NotEmpty));
    fs.rmdir("/var/empty").unwrap();
    exp.push(("/var/empty".into(), Exp::Absent));

    fs.set_mode("/etc/shadow", 0o600).unwrap();
    fs.set_owner("/etc/shadow", 0, 42).unwrap();
    fs.set_times("/etc/shadow", 1_000_000_000, 1_500_000_000).unwrap();
    assert_eq!(fs.metadata("/etc/shadow").unwrap().mtime, 1_500_000_000);
    exp.push(("/etc/shadow".into(), Exp::File(b"root:*:19000:0:99999:7:::\n".to_vec(), 0o600, 0, 42)));

    // The htree directory: removals and additions (leaf splits) keep it indexed.
    for i in (0..3000).step_by(30) {
        fs.unlink(&format!("/many/entry_with_a_longer_name_number_{i:05}")).unwrap();
        exp.push((format!("/many/entry_with_a_longer_name_number_{i:05}"), Exp::Absent));
    }
    for i in 0..400 {
        let p = format!("/many/added_{i}_{}", "x".repeat(i % 50));
        fs.write_file(&p, format!("added {i}\n").as_bytes(), 0o644, 0, 0).unwrap();
        if i % 40 == 0 {
            exp.push((p, Exp::File(format!("added {i}\n").into_bytes(), 0o644, 0, 0)));
        }
    }
    exp.push(("/many/entry_with_a_longer_name_number_00031".into(), Exp::File(b"31\n".to_vec(), 0o644, 0, 0)));
    exp
}

fn verify(img: &Path, exp: &[(String, Exp)]) {
    for (path, e) in exp {
        let st = debugfs_stat(img, path);
        match e {
            Exp::Absent => assert!(st.is_none(), "{path} should be gone"),
            Exp::File(data, mode, uid, gid) => {
                let (m, u, g, size, t) = st.unwrap_or_else(|| panic!("{path} missing"));
                assert_eq!(
                    (t.as_str(), m & 0o7777, u, g, size),
                    ("regular", *mode, *uid, *gid, data.len() as u64),
                    "{path}"
                );
                assert!(debugfs(img, &format!("cat {path}")) == *data, "{path} content");
            }
            Exp::Link(target) => {
                assert_eq!(st.unwrap_or_else(|| panic!("{path} missing")).4, "symlink");
                assert_eq!(&debugfs_readlink(img, path), target, "{path}");
            }
            Exp::Dir(mode) => {
                let (m, _, _, _, t) = st.unwrap_or_else(|| panic!("{path} missing"));
                assert_eq!((t.as_str(), m & 0o7777), ("directory", *mode), "{path}");
            }
        }
    }
    let htree = String::from_utf8_lossy(&debugfs(img, "htree /many")).into_owned();
    assert!(htree.contains("Indirect levels:"), "/many is still htree-indexed: {htree}");
    let many = debugfs_ls(img, "/many");
    assert_eq!(many.len(), 3000 - 100 + 400, "entries in /many");
    let mut etc = debugfs_ls(img, "/etc/ferry");
    etc.sort();
    assert_eq!(etc, ["a", "dir1", "new.conf", "target", "via.txt"]);
}

fn exercise(mkfs: &str, args: &[&str], size_mb: u64) {
    exercise_tuned(mkfs, args, &[], size_mb)
}

fn exercise_tuned(mkfs: &str, args: &[&str], tune: &[&str], size_mb: u64) {
    if !have("debugfs") || !have(mkfs) {
        eprintln!("skipping: e2fsprogs ({mkfs}, debugfs) not installed");
        return;
    }
    let fx = make_ext_tuned(mkfs, args, tune, size_mb);
    let src_fs = fx.dir.path().join("fs.img");
    // The fixture really has what the cases claim: an htree-indexed directory, and on
    // extent filesystems a fragmented file whose tree has index nodes.
    let htree = String::from_utf8_lossy(&debugfs(&src_fs, "htree /many")).into_owned();
    assert!(htree.contains("Indirect levels:"), "/many is htree-indexed: {htree}");
    if !args.iter().any(|a| a.contains("^extent")) && mkfs == "mkfs.ext4" && tune.is_empty() {
        let tree = String::from_utf8_lossy(&debugfs(&src_fs, "dump_extents /frag")).into_owned();
        assert!(
            tree.lines().any(|l| l.trim_start().starts_with("0/ 1") || l.trim_start().starts_with("0/ 2")),
            "{tree}"
        );
    }
    let before = std::fs::read(&fx.disk).unwrap();
    let ov = CowOverlay::new(RawImage::open(&fx.disk).unwrap()).unwrap();
    let vol = Volume::new(&ov, PART_OFFSET, fx.fs_len, "disk.raw").unwrap();
    let mut fs = Ext4::open(vol, "disk.raw p1").unwrap();
    let exp = apply(&mut fs);
    let (free_blocks, free_inodes) = fs.free_counts();
    assert_eq!(fs.read_dir("/etc/ferry").unwrap().iter().filter(|e| e.kind == FileKind::Directory).count(), 3);
    drop(fs);
    let out = fx.dir.path().join("out.img");
    extract(&ov, fx.fs_len, &out);
    let report = assert_clean(&out);
    let (used_i, total_i, used_b, total_b) = e2fsck_usage(&report);
    assert_eq!((total_i - used_i, total_b - used_b), (u64::from(free_inodes), free_blocks), "free counts vs e2fsck");
    verify(&out, &exp);
    drop(ov);
    assert!(std::fs::read(&fx.disk).unwrap() == before, "source image unchanged");
}

#[test]
fn ext4_default_4k() {
    exercise("mkfs.ext4", &["-b", "4096"], 64);
}

#[test]
fn ext4_1k_blocks() {
    exercise("mkfs.ext4", &["-b", "1024"], 48);
}

#[test]
fn ext4_64bit_metadata_csum_flex_bg() {
    exercise("mkfs.ext4", &["-O", "64bit,metadata_csum,flex_bg", "-b", "1024"], 48);
}

#[test]
fn ext4_without_metadata_csum_gdt_csum() {
    exercise("mkfs.ext4", &["-O", "^metadata_csum,uninit_bg", "-b", "4096"], 64);
}

#[test]
fn ext4_block_maps() {
    exercise("mkfs.ext4", &["-O", "^extent,^64bit", "-b", "1024"], 48);
}

#[test]
fn ext3_1k() {
    exercise("mkfs.ext3", &["-b", "1024"], 48);
}

#[test]
fn ext3_upgraded_to_ext4() {
    // Old files keep block maps; rewritten ones get extents.
    exercise_tuned("mkfs.ext3", &["-b", "4096"], &["-O", "extent,dir_nlink,extra_isize"], 64);
}

#[test]
fn ext2_4k() {
    exercise("mkfs.ext2", &["-b", "4096"], 64);
}

#[test]
fn journal_needing_recovery_is_refused() {
    if !have("debugfs") {
        eprintln!("skipping: e2fsprogs not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("fs.img");
    assert!(run("mkfs.ext4", &["-q", "-F", img.to_str().unwrap(), "16M"]).status.success());
    assert!(run("debugfs", &["-w", "-R", "feature needs_recovery", img.to_str().unwrap()]).status.success());
    let dev = RawImage::open(&img).unwrap();
    let ov = CowOverlay::new(dev).unwrap();
    let len = std::fs::metadata(&img).unwrap().len();
    let err = Ext4::open(Volume::new(&ov, 0, len, "fs.img").unwrap(), "fs.img").err().expect("refused");
    assert!(matches!(err, FsError::NeedsRecovery { .. }));
    assert_eq!(err.to_string(), "fs.img: filesystem journal needs recovery: shut the guest down cleanly");
}

#[test]
fn journal_with_transactions_is_refused_even_if_marked_clean() {
    if !have("debugfs") {
        eprintln!("skipping: e2fsprogs not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("fs.img");
    assert!(run("mkfs.ext4", &["-q", "-F", "-b", "4096", img.to_str().unwrap(), "16M"]).status.success());
    // The journal superblock is logical block 0 of inode 8: give it a start block.
    let out = String::from_utf8(debugfs(&img, "bmap <8> 0")).unwrap();
    let block: u64 = out.trim().parse().unwrap_or_else(|_| panic!("bmap: {out:?}"));
    let mut bytes = std::fs::read(&img).unwrap();
    let at = (block * 4096 + 28) as usize;
    bytes[at..at + 4].copy_from_slice(&1u32.to_be_bytes());
    std::fs::write(&img, &bytes).unwrap();
    let ov = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    let err = Ext4::open(Volume::new(&ov, 0, bytes.len() as u64, "fs.img").unwrap(), "fs.img").err().expect("refused");
    assert_eq!(err.to_string(), "fs.img: filesystem journal needs recovery: shut the guest down cleanly");
}

#[test]
fn symlink_loops_and_bad_names_are_errors() {
    if !have("mkfs.ext4") {
        eprintln!("skipping: e2fsprogs not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("fs.img");
    assert!(run("mkfs.ext4", &["-q", "-F", img.to_str().unwrap(), "8M"]).status.success());
    let ov = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    let len = std::fs::metadata(&img).unwrap().len();
    let mut fs = Ext4::open(Volume::new(&ov, 0, len, "fs.img").unwrap(), "fs.img").unwrap();
    fs.symlink("/a", "/b", 0, 0).unwrap();
    fs.symlink("/b", "a", 0, 0).unwrap();
    assert_eq!(fs.read_file("/a", 100).unwrap_err().path_problem(), Some(PathProblem::SymlinkLoop));
    assert_eq!(fs.write_file("/", b"x", 0o644, 0, 0).unwrap_err().path_problem(), Some(PathProblem::IsDirectory));
    assert_eq!(fs.mkdir("/..", 0o755, 0, 0).unwrap_err().path_problem(), Some(PathProblem::InvalidName));
    assert_eq!(fs.unlink("/nope/x").unwrap_err().path_problem(), Some(PathProblem::NotFound));
    assert_eq!(
        fs.mkdir(&format!("/{}", "n".repeat(256)), 0o755, 0, 0).unwrap_err().path_problem(),
        Some(PathProblem::NameTooLong)
    );
    drop(fs);
    let out = dir.path().join("out.img");
    extract_from(&ov, 0, len, &out);
    assert_clean(&out);
}

#[test]
fn deep_extent_tree_in_fragmented_free_space() {
    if !have("debugfs") {
        eprintln!("skipping: e2fsprogs not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("fs.img");
    assert!(run("mkfs.ext4", &["-q", "-F", "-b", "1024", img.to_str().unwrap(), "32M"]).status.success());
    let before = std::fs::read(&img).unwrap();
    let ov = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    let len = before.len() as u64;
    let mut fs = Ext4::open(Volume::new(&ov, 0, len, "fs.img").unwrap(), "fs.img").unwrap();
    fs.mkdir("/d", 0o755, 0, 0).unwrap();
    for i in 0..1000 {
        fs.create_file(&format!("/d/f{i}"), &pattern(1000, i), 0o644, 0, 0).unwrap();
    }
    for i in (0..1000).step_by(2) {
        fs.unlink(&format!("/d/f{i}")).unwrap();
    }
    // 450 one-block holes: the file needs more extents than one level of leaves holds.
    let data = pattern(450 * 1024 - 5, 77);
    fs.write_file("/deep", &data, 0o644, 0, 0).unwrap();
    assert_eq!(fs.read_file("/deep", 1 << 20).unwrap(), data);
    let (free_blocks, free_inodes) = fs.free_counts();
    drop(fs);
    let out = dir.path().join("out.img");
    extract_from(&ov, 0, len, &out);
    let report = assert_clean(&out);
    let (used_i, total_i, used_b, total_b) = e2fsck_usage(&report);
    assert_eq!((total_i - used_i, total_b - used_b), (u64::from(free_inodes), free_blocks));
    let tree = String::from_utf8_lossy(&debugfs(&out, "dump_extents /deep")).into_owned();
    assert!(tree.lines().any(|l| l.trim_start().starts_with("2/ 2")), "depth-2 tree: {tree}");
    assert!(debugfs(&out, "cat /deep") == data);
    assert!(debugfs(&out, "cat /d/f999") == pattern(1000, 999));
    drop(ov);
    assert!(std::fs::read(&img).unwrap() == before);
}

#[test]
fn removals_keep_an_htree_index_valid() {
    if !have("debugfs") {
        eprintln!("skipping: e2fsprogs not installed");
        return;
    }
    for name in ["ext4-csum.img", "ext4-nocsum.img", "ext2.img"] {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/fs").join(name);
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fs.img");
        std::fs::copy(&src, &img).unwrap();
        let len = std::fs::metadata(&img).unwrap().len();
        let ov = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
        let mut fs = Ext4::open(Volume::new(&ov, 0, len, name).unwrap(), name).unwrap();
        for i in (1..=60).step_by(4) {
            fs.unlink(&format!("/many/entry_number_{i}")).unwrap();
        }
        drop(fs);
        let out = dir.path().join("out.img");
        extract_from(&ov, 0, len, &out);
        assert_clean(&out);
        let htree = String::from_utf8_lossy(&debugfs(&out, "htree /many")).into_owned();
        assert!(htree.contains("Indirect levels:"), "{name}: still indexed: {htree}");
        let names = debugfs_ls(&out, "/many");
        assert_eq!(names.len(), 45, "{name}");
        assert!(!names.contains(&"entry_number_5".to_string()) && names.contains(&"entry_number_6".to_string()));
    }
}

#[test]
fn inodes_from_uninitialised_groups() {
    if !have("debugfs") {
        eprintln!("skipping: e2fsprogs not installed");
        return;
    }
    for features in ["metadata_csum", "^metadata_csum,uninit_bg"] {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fs.img");
        let i = img.to_str().unwrap();
        assert!(run("mkfs.ext4", &["-q", "-F", "-b", "1024", "-N", "512", "-O", features, i, "32M"]).status.success());
        let groups = String::from_utf8_lossy(&run("dumpe2fs", &[i]).stdout).into_owned();
        assert!(groups.contains("INODE_UNINIT"), "fixture has uninitialised inode groups");
        let len = std::fs::metadata(&img).unwrap().len();
        let ov = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
        let mut fs = Ext4::open(Volume::new(&ov, 0, len, "fs.img").unwrap(), "fs.img").unwrap();
        for d in 0..3 {
            fs.mkdir(&format!("/d{d}"), 0o755, 0, 0).unwrap();
            for f in 0..100 {
                fs.create_file(&format!("/d{d}/f{f}"), &pattern(3000, f), 0o644, 0, 0).unwrap();
            }
        }
        assert!(fs.metadata("/d2/f99").unwrap().ino > 256, "inodes from the third group on");
        fs.unlink("/d1/f5").unwrap();
        let (free_blocks, free_inodes) = fs.free_counts();
        drop(fs);
        let out = dir.path().join("out.img");
        extract_from(&ov, 0, len, &out);
        let report = assert_clean(&out);
        let (used_i, total_i, used_b, total_b) = e2fsck_usage(&report);
        assert_eq!((total_i - used_i, total_b - used_b), (u64::from(free_inodes), free_blocks), "{features}");
        assert!(debugfs(&out, "cat /d2/f99") == pattern(3000, 99));
    }
}

#[test]
fn unlink_releases_the_xattr_block() {
    if !have("debugfs") {
        eprintln!("skipping: e2fsprogs not installed");
        return;
    }
    for features in ["metadata_csum", "^metadata_csum"] {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("f"), b"with xattr\n").unwrap();
        std::fs::write(src.join("g"), b"plain\n").unwrap();
        let img = dir.path().join("fs.img");
        let i = img.to_str().unwrap();
        let s = src.to_str().unwrap();
        assert!(run("mkfs.ext4", &["-q", "-F", "-O", features, "-d", s, i, "8M"]).status.success());
        let val = dir.path().join("val");
        std::fs::write(&val, vec![b'a'; 600]).unwrap();
        let set = format!("ea_set -f {} /f user.big", val.display());
        assert!(run("debugfs", &["-w", "-R", &set, i]).status.success());
        let stat = String::from_utf8_lossy(&debugfs(&img, "stat /f")).into_owned();
        assert!(!stat.contains("File ACL: 0"), "the xattr went to its own block: {stat}");
        let len = std::fs::metadata(&img).unwrap().len();
        let ov = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
        let mut fs = Ext4::open(Volume::new(&ov, 0, len, "fs.img").unwrap(), "fs.img").unwrap();
        let (before_blocks, _) = fs.free_counts();
        fs.unlink("/f").unwrap();
        let (free_blocks, free_inodes) = fs.free_counts();
        assert_eq!(free_blocks, before_blocks + 2, "data block and xattr block freed");
        drop(fs);
        let out = dir.path().join("out.img");
        extract_from(&ov, 0, len, &out);
        let report = assert_clean(&out);
        let (used_i, total_i, used_b, total_b) = e2fsck_usage(&report);
        assert_eq!((total_i - used_i, total_b - used_b), (u64::from(free_inodes), free_blocks), "{features}");
    }
}
