//! htree directories stay indexed through Ferry's edits. Fixtures: mkfs -d with large
//! directories, the hash algorithm and signedness set with `debugfs ssv`, indexed by
//! `e2fsck -fyD`. Hundreds of entries are added (leaf splits, index node splits, a new
//! level), some removed, some renamed across directories, an indexed directory moved.
//! Oracles: `e2fsck -fn` is clean (pass 2 checks the dx tree, its limits, checksums and
//! that every name's hash lies in its leaf's range), `debugfs htree` still shows the index
//! (grown as expected), and `debugfs ls`/`ncheck` find exactly the expected entries.

mod fs_support;

use ferry_converters::fs::ext4::Ext4;
use ferry_converters::fs::Volume;
use ferry_formats::disk::{CowOverlay, RawImage};
use fs_support::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

struct Case {
    mkfs: &'static str,
    args: &'static [&'static str],
    /// `s_def_hash_version` and the unsigned flag, set before indexing.
    hash: Option<(&'static str, bool)>,
    /// Entries in /big.
    big: usize,
    /// Entries added to /big.
    add: usize,
}

/// Names of the fixture's /big: every fifth has a byte above 0x7f (signedness matters).
fn orig(i: usize) -> String {
    if i.is_multiple_of(5) {
        format!("file_with_a_fairly_long_name_{i}_é")
    } else {
        format!("file_with_a_fairly_long_name_{i}")
    }
}

fn added(i: usize) -> String {
    format!("added_{i}_{}{}", "ü".repeat(i % 4), "x".repeat(i * 7 % 60))
}

struct Fx {
    dir: tempfile::TempDir,
    disk: PathBuf,
    fs_len: u64,
}

fn build(case: &Case) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for sub in ["big", "other", "small"] {
        std::fs::create_dir_all(src.join(sub)).unwrap();
    }
    for i in 0..case.big {
        std::fs::write(src.join("big").join(orig(i)), b"").unwrap();
    }
    for i in 0..400 {
        std::fs::write(src.join("other").join(format!("other_entry_{i:04}")), format!("{i}\n")).unwrap();
    }
    std::fs::write(src.join("small/one"), b"1\n").unwrap();
    let fs = dir.path().join("fs.img");
    let mut a = vec!["-q", "-F", "-d", src.to_str().unwrap()];
    a.extend_from_slice(case.args);
    a.extend_from_slice(&[fs.to_str().unwrap(), "64M"]);
    let out = run(case.mkfs, &a);
    assert!(out.status.success(), "{} {a:?}: {}", case.mkfs, String::from_utf8_lossy(&out.stderr));
    if let Some((alg, unsigned)) = case.hash {
        for req in [format!("ssv def_hash_version {alg}"), format!("ssv flags {}", if unsigned { 2 } else { 1 })] {
            let out = run("debugfs", &["-w", "-R", &req, fs.to_str().unwrap()]);
            assert!(out.status.success(), "debugfs {req}");
        }
    }
    let out = run("e2fsck", &["-fyD", fs.to_str().unwrap()]);
    assert!(out.status.code().unwrap_or(8) <= 1, "e2fsck -D: {}", String::from_utf8_lossy(&out.stdout));
    assert_clean(&fs);
    let mut disk = vec![0u8; PART_OFFSET as usize];
    disk.extend_from_slice(&std::fs::read(&fs).unwrap());
    let fs_len = disk.len() as u64 - PART_OFFSET;
    let path = dir.path().join("disk.raw");
    std::fs::write(&path, disk).unwrap();
    Fx { dir, disk: path, fs_len }
}

/// What `debugfs htree` says about a directory's index.
#[derive(Debug, PartialEq)]
struct Tree {
    hash_version: u32,
    levels: u32,
    /// Index blocks (root included).
    index_blocks: usize,
    /// Entries over all index blocks.
    entries: usize,
}

fn tree(img: &Path, dir: &str) -> Tree {
    let text = String::from_utf8_lossy(&debugfs(img, &format!("htree {dir}"))).into_owned();
    let field = |key: &str| -> u32 {
        let line = text.lines().find(|l| l.contains(key)).unwrap_or_else(|| panic!("{dir} not indexed: {text}"));
        line.rsplit(' ').next().unwrap().trim().parse().unwrap()
    };
    Tree {
        hash_version: field("Hash Version:"),
        levels: field("Indirect levels:"),
        index_blocks: text.matches("Number of entries (count):").count(),
        entries: text.lines().filter(|l| l.starts_with("Entry #")).count(),
    }
}

fn index_flag(img: &Path, dir: &str) -> bool {
    let text = String::from_utf8_lossy(&debugfs(img, &format!("stat {dir}"))).into_owned();
    let at = text.find("Flags: 0x").unwrap() + 9;
    let hex: String = text[at..].chars().take_while(char::is_ascii_hexdigit).collect();
    u32::from_str_radix(&hex, 16).unwrap() & 0x1000 != 0
}

fn set(names: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    names.into_iter().collect()
}

/// Runs the edits on `case`'s fixture and checks the result; returns the /big index
/// before and after.
fn exercise(case: &Case) -> (Tree, Tree) {
    let fx = build(case);
    let src_fs = fx.dir.path().join("fs.img");
    let before = tree(&src_fs, "/big");
    assert!(index_flag(&src_fs, "/other"), "/other is indexed in the fixture");
    let ov = CowOverlay::new(RawImage::open(&fx.disk).unwrap()).unwrap();
    let vol = Volume::new(&ov, PART_OFFSET, fx.fs_len, "disk.raw").unwrap();
    let mut fs = Ext4::open(vol, "disk.raw p1").unwrap();

    let mut big: BTreeSet<String> = (0..case.big).map(orig).collect();
    let mut other: BTreeSet<String> = (0..400).map(|i| format!("other_entry_{i:04}")).collect();
    let mut probes = Vec::new();
    for i in 0..case.add {
        let name = added(i);
        let path = format!("/big/{name}");
        if i % 50 == 7 {
            fs.mkdir(&path, 0o755, 0, 0).unwrap_or_else(|e| panic!("mkdir {path}: {e}"));
        } else {
            fs.create_file(&path, format!("{i}\n").as_bytes(), 0o644, 0, 0)
                .unwrap_or_else(|e| panic!("create {path}: {e}"));
        }
        if i % 37 == 0 {
            probes.push((fs.metadata(&path).unwrap().ino, path));
        }
        big.insert(name);
    }
    for i in (0..case.big).step_by(7) {
        fs.unlink(&format!("/big/{}", orig(i))).unwrap();
        big.remove(&orig(i));
    }
    for i in (1..case.big).step_by(97).filter(|i| i % 7 != 0) {
        let to = format!("moved_from_big_{i}");
        fs.rename(&format!("/big/{}", orig(i)), &format!("/other/{to}")).unwrap();
        big.remove(&orig(i));
        other.insert(to);
    }
    for i in (0..400).step_by(9) {
        let (from, to) = (format!("other_entry_{i:04}"), format!("came_from_other_{i}_{}", "z".repeat(i % 30)));
        fs.rename(&format!("/other/{from}"), &format!("/big/{to}")).unwrap();
        other.remove(&from);
        probes.push((fs.metadata(&format!("/big/{to}")).unwrap().ino, format!("/big/{to}")));
        big.insert(to);
    }
    fs.rename(&format!("/big/{}", orig(3)), "/big/renamed_in_place").unwrap();
    big.remove(&orig(3));
    big.insert("renamed_in_place".into());
    // An indexed directory moves: its root's ".." is rewritten in place.
    fs.rename("/other", "/small/other_moved").unwrap();
    let (free_blocks, free_inodes) = fs.free_counts();
    assert_eq!(set(fs.read_dir("/big").unwrap().into_iter().map(|e| String::from_utf8(e.name).unwrap())), big);
    drop(fs);

    let out = fx.dir.path().join("out.img");
    extract(&ov, fx.fs_len, &out);
    let report = assert_clean(&out);
    let (used_i, total_i, used_b, total_b) = e2fsck_usage(&report);
    assert_eq!((total_i - used_i, total_b - used_b), (u64::from(free_inodes), free_blocks), "free counts vs e2fsck");
    assert!(index_flag(&out, "/big") && index_flag(&out, "/small/other_moved"), "index flags kept");
    assert_eq!(set(debugfs_ls(&out, "/big")), big, "/big entries");
    assert_eq!(set(debugfs_ls(&out, "/small/other_moved")), other, "/other entries");
    let moved = debugfs_stat(&out, "/small/other_moved/..").unwrap();
    assert_eq!(moved.4, "directory");
    let req = format!("ncheck {}", probes.iter().map(|(ino, _)| ino.to_string()).collect::<Vec<_>>().join(" "));
    let found = String::from_utf8_lossy(&debugfs(&out, &req)).into_owned();
    for (ino, path) in &probes {
        assert!(
            found.lines().any(|l| l.starts_with(&format!("{ino}\t")) && l.ends_with(path.as_str())),
            "ncheck {ino} {path}: {found}"
        );
    }
    let after = tree(&out, "/big");
    assert_eq!(after.hash_version, before.hash_version);
    assert!(after.entries > before.entries, "index grew: {before:?} -> {after:?}");
    (before, after)
}

fn skip() -> bool {
    if !have("debugfs") || !have("mkfs.ext4") {
        eprintln!("skipping: e2fsprogs not installed");
        return true;
    }
    false
}

#[test]
fn ext4_default_4k_metadata_csum_64bit() {
    if skip() {
        return;
    }
    let (before, after) = exercise(&Case {
        mkfs: "mkfs.ext4",
        args: &["-b", "4096", "-O", "64bit,metadata_csum"],
        hash: None,
        big: 3000,
        add: 600,
    });
    assert_eq!((before.levels, after.levels), (0, 0));
}

#[test]
fn ext4_1k_index_node_split() {
    if skip() {
        return;
    }
    let (before, after) = exercise(&Case { mkfs: "mkfs.ext4", args: &["-b", "1024"], hash: None, big: 3000, add: 600 });
    // e2fsck -D fills the first index node: the first splits under it split it.
    assert_eq!((before.levels, after.levels), (1, 1));
    assert!(after.index_blocks > before.index_blocks, "{before:?} -> {after:?}");
}

#[test]
fn ext4_1k_without_metadata_csum() {
    if skip() {
        return;
    }
    let args = &["-b", "1024", "-O", "^metadata_csum,uninit_bg"];
    let (before, after) = exercise(&Case { mkfs: "mkfs.ext4", args, hash: None, big: 3000, add: 600 });
    assert!(after.index_blocks > before.index_blocks, "{before:?} -> {after:?}");
}

#[test]
fn ext3_block_maps() {
    if skip() {
        return;
    }
    let (before, after) = exercise(&Case { mkfs: "mkfs.ext3", args: &["-b", "1024"], hash: None, big: 3000, add: 600 });
    assert!(after.index_blocks > before.index_blocks, "{before:?} -> {after:?}");
}

#[test]
fn ext2_4k() {
    if skip() {
        return;
    }
    exercise(&Case { mkfs: "mkfs.ext2", args: &[], hash: None, big: 3000, add: 400 });
}

#[test]
fn root_grows_a_level() {
    if skip() {
        return;
    }
    let (before, after) = exercise(&Case { mkfs: "mkfs.ext4", args: &["-b", "1024"], hash: None, big: 2200, add: 900 });
    assert_eq!((before.levels, after.levels), (0, 1), "{before:?} -> {after:?}");
}

#[test]
fn every_hash_version_signed_and_unsigned() {
    if skip() {
        return;
    }
    for (alg, version) in [("legacy", 0), ("half_md4", 1), ("tea", 2)] {
        for unsigned in [false, true] {
            let case =
                Case { mkfs: "mkfs.ext4", args: &["-b", "1024"], hash: Some((alg, unsigned)), big: 1500, add: 300 };
            let (before, _) = exercise(&case);
            assert_eq!(before.hash_version, version, "{alg}");
        }
    }
}

/// (inode, root block, index node blocks) of /big, physical, from debugfs.
fn dx_blocks(img: &Path) -> (u32, u64, Vec<u64>) {
    let stat = String::from_utf8_lossy(&debugfs(img, "stat /big")).into_owned();
    let ino = stat.split_whitespace().nth(1).unwrap().parse().unwrap();
    let bmap =
        |l: u64| -> u64 { String::from_utf8_lossy(&debugfs(img, &format!("bmap /big {l}"))).trim().parse().unwrap() };
    let dump = String::from_utf8_lossy(&debugfs(img, "htree /big")).into_owned();
    let count: usize =
        dump.lines().find_map(|l| l.strip_prefix("Number of entries (count): ")).unwrap().parse().unwrap();
    let nodes = dump
        .lines()
        .filter(|l| l.starts_with("Entry #"))
        .take(count)
        .map(|l| bmap(l.rsplit(' ').next().unwrap().parse().unwrap()))
        .collect();
    (ino, bmap(0), nodes)
}

/// Byte ranges to overwrite in the disk image.
type Patches = Vec<(usize, Vec<u8>)>;

/// Damaged index blocks: adding an entry is a one-line error naming the directory inode and
/// the field, never a panic.
#[test]
fn corrupt_index_blocks_are_named_errors() {
    if skip() {
        return;
    }
    let fx = build(&Case { mkfs: "mkfs.ext4", args: &["-b", "1024"], hash: None, big: 3000, add: 0 });
    let (ino, root, nodes) = dx_blocks(&fx.dir.path().join("fs.img"));
    assert!(nodes.len() >= 2, "the fixture's root has several nodes: {nodes:?}");
    let pristine = std::fs::read(&fx.disk).unwrap();
    let at = |blk: u64, off: usize| PART_OFFSET as usize + blk as usize * 1024 + off;
    let root_entries =
        |v: u32| -> Patches { (0..nodes.len()).map(|i| (at(root, 36 + 8 * i), v.to_le_bytes().to_vec())).collect() };
    let in_nodes = |off: usize, b: Vec<u8>| -> Patches { nodes.iter().map(|&n| (at(n, off), b.clone())).collect() };
    let cases: Vec<(Patches, String)> = vec![
        (vec![(at(root, 34), vec![0, 0])], format!("directory {ino} htree root count 0: must be 1..=123")),
        (vec![(at(root, 34), vec![200, 0])], format!("directory {ino} htree root count 200:")),
        (vec![(at(root, 32), vec![50, 0])], format!("directory {ino} htree root limit 50: must be 123")),
        (vec![(at(root, 30), vec![2])], format!("directory {ino} htree root indirect_levels 2:")),
        (vec![(at(root, 28), vec![9])], format!("directory {ino} htree root hash_version 9:")),
        (vec![(at(root, 29), vec![4])], format!("directory {ino} htree root info_length 4:")),
        (vec![(at(root, 31), vec![1])], format!("directory {ino} htree root unused_flags 1:")),
        (vec![(at(root, 24), vec![1])], format!("directory {ino} htree root reserved_zero 1:")),
        (root_entries(99_999), format!("directory {ino} htree entry block 99999:")),
        (root_entries(0), format!("directory {ino} htree node block 0:")),
        (in_nodes(8, vec![7, 0]), format!("directory {ino} htree node ")),
        (in_nodes(10, vec![0, 0]), format!("directory {ino} htree node ")),
        // A node's fake record is also what the name lookup parses first.
        (in_nodes(4, vec![12, 0]), format!("directory {ino} record at offset 12 rec_len")),
    ];
    for (patches, want) in cases {
        let mut img = pristine.clone();
        for (off, bytes) in &patches {
            img[*off..off + bytes.len()].copy_from_slice(bytes);
        }
        std::fs::write(&fx.disk, &img).unwrap();
        let ov = CowOverlay::new(RawImage::open(&fx.disk).unwrap()).unwrap();
        let mut fs = Ext4::open(Volume::new(&ov, PART_OFFSET, fx.fs_len, "disk.raw").unwrap(), "p1").unwrap();
        let err = match fs.create_file("/big/a_new_entry", b"x", 0o644, 0, 0) {
            Ok(()) => panic!("{want}: the insert succeeded"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(&want) && !err.contains('\n'), "{err} (want {want})");
        assert!(err.starts_with("p1: invalid "), "{err}");
    }
}

fn long_name(i: usize) -> String {
    format!("{i:06}_{}", "n".repeat(248))
}

/// Names of 255 bytes (3 per 1 KiB leaf) fill a two-level tree (123 x 126 leaves) within a
/// few tens of thousands of entries. With largedir the root then moves down a third level;
/// without it the kernel would refuse the insert (ENOSPC), Ferry turns the directory linear.
fn fill_tree(largedir: bool) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("big")).unwrap();
    for i in 0..300 {
        std::fs::write(src.join("big").join(long_name(i)), b"").unwrap();
    }
    let fs = dir.path().join("fs.img");
    let features = if largedir { "large_dir" } else { "^large_dir" };
    let a = [
        "-q",
        "-F",
        "-b",
        "1024",
        "-N",
        "60000",
        "-O",
        features,
        "-d",
        src.to_str().unwrap(),
        fs.to_str().unwrap(),
        "96M",
    ];
    assert!(run("mkfs.ext4", &a).status.success());
    let out = run("e2fsck", &["-fyD", fs.to_str().unwrap()]);
    assert!(out.status.code().unwrap_or(8) <= 1);
    let len = std::fs::metadata(&fs).unwrap().len();
    let ov = CowOverlay::new(RawImage::open(&fs).unwrap()).unwrap();
    let mut e = Ext4::open(Volume::new(&ov, 0, len, "fs.img").unwrap(), "fs.img").unwrap();
    assert_eq!(e.dir_index_levels("/big").unwrap(), Some(0));
    let (mut n, mut after_change, mut last) = (300, None, Some(0));
    let started = std::time::Instant::now();
    while after_change.is_none_or(|k| n < k) {
        e.create_file(&format!("/big/{}", long_name(n)), b"", 0o644, 0, 0).unwrap_or_else(|err| panic!("{n}: {err}"));
        n += 1;
        if n % 100 == 0 {
            let levels = e.dir_index_levels("/big").unwrap();
            if levels != last && after_change.is_none() && (levels.is_none() || levels == Some(2)) {
                after_change = Some(n + 20);
            }
            last = levels;
        }
        assert!(n < 60_000, "the tree never filled");
    }
    eprintln!("largedir={largedir}: {n} entries, {:?}", started.elapsed());
    let listed = e.read_dir("/big").unwrap().len();
    assert_eq!(listed, n);
    drop(e);
    let out = dir.path().join("out.img");
    extract_from(&ov, 0, len, &out);
    assert_clean(&out);
    assert_eq!(debugfs_ls(&out, "/big").len(), n);
    if largedir {
        assert!(index_flag(&out, "/big"));
        assert_eq!(tree(&out, "/big").levels, 2);
    } else {
        assert!(!index_flag(&out, "/big"), "a full tree without largedir is linearised");
    }
}

#[test]
fn largedir_grows_a_third_level() {
    if !skip() {
        fill_tree(true);
    }
}

#[test]
fn full_two_level_tree_without_largedir_turns_linear() {
    if !skip() {
        fill_tree(false);
    }
}
