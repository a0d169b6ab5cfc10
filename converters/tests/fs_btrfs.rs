//! btrfs editing on images made by `mkfs.btrfs --rootdir` (each checksum type, with and
//! without compression, with and without the free-space tree, with the block-group tree,
//! extra subvolumes, snapshots made by `btrfs subvolume snapshot` on a loop mount), judged
//! by `btrfs check --readonly` and read back by `btrfs restore`: every file Ferry changed
//! must come back byte-identical to a model of the edits, and every subvolume Ferry did not
//! touch byte-identical to its restore before the edits; the
//! `security.selinux` labels, modes and owners Ferry set come back through `btrfs restore -x
//! -m` and `getfattr`;
//! the kernel's `btrfs scrub -r` on a read-only loop mount finds every data checksum Ferry
//! wrote (in each algorithm) and both DUP copies of the metadata good.

mod fs_support;

use ferry_converters::fs::btrfs::Btrfs;
use ferry_converters::fs::{self, Filesystem, FsError, Volume};
use ferry_formats::disk::{CowOverlay, RawImage};
use fs_support::xfs::extract;
use fs_support::{have, pattern, run, Rng};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const FS_LEN: u64 = 256 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    File(Vec<u8>),
    Link(String),
    Dir,
}

type Model = BTreeMap<String, Node>;
/// `security.selinux` values, and permission bits with uid:gid, Ferry set, by path.
#[derive(Default)]
struct Labels {
    xattrs: BTreeMap<String, Vec<u8>>,
    perms: BTreeMap<String, (u32, u32, u32)>,
}

impl Labels {
    fn new() -> Self {
        Labels::default()
    }
    fn remove(&mut self, p: &str) {
        self.xattrs.remove(p);
        self.perms.remove(p);
    }
    /// `from` renamed over `to`.
    fn rename(&mut self, from: &str, to: &str) {
        let (x, m) = (self.xattrs.remove(from), self.perms.remove(from));
        self.remove(to);
        if let Some(x) = x {
            self.xattrs.insert(to.into(), x);
        }
        if let Some(m) = m {
            self.perms.insert(to.into(), m);
        }
    }
}

/// The tools this file needs, or one line saying which is missing.
fn tools() -> bool {
    for t in ["mkfs.btrfs", "btrfs"] {
        if !have(t) {
            eprintln!("skipped: {t} not installed");
            return false;
        }
    }
    // --rootdir with --subvol and --compress: btrfs-progs 6.13 and later.
    let v = String::from_utf8_lossy(&run("mkfs.btrfs", &["--version"]).stdout).into_owned();
    let ver: Vec<u32> = v.split(" v").nth(1).unwrap_or("0").trim().split(['.', '-', '\n']).take(2).map(|n| n.parse().unwrap_or(0)).collect();
    if ver.first().copied().unwrap_or(0) < 6 || (ver[0] == 6 && ver.get(1).copied().unwrap_or(0) < 13) {
        eprintln!("skipped: mkfs.btrfs {} is older than 6.13 (--rootdir with --subvol and --compress)", v.trim());
        return false;
    }
    true
}

/// The source tree: a few config-like files, big files (regular extents), many small ones
/// in `many/` so the fs tree has several levels, symlinks.
fn source(dir: &Path, model: &mut Model, prefix: &str, n_small: usize, seed: u64) {
    let mut put = |rel: &str, data: Vec<u8>| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &data).unwrap();
        model.insert(format!("{prefix}{rel}"), Node::File(data));
    };
    put("etc/fstab", b"UUID=x / btrfs defaults 0 0\n".to_vec());
    put("etc/hostname", b"guest\n".to_vec());
    put("boot/vmlinuz", pattern(300_000, seed));
    put("boot/initrd.img", pattern(1_500_000, seed + 1));
    put("usr/lib/text.txt", b"compressible text ".repeat(20_000));
    for i in 0..n_small {
        put(&format!("many/file_{i:05}"), format!("small file {i}\n").into_bytes());
    }
    std::os::unix::fs::symlink("usr/lib", dir.join("lib")).unwrap();
    model.insert(format!("{prefix}lib"), Node::Link("usr/lib".into()));
    for d in ["etc", "boot", "usr", "usr/lib", "many"] {
        model.insert(format!("{prefix}{d}"), Node::Dir);
    }
}

fn mkfs(img: &Path, src: &Path, args: &[&str]) {
    std::fs::File::create(img).unwrap().set_len(FS_LEN).unwrap();
    let mut a = vec!["-q", "-f", "--rootdir", src.to_str().unwrap()];
    a.extend_from_slice(args);
    a.push(img.to_str().unwrap());
    let o = run("mkfs.btrfs", &a);
    assert!(o.status.success(), "mkfs.btrfs {a:?}: {}", String::from_utf8_lossy(&o.stderr));
}

fn open<'a>(ov: &'a CowOverlay<RawImage>) -> Result<Btrfs<'a>, FsError> {
    match fs::open(Volume::new(ov, 0, FS_LEN, "fs.img")?, "btrfs", "fs.img")? {
        Filesystem::Btrfs(b) => Ok(b),
        _ => panic!("the dispatch returned another writer for btrfs"),
    }
}

/// `btrfs check --readonly` exits 0 with no error lines.
fn assert_check_clean(img: &Path) {
    let o = run("btrfs", &["check", "--readonly", img.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && !text.contains("ERROR"), "btrfs check --readonly:\n{text}");
}

/// The kernel's `btrfs scrub -r` on a read-only loop mount of `img`: every data checksum and
/// both copies of DUP metadata verified. Skipped (one line) where this host cannot mount.
fn assert_scrub_clean(img: &Path, work: &Path) {
    let mnt = work.join("scrub-mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let m = run("mount", &["-o", "loop,ro", img.to_str().unwrap(), mnt.to_str().unwrap()]);
    if !m.status.success() {
        eprintln!("scrub skipped: cannot loop-mount here: {}", String::from_utf8_lossy(&m.stderr).trim());
        return;
    }
    let o = run("btrfs", &["scrub", "start", "-B", "-r", mnt.to_str().unwrap()]);
    assert!(run("umount", &[mnt.to_str().unwrap()]).status.success());
    let text = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && text.contains("no errors found"), "btrfs scrub -r:\n{text}");
}

/// What `btrfs restore -S -r root` gives back of one subvolume (no nested subvolumes).
fn restore(img: &Path, root: u64, to: &Path) -> Model {
    std::fs::create_dir_all(to).unwrap();
    let o = run("btrfs", &["restore", "-S", "-x", "-m", "-r", &root.to_string(), img.to_str().unwrap(), to.to_str().unwrap()]);
    assert!(o.status.success(), "btrfs restore -r {root}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let mut m = Model::new();
    fn walk(base: &Path, d: &Path, m: &mut Model) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(base).unwrap().to_str().unwrap().to_string();
            let md = std::fs::symlink_metadata(&p).unwrap();
            if md.file_type().is_symlink() {
                m.insert(rel, Node::Link(std::fs::read_link(&p).unwrap().to_str().unwrap().into()));
            } else if md.is_dir() {
                m.insert(rel, Node::Dir);
                walk(base, &p, m);
            } else {
                m.insert(rel, Node::File(std::fs::read(&p).unwrap()));
            }
        }
    }
    walk(to, to, &mut m);
    m
}

/// Differences between two models, for assertion messages.
fn diff(want: &Model, got: &Model) -> Vec<String> {
    let mut d = Vec::new();
    for (k, v) in want {
        match got.get(k) {
            None => d.push(format!("missing {k}")),
            Some(g) if g != v => d.push(format!("differs {k}")),
            _ => {}
        }
    }
    d.extend(got.keys().filter(|k| !want.contains_key(*k)).map(|k| format!("extra {k}")));
    d.truncate(20);
    d
}


/// `ops` random edits through Ferry under `prefix` (a path in the viewed subvolume), mirrored
/// in `model`. `old_extents_frozen`: files with regular extents from before this session are
/// not rewritten or removed (the writer refuses that on non-CRC32C filesystems).
fn churn(b: &mut Btrfs, model: &mut Model, labels: &mut Labels, prefix: &str, ops: usize, seed: u64, old_extents_frozen: bool) -> usize {
    let mut rng = Rng(seed | 1);
    let mut fresh: Vec<String> = Vec::new();
    let mut done = 0;
    b.mkdir(&format!("/{prefix}new{seed}"), 0o755, 0, 0).unwrap();
    model.insert(format!("{prefix}new{seed}"), Node::Dir);
    let mut dirs = vec![format!("{prefix}new{seed}"), format!("{prefix}many"), format!("{prefix}etc")];
    for i in 0..ops {
        let files: Vec<String> = model.iter().filter(|(k, v)| k.starts_with(prefix) && matches!(v, Node::File(_))).map(|(k, _)| k.clone()).collect();
        let editable: Vec<String> = files.iter().filter(|f| !old_extents_frozen || fresh.contains(f) || matches!(&model[*f], Node::File(d) if d.len() <= 2048)).cloned().collect();
        // Mostly inline (the fs tree grows and splits); mkfs --rootdir leaves data block groups
        // a few MiB of room and the writer allocates no new chunks.
        let size = match rng.below(10) {
            0..=5 => rng.below(200),
            6..=8 => rng.below(2048),
            _ => 2049 + rng.below(40_000),
        };
        match rng.below(12) {
            0..=2 => {
                let d = dirs[rng.below(dirs.len())].clone();
                let p = format!("{d}/c{seed}_{i}");
                let data = pattern(size, seed + i as u64);
                b.create_file(&format!("/{p}"), &data, 0o644, 0, 0).unwrap();
                model.insert(p.clone(), Node::File(data));
                fresh.push(p);
            }
            3..=4 if !editable.is_empty() => {
                let p = editable[rng.below(editable.len())].clone();
                let data = pattern(size, seed ^ i as u64);
                b.write_file(&format!("/{p}"), &data).unwrap();
                model.insert(p.clone(), Node::File(data));
                fresh.push(p);
            }
            5..=6 if !editable.is_empty() => {
                let p = editable[rng.below(editable.len())].clone();
                b.unlink(&format!("/{p}")).unwrap();
                model.remove(&p);
                labels.remove(&p);
            }
            7..=8 if !editable.is_empty() => {
                let p = editable[rng.below(editable.len())].clone();
                let to = if rng.below(3) == 0 && editable.len() > 1 { editable[rng.below(editable.len())].clone() } else { format!("{}/r{seed}_{i}", dirs[rng.below(dirs.len())]) };
                b.rename(&format!("/{p}"), &format!("/{to}")).unwrap();
                let n = model.remove(&p).unwrap();
                labels.rename(&p, &to);
                model.insert(to.clone(), n);
                fresh.push(to);
            }
            9 => {
                let p = format!("{}/d{seed}_{i}", dirs[rng.below(dirs.len())]);
                b.mkdir(&format!("/{p}"), 0o750, 0, 0).unwrap();
                model.insert(p.clone(), Node::Dir);
                dirs.push(p);
            }
            10 => {
                let p = format!("{}/l{seed}_{i}", dirs[rng.below(dirs.len())]);
                let t = format!("../target/{}", "x".repeat(rng.below(300)));
                b.symlink(&format!("/{p}"), t.as_bytes(), 0, 0).unwrap();
                model.insert(p, Node::Link(t));
            }
            _ if !files.is_empty() => {
                let p = files[rng.below(files.len())].clone();
                let v = format!("system_u:object_r:etc_t:s0:{i}\0");
                b.set_xattr(&format!("/{p}"), "security.selinux", v.as_bytes()).unwrap();
                assert_eq!(b.get_xattr(&format!("/{p}"), "security.selinux").unwrap().as_deref(), Some(v.as_bytes()));
                labels.xattrs.insert(p.clone(), v.into_bytes());
                labels.perms.insert(p.clone(), (0o600 + (i as u32 % 0o100), 1000, 1000));
                b.set_mode(&format!("/{p}"), 0o600 + (i as u32 % 0o100)).unwrap();
                b.set_owner(&format!("/{p}"), 1000, 1000).unwrap();
            }
            _ => continue,
        }
        done += 1;
    }
    done
}

/// Ferry's own reads agree with the model (before commit: reads see the open transaction).
/// `getfattr` on the restored files (btrfs restore -x) shows the labels Ferry set, and their
/// mode and owner (btrfs restore -m) those Ferry set.
fn assert_labels(dir: &Path, labels: &Labels) {
    use std::os::unix::fs::MetadataExt;
    for (p, (mode, uid, gid)) in &labels.perms {
        let md = std::fs::symlink_metadata(dir.join(p)).unwrap();
        assert_eq!((md.mode() & 0o7777, md.uid(), md.gid()), (*mode, *uid, *gid), "{p}: mode and owner after btrfs restore -m");
    }
    if !have("getfattr") {
        eprintln!("labels not read back: getfattr not installed");
        return;
    }
    for (p, v) in &labels.xattrs {
        let o = run("getfattr", &["--only-values", "-n", "security.selinux", dir.join(p).to_str().unwrap()]);
        assert_eq!(&o.stdout, v, "{p}: security.selinux after btrfs restore -x");
    }
}

fn assert_reads(b: &Btrfs, model: &Model, prefix: &str) {
    for (k, v) in model.iter().filter(|(k, _)| k.starts_with(prefix)) {
        match v {
            Node::File(d) => {
                let got = b.read_file(&format!("/{k}"), 1 << 30).unwrap();
                let first = got.iter().zip(d).position(|(a, b)| a != b);
                assert!(&got == d, "{k}: {} bytes read, {} written, first difference at {first:?}", got.len(), d.len());
            }
            Node::Link(t) => assert_eq!(b.read_link(&format!("/{k}")).unwrap(), t.as_bytes(), "{k}"),
            Node::Dir => {
                let mut names: Vec<String> = b.read_dir(&format!("/{k}")).unwrap().into_iter().map(|n| String::from_utf8(n).unwrap()).collect();
                names.sort();
                let mut want: Vec<String> = model.keys().filter_map(|m| m.strip_prefix(&format!("{k}/")).filter(|r| !r.contains('/')).map(str::to_string)).collect();
                want.sort();
                assert_eq!(names, want, "{k}");
            }
        }
    }
}

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        Case { dir: tempfile::Builder::new().prefix("ferry-btrfs").tempdir_in(std::env::var("TMPDIR").unwrap_or("/var/tmp".into())).unwrap() }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
}

/// One filesystem: mkfs with `args`, churn, commit, check, restore; a second session on
/// CRC32C filesystems (rewriting and freeing what the first wrote and what mkfs wrote).
fn round_trip(args: &[&str], ops: usize, seed: u64) {
    let c = Case::new();
    let mut model = Model::new();
    source(&c.path("src"), &mut model, "", 300, seed);
    let img = c.path("fs.img");
    mkfs(&img, &c.path("src"), args);
    let mut labels = Labels::new();
    let crc = !args.iter().any(|a| matches!(*a, "xxhash" | "sha256" | "blake2"));
    let sessions = if crc { 2 } else { 1 };
    let mut cur = img.clone();
    for s in 0..sessions {
        let ov = CowOverlay::new(RawImage::open(&cur).unwrap()).unwrap();
        let mut b = open(&ov).unwrap();
        let n = churn(&mut b, &mut model, &mut labels, "", ops, seed + s, !crc);
        if s == 0 {
            eprintln!("{args:?}: {n} edits");
        }
        assert_reads(&b, &model, "");
        b.commit().unwrap();
        let out = c.path(&format!("out{s}.img"));
        extract(&ov, &out);
        assert_check_clean(&out);
        if args.contains(&"^free-space-tree") {
            // The kernel drops a v1 space cache whose generation is not the superblock's.
            let sb = String::from_utf8_lossy(&run("btrfs", &["inspect-internal", "dump-super", out.to_str().unwrap()]).stdout).into_owned();
            let field = |f: &str| sb.lines().find_map(|l| l.strip_prefix(f).map(|v| v.trim().to_string())).unwrap_or_default();
            assert_ne!(field("cache_generation"), field("generation"), "{sb}");
        }
        let got = restore(&out, 5, &c.path(&format!("restore{s}")));
        assert!(diff(&model, &got).is_empty(), "{args:?} session {s}: {:?}", diff(&model, &got));
        assert_labels(&c.path(&format!("restore{s}")), &labels);
        assert_scrub_clean(&out, c.dir.path());
        cur = out;
    }
    if !crc {
        // Freeing a data extent mkfs wrote: refused in one line, nothing written.
        let ov = CowOverlay::new(RawImage::open(&cur).unwrap()).unwrap();
        let mut b = open(&ov).unwrap();
        let e = b.write_file("/boot/vmlinuz", b"x").unwrap_err().to_string();
        assert!(e.contains("freeing the data extent") && !e.contains('\n'), "{e}");
    }
}

#[test]
fn crc32c_plain() {
    if tools() {
        round_trip(&[], 1500, 11);
    }
}

#[test]
fn crc32c_zstd_no_free_space_tree() {
    if tools() {
        round_trip(&["--compress", "zstd", "-O", "^free-space-tree"], 800, 12);
    }
}

#[test]
fn crc32c_lzo_zlib() {
    if tools() {
        round_trip(&["--compress", "lzo"], 500, 13);
        round_trip(&["--compress", "zlib", "-O", "block-group-tree"], 500, 14);
    }
}

/// 4 KiB nodes are refused in one line naming the node size (btrfs-transaction 0.13 lost
/// items there after a few hundred edits).
#[test]
fn small_nodes_refused() {
    if !tools() {
        return;
    }
    let c = Case::new();
    let mut model = Model::new();
    source(&c.path("src"), &mut model, "", 10, 15);
    let img = c.path("fs.img");
    mkfs(&img, &c.path("src"), &["--nodesize", "4096"]);
    let ov = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    let e = open(&ov).err().expect("4 KiB nodes opened").to_string();
    assert!(e.contains("nodesize 4096") && !e.contains('\n'), "{e}");
}

#[test]
fn other_checksums() {
    if tools() {
        for (i, csum) in ["xxhash", "sha256", "blake2"].iter().enumerate() {
            round_trip(&["--csum", csum], 500, 20 + i as u64);
        }
    }
}

/// Subvolumes made by mkfs and a snapshot made by the kernel: Ferry edits an unrelated
/// subvolume (the others byte-identical after), refuses the snapshotted one naming the
/// snapshot.
#[test]
fn subvolumes_and_snapshots() {
    if !tools() {
        return;
    }
    let c = Case::new();
    let mut model = Model::new();
    let src = c.path("src");
    source(&src.join("@"), &mut model, "", 2000, 31);
    let mut home = Model::new();
    source(&src.join("@home"), &mut home, "", 50, 32);
    let img = c.path("fs.img");
    mkfs(&img, &src, &["--subvol", "default:@", "--subvol", "@home"]);
    // A snapshot of @ made by the kernel.
    let mnt = c.path("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let m = run("mount", &["-o", "loop,subvolid=5", img.to_str().unwrap(), mnt.to_str().unwrap()]);
    if !m.status.success() {
        eprintln!("skipped: cannot loop-mount here: {}", String::from_utf8_lossy(&m.stderr).trim());
        return;
    }
    let s = run("btrfs", &["subvolume", "snapshot", mnt.join("@").to_str().unwrap(), mnt.join("snap").to_str().unwrap()]);
    let list = String::from_utf8_lossy(&run("btrfs", &["subvolume", "list", mnt.to_str().unwrap()]).stdout).into_owned();
    assert!(run("umount", &[mnt.to_str().unwrap()]).status.success());
    assert!(s.status.success(), "snapshot: {}", String::from_utf8_lossy(&s.stderr));
    let id = |name: &str| -> u64 { list.lines().find(|l| l.ends_with(&format!("path {name}"))).and_then(|l| l.split_whitespace().nth(1)).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{name} not in {list}")) };
    let (root_id, home_id, snap_id) = (id("@"), id("@home"), id("snap"));
    let before: Vec<Model> = [root_id, snap_id].iter().map(|&r| restore(&img, r, &c.path(&format!("before{r}")))).collect();

    let ov = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    let mut b = open(&ov).unwrap();
    assert_eq!(b.subvolume(), root_id, "the default subvolume is @");
    let e = b.write_file("/etc/hostname", b"converted\n").unwrap_err().to_string();
    assert!(e.contains("shared with snapshots") && e.contains("snap") && e.contains("@") && !e.contains('\n'), "{e}");
    let mut b = open(&ov).unwrap();
    b.view_path("@home").unwrap();
    assert_eq!(b.subvolume(), home_id);
    let mut labels = Labels::new();
    let n = churn(&mut b, &mut home, &mut labels, "", 1000, 33, false);
    eprintln!("@home: {n} edits");
    b.commit().unwrap();
    let out = c.path("out.img");
    extract(&ov, &out);
    assert_check_clean(&out);
    let got = restore(&out, home_id, &c.path("after-home"));
    assert!(diff(&home, &got).is_empty(), "@home: {:?}", diff(&home, &got));
    assert_labels(&c.path("after-home"), &labels);
    for (i, r) in [root_id, snap_id].iter().enumerate() {
        let after = restore(&out, *r, &c.path(&format!("after{r}")));
        assert!(before[i] == after, "subvolume {r} changed: {:?}", diff(&before[i], &after));
    }
    assert_eq!(before[0].get("etc/hostname"), model.get("etc/hostname"));
}
