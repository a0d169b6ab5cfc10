//! XFS reading and in-place editing on images made by `mkfs.xfs -p` (v5 with Debian 12's and
//! RHEL's feature sets, v4, 4 KiB and 1 KiB blocks), judged by `xfs_repair -n` and `xfs_db`.

mod fs_support;

use ferry_converters::fs::xfs::{FileKind, Xfs};
use ferry_converters::fs::{self, FsError, Volume};
use ferry_formats::disk::{BlockDevice, CowOverlay, RawImage};
use fs_support::xfs::{assert_repair_clean, db_sb, extract, open, xfs_db, Mounted};
use fs_support::{have, pattern, run};
use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// mkfs.xfs refuses filesystems under 300 MB; the image is sparse.
const FS_LEN: u64 = 320 << 20;
const LONG_TARGET_LEN: usize = 700;

struct Tree {
    files: BTreeMap<String, (Vec<u8>, u32, u32, u32)>,
    dirs: BTreeMap<String, usize>,
    links: BTreeMap<String, String>,
}

/// The source tree: files, one directory in each format (by entry count), symlinks.
fn tree() -> Tree {
    let mut files = BTreeMap::new();
    files.insert("etc/fstab".to_string(), (b"/dev/sda1 / xfs defaults 0 0\n".to_vec(), 0o644, 0, 0));
    files.insert("etc/hostname".to_string(), (b"rhel\n".to_vec(), 0o644, 0, 0));
    files.insert("etc/shadow".to_string(), (b"root:*:19000::::::\n".to_vec(), 0o600, 0, 42));
    files.insert("big.bin".to_string(), (pattern(300_000, 7), 0o644, 1000, 1000));
    let mut dirs = BTreeMap::new();
    for (d, n) in [("sf", 3), ("blk", 30), ("leaf", 400), ("node", 3000)] {
        dirs.insert(d.to_string(), n);
        for i in 0..n {
            files.insert(format!("{d}/entry_number_{i:05}"), (format!("{d} {i}\n").into_bytes(), 0o644, 0, 0));
        }
    }
    let mut links = BTreeMap::new();
    links.insert("bin".to_string(), "usr/bin".to_string());
    links.insert("etc/long".to_string(), "/".to_string() + &"x/".repeat(LONG_TARGET_LEN / 2 - 1) + "y");
    Tree { files, dirs, links }
}

/// Writes the protofile for `t` (sources under `src`).
fn protofile(t: &Tree, src: &Path) -> String {
    #[derive(Default)]
    struct Node {
        kids: BTreeMap<String, Node>,
        line: Option<String>,
    }
    let mut root = Node::default();
    let mut add = |path: &str, line: String| {
        let mut n = &mut root;
        let parts: Vec<&str> = path.split('/').collect();
        for p in &parts[..parts.len() - 1] {
            n = n.kids.entry(p.to_string()).or_default();
            n.line.get_or_insert_with(|| "d--755 0 0".into());
        }
        n.kids.entry(parts[parts.len() - 1].to_string()).or_default().line = Some(line);
    };
    for (i, (p, (data, mode, uid, gid))) in t.files.iter().enumerate() {
        let f = src.join(format!("f{i}"));
        std::fs::write(&f, data).unwrap();
        add(p, format!("---{mode:03o} {uid} {gid} {}", f.display()));
    }
    for (p, target) in &t.links {
        add(p, format!("l--777 0 0 {target}"));
    }
    fn emit(n: &Node, out: &mut String) {
        for (name, k) in &n.kids {
            let line = k.line.clone().unwrap_or_default();
            out.push_str(&format!("{name} {line}\n"));
            if line.starts_with('d') {
                emit(k, out);
                out.push_str("$\n");
            }
        }
    }
    let mut out = "/dev/null\n0 0\nd--755 0 0\n".to_string();
    emit(&root, &mut out);
    out.push_str("$\n");
    out
}

struct Image {
    _dir: tempfile::TempDir,
    img: PathBuf,
    work: PathBuf,
}

/// A filesystem made by `mkfs.xfs -p` from [`tree`] with `args`; None without xfsprogs.
fn make(args: &[&str]) -> Option<(Image, Tree)> {
    if !have("mkfs.xfs") || !have("xfs_repair") || !have("xfs_db") {
        eprintln!("skipping: xfsprogs not installed");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let mut t = tree();
    if !args.contains(&"crc=0") {
        // mkfs.xfs 6.1 -p writes remote symlink blocks of v5 filesystems with a bad CRC (its
        // own xfs_repair -n flags them): remote symlinks are tested on v4 only.
        t.links.remove("etc/long");
    }
    let proto = dir.path().join("proto");
    std::fs::write(&proto, protofile(&t, &src)).unwrap();
    let img = dir.path().join("fs.img");
    std::fs::File::create(&img).unwrap().set_len(FS_LEN).unwrap();
    let mut a = vec!["-q", "-f", "-p", proto.to_str().unwrap()];
    a.extend_from_slice(args);
    a.push(img.to_str().unwrap());
    let o = run("mkfs.xfs", &a);
    assert!(o.status.success(), "mkfs.xfs {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    let work = dir.path().join("work.img");
    Some((Image { _dir: dir, img, work }, t))
}

/// `field = value` of `xfs_db print` on `path`'s inode.
fn db_field(img: &Path, path: &str, field: &str) -> String {
    let out = xfs_db(img, &[&format!("path {path}"), &format!("print {field}")]);
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{field} = ")))
        .unwrap_or_else(|| panic!("xfs_db: no {field} for {path}: {out}"))
        .to_string()
}

/// A file's contents as xfs_db maps them (`bmap`), read straight from the image.
fn db_read(img: &Path, path: &str) -> Vec<u8> {
    let sb = xfs_db(img, &["sb 0", "print blocksize agblocks"]);
    let num = |k: &str| -> u64 {
        sb.lines().find_map(|l| l.strip_prefix(&format!("{k} = "))).unwrap().trim().parse().unwrap()
    };
    let (bs, agblocks) = (num("blocksize"), num("agblocks"));
    let size: u64 = db_field(img, path, "core.size").parse().unwrap();
    let raw = std::fs::read(img).unwrap();
    let mut out = vec![0u8; size as usize];
    for l in xfs_db(img, &[&format!("path {path}"), "bmap"]).lines() {
        // data offset 0 startblock 32778 (1/10) count 1 flag 0
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.first() != Some(&"data") {
            continue;
        }
        let off: u64 = w[2].parse().unwrap();
        let (ag, agbno) = w[5].trim_matches(|c| c == '(' || c == ')').split_once('/').unwrap();
        let (ag, agbno): (u64, u64) = (ag.parse().unwrap(), agbno.parse().unwrap());
        let count: u64 = w[7].parse().unwrap();
        for k in 0..count {
            let lpos = (off + k) * bs;
            if lpos >= size {
                break;
            }
            let n = bs.min(size - lpos) as usize;
            let p = ((ag * agblocks + agbno + k) * bs) as usize;
            out[lpos as usize..lpos as usize + n].copy_from_slice(&raw[p..p + n]);
        }
    }
    out
}

/// Everything in [`tree`] reads back as written, each directory format is what xfs_db says.
fn check_reads(x: &Xfs, t: &Tree, img: &Path) {
    // Every file outside the big directories, and a sample inside them (each lookup reads
    // the directory; the listings below cover every name).
    for (k, (p, (data, mode, uid, gid))) in t.files.iter().enumerate() {
        if (p.starts_with("node/") || p.starts_with("leaf/")) && k % 97 != 0 {
            continue;
        }
        let path = format!("/{p}");
        assert_eq!(&x.read_file(&path, 1 << 30).unwrap(), data, "{path}");
        let md = x.symlink_metadata(&path).unwrap();
        assert_eq!((md.kind, u32::from(md.perm), md.uid, md.gid), (FileKind::Regular, *mode, *uid, *gid), "{path}");
    }
    for (d, n) in &t.dirs {
        let mut names: Vec<String> =
            x.read_dir(&format!("/{d}")).unwrap().into_iter().map(|e| String::from_utf8(e.name).unwrap()).collect();
        names.sort();
        let want: Vec<String> = (0..*n).map(|i| format!("entry_number_{i:05}")).collect();
        assert_eq!(names, want, "/{d}");
    }
    for (p, target) in &t.links {
        assert_eq!(x.read_link(&format!("/{p}")).unwrap(), target.as_bytes(), "/{p}");
    }
    assert_eq!(db_field(img, "/sf", "core.format"), "1 (local)");
    if t.links.contains_key("etc/long") {
        assert_eq!(db_field(img, "/etc/long", "core.format"), "2 (extents)", "remote symlink");
    }
    assert_eq!(db_field(img, "/bin", "core.format"), "1 (local)", "inline symlink");
    let dirblk: u64 = xfs_db(img, &["sb 0", "print dirblklog blocksize"])
        .lines()
        .filter_map(|l| l.split_once(" = "))
        .map(|(_, v)| v.trim().parse::<u64>().unwrap())
        .reduce(|log, bs| bs << log)
        .unwrap();
    let size = |d: &str| db_field(img, d, "core.size").parse::<u64>().unwrap();
    assert!(size("/node") > 2 * dirblk, "/node spans several data blocks: {}", size("/node"));
    // A following symlink in the middle of a path.
    assert!(x.metadata("/etc/../etc/fstab").is_ok());
}

/// The version and features the writer (and inspection, same table) names are xfs_db's.
fn check_features(x: &Xfs, img: &Path) {
    let db = xfs_db(img, &["version"]);
    let flags: Vec<&str> = db.split(" = ").nth(1).unwrap_or("").trim().split(',').collect();
    assert_eq!(x.version(), flags[0].to_lowercase(), "{db}");
    let db_name = |f: &str| match f {
        "sparse" => "SPARSE_INODES".to_string(),
        "inobtcount" => "INOBTCNT".to_string(),
        "unwritten" => "EXTFLG".to_string(),
        "lazy-count" => "LAZYSBCOUNT".to_string(),
        "projid32bit" => "PROJID32BIT".to_string(),
        f => f.to_uppercase(),
    };
    for f in x.features() {
        assert!(flags.contains(&db_name(f).as_str()), "{f} not in xfs_db's {db}");
    }
    for f in ["FINOBT", "SPARSE_INODES", "REFLINK", "RMAPBT", "INOBTCNT", "BIGTIME", "CRC", "FTYPE", "NREXT64"] {
        if flags.contains(&f) {
            assert!(x.features().iter().any(|n| db_name(n) == f), "xfs_db's {f} not reported: {:?}", x.features());
        }
    }
}

/// Reads, then in-place edits on the overlay; xfs_repair -n and xfs_db judge the result.
fn exercise(args: &[&str]) {
    let Some((im, t)) = make(args) else { return };
    assert_repair_clean(&im.img);
    let ov = CowOverlay::new(RawImage::open(&im.img).unwrap()).unwrap();
    let new_fstab = b"UUID=0c8e4f6a-1f2e-4d3c-9b8a-7a6b5c4d3e2f / xfs defaults 0 0\n".to_vec();
    let short_big = pattern(5_000, 9);
    let grown = pattern(100_000, 3);
    {
        let mut x = open(&ov).unwrap();
        check_reads(&x, &t, &im.img);
        check_features(&x, &im.img);
        x.write_file("/etc/fstab", &new_fstab).unwrap();
        x.write_file("/big.bin", &short_big).unwrap();
        // Growing past the file's blocks goes through the allocator (and, with rmapbt=1,
        // the reverse mappings).
        x.write_file("/etc/hostname", &grown).unwrap();
        x.set_mode("/etc/shadow", 0o640).unwrap();
        x.set_owner("/etc/hostname", 1000, 100).unwrap();
        x.set_times("/etc/hostname", 1_600_000_000, 1_700_000_000).unwrap();
        x.set_mode("/node", 0o700).unwrap();
    }
    std::fs::remove_file(&im.work).ok();
    extract(&ov, &im.work);
    assert_repair_clean(&im.work);
    let w = &im.work;
    assert_eq!(db_read(w, "/etc/fstab"), new_fstab);
    assert_eq!(db_read(w, "/big.bin"), short_big);
    assert_eq!(db_field(w, "/big.bin", "core.size"), "5000");
    assert_eq!(db_field(w, "/etc/shadow", "core.mode"), "0100640");
    assert_eq!(db_field(w, "/etc/shadow", "core.gid"), "42");
    assert_eq!(db_read(w, "/etc/hostname"), grown);
    assert_eq!(db_field(w, "/etc/hostname", "core.size"), "100000");
    assert_eq!(db_field(w, "/etc/hostname", "core.uid"), "1000");
    assert_eq!(db_field(w, "/etc/hostname", "core.gid"), "100");
    assert!(db_field(w, "/etc/hostname", "core.mtime.sec").contains("2023"), "mtime 1.7e9 is in Nov 2023");
    assert_eq!(db_field(w, "/node", "core.mode"), "040700");
    // The source image never changed.
    let o = run("cmp", &[im.img.to_str().unwrap(), w.to_str().unwrap()]);
    assert!(!o.status.success(), "the edits reached the extracted copy only");
    // Reopened, the filesystem reads back what was written.
    let ov2 = CowOverlay::new(RawImage::open(w).unwrap()).unwrap();
    let x = open(&ov2).unwrap();
    assert_eq!(x.read_file("/etc/fstab", 1 << 20).unwrap(), new_fstab);
    assert_eq!(x.metadata("/etc/hostname").unwrap().mtime, 1_700_000_000);
}

#[test]
fn v5_debian12_defaults_4k() {
    exercise(&[]);
}

#[test]
fn v5_rhel_rmapbt_reflink_1k_blocks() {
    exercise(&["-b", "size=1024", "-m", "rmapbt=1,reflink=1,finobt=1", "-i", "sparse=1"]);
}

#[test]
fn v5_rhel7_like_no_reflink_no_bigtime() {
    exercise(&["-m", "reflink=0,bigtime=0,inobtcount=0,rmapbt=0"]);
}

#[test]
fn v5_nrext64_4k_sectors() {
    exercise(&["-i", "nrext64=1", "-s", "size=4096"]);
}

#[test]
fn v4_crc0_4k() {
    exercise(&["-m", "crc=0"]);
}

#[test]
fn v4_crc0_1k_dirblocks_8k() {
    exercise(&["-m", "crc=0", "-b", "size=1024", "-n", "size=8192"]);
}

/// Bad headers and a log that needs recovery are refused in one line naming the field.
#[test]
fn refusals() {
    let Some((im, _)) = make(&[]) else { return };
    // The superblock sector and the first log blocks, patched into sparse copies.
    let raw = {
        let mut b = vec![0u8; 512];
        std::os::unix::fs::FileExt::read_exact_at(&std::fs::File::open(&im.img).unwrap(), &mut b, 0).unwrap();
        b
    };
    let try_open = |patches: &[(u64, Vec<u8>)]| -> String {
        let o = run("cp", &["--sparse=always", im.img.to_str().unwrap(), im.work.to_str().unwrap()]);
        assert!(o.status.success());
        let f = std::fs::OpenOptions::new().write(true).open(&im.work).unwrap();
        for (at, bytes) in patches {
            std::os::unix::fs::FileExt::write_all_at(&f, bytes, *at).unwrap();
        }
        drop(f);
        let ov = CowOverlay::new(RawImage::open(&im.work).unwrap()).unwrap();
        let r = open(&ov).map(|_| ());
        r.map_err(|e| e.to_string()).err().unwrap_or_default()
    };
    // A flipped superblock byte: the CRC catches it.
    let mut b = raw.clone();
    b[150] ^= 1;
    let e = try_open(&[(0, b)]);
    assert!(e.contains("XFS superblock crc"), "{e}");
    // An unknown incompat feature, CRC fixed up: refused by name.
    let mut b = raw.clone();
    let incompat = u32::from_be_bytes(b[216..220].try_into().unwrap()) | 1 << 20;
    b[216..220].copy_from_slice(&incompat.to_be_bytes());
    b[224..228].fill(0);
    let c = crc32c::crc32c(&b[..512]);
    b[224..228].copy_from_slice(&c.to_le_bytes());
    let e = try_open(&[(0, b)]);
    assert!(e.contains("incompat features unknown bits 0x100000"), "{e}");
    assert!(!e.contains('\n'));
    // A log whose last record is not an unmount record: dirty, as xfs_repair -n also says.
    let logstart = u64::from_be_bytes(raw[48..56].try_into().unwrap());
    let agblocks = u64::from(u32::from_be_bytes(raw[84..88].try_into().unwrap()));
    let agblklog = raw[124];
    let bs = u64::from(u32::from_be_bytes(raw[4..8].try_into().unwrap()));
    let log = ((logstart >> agblklog) * agblocks + (logstart & ((1 << agblklog) - 1))) * bs;
    let mut head = vec![0u8; 64 * 512];
    std::os::unix::fs::FileExt::read_exact_at(&std::fs::File::open(&im.img).unwrap(), &mut head, log).unwrap();
    let hdr = (0..64usize).map(|k| k * 512).find(|&p| head[p..p + 4] == [0xfe, 0xed, 0xba, 0xbe]).unwrap();
    let mut op = head[hdr + 512..hdr + 1024].to_vec();
    op[9] &= !0x20;
    let e = try_open(&[(log + hdr as u64 + 512, op)]);
    assert_eq!(e, "the XFS log of fs.img needs recovery: shut the guest down cleanly");
    let o = run("xfs_repair", &["-n", "-f", im.work.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stderr).to_lowercase() + &String::from_utf8_lossy(&o.stdout).to_lowercase();
    assert!(!o.status.success() && text.contains("log"), "xfs_repair -n agrees the log is dirty: {text}");
    // The clean image opens.
    assert_eq!(try_open(&[]), "");
    // The dispatch names a type it has no writer for.
    let ov = CowOverlay::new(RawImage::open(&im.img).unwrap()).unwrap();
    let vol = Volume::new(&ov, 0, ov.size(), "fs.img").unwrap();
    let e = fs::open(vol, "jfs", "fs.img").err().unwrap().to_string();
    assert_eq!(e, "fs.img: unsupported filesystem type jfs (Ferry edits ext2/3/4, XFS, btrfs, FAT and NTFS)");
    assert!(fs::supported("xfs") && fs::supported("btrfs") && fs::supported("vfat") && fs::supported("ntfs") && !fs::supported("jfs"));
    assert!(fs::writable("xfs") && fs::writable("btrfs") && fs::writable("ext4") && !fs::writable("vfat") && !fs::writable("ntfs"));
}

/// What only the kernel makes: a B+tree (bmbt) data fork, a v5 remote symlink, extended
/// attributes (shortform, leaf, remote value), and a log left dirty by a shutdown. Skipped where loop mounts are not available.
#[test]
fn kernel_made_bmbt_remote_symlink_xattrs_dirty_log() {
    if !have("setfattr") || !have("xfs_io") {
        eprintln!("skipping: attr (setfattr) or xfs_io not installed");
        return;
    }
    let Some((im, _)) = make(&[]) else { return };
    let dir = im.img.parent().unwrap().to_path_buf();
    let frag = dir.join("frag.img");
    std::fs::copy(&im.img, &frag).unwrap();
    let target = "/".to_string() + &"deep/".repeat(150) + "target";
    let mut want = Vec::new();
    {
        let Some(m) = Mounted::new(&frag, &dir) else { return };
        // Every other 4 KiB block written: 300 extents, more than the inode holds.
        let f = std::fs::File::create(m.0.join("frag")).unwrap();
        for i in 0..300u64 {
            let block = vec![(i % 251) as u8 + 1; 4096];
            std::os::unix::fs::FileExt::write_at(&f, &block, i * 8192).unwrap();
            want.resize((i * 8192) as usize, 0);
            want.extend_from_slice(&block);
        }
        f.sync_all().unwrap();
        std::os::unix::fs::symlink(&target, m.0.join("remote")).unwrap();
        // Attributes: a shortform fork, and a leaf fork with a remote value.
        let setfattr = |file: &str, name: &str, value: &str| {
            let o = run("setfattr", &["-n", name, "-v", value, m.0.join(file).to_str().unwrap()]);
            assert!(o.status.success(), "setfattr {name}: {}", String::from_utf8_lossy(&o.stderr));
        };
        std::fs::write(m.0.join("labelled"), b"x").unwrap();
        setfattr("labelled", "security.selinux", "system_u:object_r:etc_t:s0");
        setfattr("frag", "security.selinux", "system_u:object_r:var_t:s0");
        setfattr("frag", "user.big", &"v".repeat(3000));
        for i in 0..40 {
            setfattr("frag", &format!("user.attribute_number_{i}"), &format!("value {i}"));
        }
    }
    assert_repair_clean(&frag);
    assert_eq!(db_field(&frag, "/frag", "core.format"), "3 (btree)");
    assert_eq!(db_field(&frag, "/remote", "core.format"), "2 (extents)");
    assert_eq!(db_field(&frag, "/labelled", "core.aformat"), "1 (local)");
    assert_eq!(db_field(&frag, "/frag", "core.aformat"), "2 (extents)");
    let ov = CowOverlay::new(RawImage::open(&frag).unwrap()).unwrap();
    let shorter = pattern(100_000, 4);
    {
        let mut x = open(&ov).unwrap();
        assert_eq!(x.read_file("/frag", 1 << 30).unwrap(), want);
        assert_eq!(x.read_link("/remote").unwrap(), target.as_bytes());
        assert_eq!(x.get_xattr("/labelled", "security.selinux").unwrap().unwrap(), b"system_u:object_r:etc_t:s0");
        assert_eq!(x.get_xattr("/labelled", "user.selinux").unwrap(), None);
        assert_eq!(x.get_xattr("/frag", "security.selinux").unwrap().unwrap(), b"system_u:object_r:var_t:s0");
        assert_eq!(x.get_xattr("/frag", "user.big").unwrap().unwrap(), "v".repeat(3000).as_bytes());
        assert_eq!(x.get_xattr("/frag", "user.attribute_number_39").unwrap().unwrap(), b"value 39");
        assert_eq!(x.get_xattr("/frag", "user.missing").unwrap(), None);
        // The first 100 000 bytes' blocks are every other one (holes between): the rewrite
        // frees what follows the first block, the old bmbt with it, and allocates the rest.
        x.write_file("/frag", &shorter).unwrap();
        assert_eq!(x.read_file("/frag", 1 << 30).unwrap(), shorter);
        // Within the first block it fits.
        x.write_file("/frag", b"rewritten\n").unwrap();
        x.set_mode("/frag", 0o600).unwrap();
    }
    extract(&ov, &im.work);
    assert_repair_clean(&im.work);
    assert_eq!(db_read(&im.work, "/frag"), b"rewritten\n");
    assert_eq!(db_field(&im.work, "/frag", "core.format"), "2 (extents)", "back from btree format");
    // Removed with its leaf attribute fork and remote value blocks.
    {
        let ov2 = CowOverlay::new(RawImage::open(&im.work).unwrap()).unwrap();
        let mut x = open(&ov2).unwrap();
        x.unlink("/frag").unwrap();
        drop(x);
        let gone = dir.join("gone.img");
        extract(&ov2, &gone);
        assert_repair_clean(&gone);
        assert!(!db_ls(&gone, "/").contains_key("frag"));
        std::fs::remove_file(&gone).unwrap();
    }
    assert_eq!(db_field(&im.work, "/frag", "core.mode"), "0100600");

    // A shutdown with a logged but unwritten change leaves the log dirty.
    let dirty = dir.join("dirty.img");
    std::fs::copy(&im.img, &dirty).unwrap();
    {
        let Some(m) = Mounted::new(&dirty, &dir) else { return };
        let f = std::fs::File::create(m.0.join("new")).unwrap();
        f.sync_all().unwrap();
        let o = run("xfs_io", &["-x", "-c", "shutdown", m.0.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let o = run("xfs_repair", &["-n", "-f", dirty.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("valuable metadata changes in a log"), "xfs_repair -n sees the dirty log: {text}");
    let ov = CowOverlay::new(RawImage::open(&dirty).unwrap()).unwrap();
    let e = open(&ov).map(|_| ()).unwrap_err();
    assert_eq!(e.to_string(), "the XFS log of fs.img needs recovery: shut the guest down cleanly");
}

/// The dispatch's XFS writer as a guest root behind `GuestFs`: reads, edits, new files,
/// directories and symlinks, unlink and rename go through, on an rmapbt filesystem too.
#[test]
fn guestfs_over_an_xfs_root() {
    use ferry_converters::guestfs::{Ext4GuestFs, FileKind as GKind, GuestFs, GuestFsError};
    let Some((im, _)) = make(&[]) else { return };
    let ov = CowOverlay::new(RawImage::open(&im.img).unwrap()).unwrap();
    {
        let root = fs::open(Volume::new(&ov, 0, ov.size(), "fs.img").unwrap(), "xfs", "fs.img").unwrap();
        let mut g = Ext4GuestFs::with_root(root);
        assert_eq!(g.read_dir("/").unwrap(), ["big.bin", "bin", "blk", "etc", "leaf", "node", "sf"]);
        assert_eq!(g.lstat("/bin").unwrap().unwrap().kind, GKind::Symlink);
        assert_eq!(g.read_link("/bin").unwrap(), "usr/bin");
        assert!(g.stat("/bin").unwrap().is_none(), "dangling: /usr/bin does not exist");
        assert_eq!(g.read_file("/etc/fstab").unwrap(), b"/dev/sda1 / xfs defaults 0 0\n");
        assert_eq!(g.stat("/etc/shadow").unwrap().unwrap().mode, 0o600);
        g.write_file("/etc/fstab", b"UUID=1 / xfs defaults 0 0\n", 0o644).unwrap();
        g.set_mode("/etc/hostname", 0o600).unwrap();
        g.set_owner("/etc/hostname", 7, 8).unwrap();
        g.write_file("/etc/new", b"x\n", 0o600).unwrap();
        g.mkdir("/etc/newdir", 0o700).unwrap();
        g.write_file("/etc/newdir/grown", &pattern(50_000, 4), 0o644).unwrap();
        g.symlink("/etc/fstab", "/etc/link").unwrap();
        g.unlink("/etc/shadow").unwrap();
        g.rename("/etc/hostname", "/etc/hostname2").unwrap();
        assert_eq!(g.read_dir("/etc").unwrap(), ["fstab", "hostname2", "link", "new", "newdir"]);
        assert_eq!(g.read_file("/etc/link").unwrap(), b"UUID=1 / xfs defaults 0 0\n");
        assert!(matches!(g.unlink("/etc/newdir"), Err(GuestFsError::Io { .. } | GuestFsError::Unsupported { .. })));
        g.write_file("/leaf/new", b"x", 0o644).unwrap();
        assert!(matches!(g.read_file("/etc/missing"), Err(GuestFsError::NotFound { .. })));
    }
    extract(&ov, &im.work);
    assert_repair_clean(&im.work);
    assert_eq!(db_read(&im.work, "/etc/fstab"), b"UUID=1 / xfs defaults 0 0\n");
    assert_eq!(db_field(&im.work, "/etc/hostname2", "core.mode"), "0100600");
    assert_eq!(db_field(&im.work, "/etc/hostname2", "core.uid"), "7");
    assert_eq!(db_read(&im.work, "/etc/new"), b"x\n");
    assert_eq!(db_field(&im.work, "/etc/new", "core.mode"), "0100600");
    assert_eq!(db_read(&im.work, "/etc/newdir/grown"), pattern(50_000, 4));
    let etc = db_ls(&im.work, "/etc");
    assert!(!etc.contains_key("shadow") && etc.contains_key("link"), "{etc:?}");
    assert!(db_ls(&im.work, "/leaf").contains_key("new"));
    // On an rmapbt filesystem the same operations keep the reverse mappings exact.
    let Some((im, _)) = make(&["-m", "rmapbt=1,reflink=1"]) else { return };
    let ov = CowOverlay::new(RawImage::open(&im.img).unwrap()).unwrap();
    {
        let root = fs::open(Volume::new(&ov, 0, ov.size(), "fs.img").unwrap(), "xfs", "fs.img").unwrap();
        let mut g = Ext4GuestFs::with_root(root);
        g.write_file("/etc/new", b"x", 0o644).unwrap();
        g.mkdir("/etc/d", 0o755).unwrap();
        g.write_file("/etc/d/grown", &pattern(70_000, 6), 0o644).unwrap();
        g.unlink("/etc/fstab").unwrap();
        g.rename("/etc/hostname", "/etc/f2").unwrap();
    }
    extract(&ov, &im.work);
    assert_repair_clean(&im.work);
    assert_eq!(db_read(&im.work, "/etc/d/grown"), pattern(70_000, 6));
    assert!(!db_ls(&im.work, "/etc").contains_key("fstab"));
}

/// The largest rmapbt height over all AGs and the rmapbt blocks of all AGs together, as
/// xfs_db reads the AGFs (xfs_repair -n checks them against the trees it walks).
fn rmap_tree(img: &Path) -> (u32, u64) {
    let agcount: u32 = db_sb(img, "agcount") as u32;
    let mut out = (0, 0);
    for ag in 0..agcount {
        let f = xfs_db(img, &[&format!("agf {ag}"), "print rmaplevel rmapblocks"]);
        let v: Vec<u64> = f.lines().filter_map(|l| l.split_once(" = ")).map(|(_, v)| v.trim().parse::<u64>().unwrap()).collect();
        out = (out.0.max(v[0] as u32), out.1 + v[1]);
    }
    out
}

/// The largest free-space B+tree height over all AGs, as xfs_db reads the AGFs.
fn free_tree_levels(img: &Path) -> u32 {
    let agcount: u32 = db_sb(img, "agcount") as u32;
    (0..agcount)
        .map(|ag| {
            let out = xfs_db(img, &[&format!("agf {ag}"), "print bnolevel cntlevel"]);
            out.lines().filter_map(|l| l.split_once(" = ")).map(|(_, v)| v.trim().parse::<u32>().unwrap()).max().unwrap()
        })
        .max()
        .unwrap()
}

/// Thousands of frees and allocations: every other file of the node and leaf directories
/// emptied (free space fragmented into a multi-level bnobt/cntbt), then all of them and
/// /big.bin grown again from that fragmented space (trees shrink back). xfs_repair -n is
/// clean after each phase (it checks both trees, the AGFL, the AGF and superblock counters);
/// contents read back through xfs_db's block maps and a reopened filesystem.
fn churn(args: &[&str]) {
    let Some((im, t)) = make(args) else { return };
    let victims: Vec<String> =
        t.files.keys().filter(|p| p.starts_with("node/") || p.starts_with("leaf/")).step_by(2).map(|p| format!("/{p}")).collect();
    assert!(victims.len() >= 1700);
    let bs = db_sb(&im.img, "blocksize") as usize;
    let free0 = db_sb(&im.img, "fdblocks");
    let ov = CowOverlay::new(RawImage::open(&im.img).unwrap()).unwrap();
    {
        let mut x = open(&ov).unwrap();
        for v in &victims {
            x.write_file(v, b"").unwrap();
        }
    }
    let mid = im.work.with_extension("mid");
    extract(&ov, &mid);
    assert_repair_clean(&mid);
    assert!(free_tree_levels(&mid) >= 2, "fragmented free space needs a multi-level tree");
    let rmapbt = args.iter().any(|a| a.contains("rmapbt=1"));
    if rmapbt {
        // Every emptied file left a hole: the rmapbt has a record per remaining file and
        // needs node blocks (low and high keys) to hold them.
        assert!(rmap_tree(&mid).0 >= 2, "rmapbt levels {:?}", rmap_tree(&mid));
    }
    assert_eq!(db_sb(&mid, "fdblocks"), free0 + victims.len() as u64, "each emptied file gave its block back");
    assert_eq!(db_field(&mid, &victims[0], "core.nblocks"), "0");
    std::fs::remove_file(&mid).unwrap();
    let big = pattern(2 << 20, 5);
    {
        let mut x = open(&ov).unwrap();
        for (k, v) in victims.iter().enumerate() {
            x.write_file(v, &pattern(2 * bs + k % bs, k as u64)).unwrap();
        }
        x.write_file("/big.bin", &big).unwrap();
    }
    extract(&ov, &im.work);
    assert_repair_clean(&im.work);
    let w = &im.work;
    for (k, v) in victims.iter().enumerate().step_by(97) {
        assert_eq!(db_read(w, v), pattern(2 * bs + k % bs, k as u64), "{v}");
    }
    assert_eq!(db_read(w, "/big.bin"), big);
    let ov2 = CowOverlay::new(RawImage::open(w).unwrap()).unwrap();
    let x = open(&ov2).unwrap();
    assert_eq!(x.read_file(&victims[1], 1 << 20).unwrap(), pattern(2 * bs + 1, 1));
    assert_eq!(x.read_file("/big.bin", 4 << 20).unwrap(), big);
}

#[test]
fn allocator_churn_v5_1k_blocks() {
    churn(&["-b", "size=1024", "-m", "rmapbt=0,reflink=1"]);
}

/// RHEL/Oracle's `mkfs.xfs -m rmapbt=1,reflink=1` with 1 KiB blocks: the rmapbt grows to
/// several levels and shrinks back, each stage judged by xfs_repair -n's rmap check.
#[test]
fn allocator_churn_v5_rmapbt_reflink_1k_blocks() {
    churn(&["-b", "size=1024", "-m", "rmapbt=1,reflink=1"]);
}

#[test]
fn allocator_churn_v5_rmapbt_reflink_4k() {
    churn(&["-m", "rmapbt=1,reflink=1"]);
}

#[test]
fn allocator_churn_v4_4k() {
    churn(&["-m", "crc=0"]);
}

/// `xfs_db ls` of a directory: name -> inode number.
fn db_ls(img: &Path, dir: &str) -> BTreeMap<String, u64> {
    let out = xfs_db(img, &[&format!("path {dir}"), "ls"]);
    // "8          128                directory      0x0000002e   1 . (good)"
    out.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() >= 7 && w.last() == Some(&"(good)")).then(|| (w[w.len() - 2].to_string(), w[1].parse().unwrap()))
        })
        .collect()
}

/// Creates, links, renames and removes names in shortform directories: new files (with
/// data through the allocator), a directory, inline and remote symlinks; replaced and
/// removed files give their inode and blocks back. Judged by xfs_repair -n (inobt, finobt,
/// AGI and superblock inode counts, directory structure, link counts) and xfs_db's ls and
/// block maps; /sf grown to node form and emptied again goes back to shortform.
fn names(args: &[&str]) {
    /// Enough names to take /sf from shortform through block and leaf to node form.
    const FILLERS: usize = 700;
    let Some((im, _)) = make(args) else { return };
    let ov = CowOverlay::new(RawImage::open(&im.img).unwrap()).unwrap();
    let bs = db_sb(&im.img, "blocksize") as usize;
    let (icount0, ifree0) = (db_sb(&im.img, "icount"), db_sb(&im.img, "ifree"));
    let long: String = "/".to_string() + &"z/".repeat(349) + "q";
    let small = b"new file\n".to_vec();
    let big = pattern(5 * bs + 100, 11);
    {
        let mut x = open(&ov).unwrap();
        x.create_file("/sf/small", &small, 0o640, 7, 8).unwrap();
        x.create_file("/sf/big", &big, 0o644, 0, 0).unwrap();
        x.create_file("/sf/empty", b"", 0o600, 0, 0).unwrap();
        x.mkdir("/sf/d", 0o750, 0, 0).unwrap();
        x.create_file("/sf/d/inner", b"inner\n", 0o644, 0, 0).unwrap();
        x.symlink("/sf/short", b"../etc/fstab", 0, 0).unwrap();
        x.symlink("/sf/long", long.as_bytes(), 0, 0).unwrap();
        x.unlink("/sf/entry_number_00000").unwrap();
        x.rename("/sf/entry_number_00001", "/sf/d/moved").unwrap();
        x.rename("/sf/small", "/sf/empty").unwrap();
        x.mkdir("/sf/d/sub", 0o755, 0, 0).unwrap();
        x.rename("/sf/d", "/moved_dir").unwrap();
        assert!(matches!(x.rename("/moved_dir", "/moved_dir/sub/x").unwrap_err().path_problem(), Some(fs::PathProblem::IntoItself)));
        assert!(matches!(x.create_file("/sf/big", b"", 0o644, 0, 0).unwrap_err().path_problem(), Some(fs::PathProblem::Exists)));
        // Refusals write nothing.
        // Leaf and node directories, within their blocks.
        for d in ["leaf", "node"] {
            for j in 0..20 {
                x.create_file(&format!("/{d}/added_{j}"), format!("{d} added {j}\n").as_bytes(), 0o644, 0, 0).unwrap();
            }
            for j in (0..40).step_by(2) {
                x.unlink(&format!("/{d}/entry_number_{j:05}")).unwrap();
            }
            x.rename(&format!("/{d}/entry_number_00001"), &format!("/{d}/renamed_in_place")).unwrap();
        }
        x.rename("/node/entry_number_00003", "/leaf/from_node").unwrap();
        // A block directory: entries added, removed, renamed in and out.
        x.create_file("/blk/added", b"added\n", 0o644, 0, 0).unwrap();
        x.unlink("/blk/entry_number_00003").unwrap();
        x.rename("/blk/entry_number_00004", "/sf/from_blk").unwrap();
        x.rename("/sf/entry_number_00002", "/blk/from_sf").unwrap();
        // The shortform directory fills up and becomes a block directory, a leaf directory
        // (data blocks added as it grows), then a node directory.
        for j in 0..FILLERS {
            x.create_file(&format!("/sf/filler_with_a_long_name_{j:03}"), b"", 0o644, 0, 0).unwrap();
        }
        assert_eq!(x.read_dir("/sf").unwrap().len(), 5 + FILLERS);
    }
    let mid = im.work.with_extension("mid");
    extract(&ov, &mid);
    assert_repair_clean(&mid);
    let free_index = (64u64 << 30) / bs as u64;
    let bmap = xfs_db(&mid, &["path /sf", "bmap"]);
    assert!(
        bmap.lines().any(|l| l.split_whitespace().nth(2).and_then(|o| o.parse::<u64>().ok()).is_some_and(|o| o >= free_index)),
        "/sf has free-index blocks (node form): {bmap}"
    );
    assert_eq!(db_ls(&mid, "/sf").len(), 2 + 5 + FILLERS);
    std::fs::remove_file(&mid).unwrap();
    {
        let mut x = open(&ov).unwrap();
        for j in 0..FILLERS {
            x.unlink(&format!("/sf/filler_with_a_long_name_{j:03}")).unwrap();
        }
    }
    extract(&ov, &im.work);
    assert_repair_clean(&im.work);
    let w = &im.work;
    let sf = db_ls(w, "/sf");
    let names: Vec<&str> = sf.keys().map(String::as_str).collect();
    assert_eq!(names, [".", "..", "big", "empty", "from_blk", "long", "short"]);
    assert_eq!(db_field(w, "/sf", "core.format"), "1 (local)", "/sf went back to shortform");
    let blk = db_ls(w, "/blk");
    assert_eq!(blk.len(), 2 + 30 - 2 + 2, "{blk:?}");
    assert!(blk.contains_key("added") && blk.contains_key("from_sf") && !blk.contains_key("entry_number_00003"));
    assert_eq!(db_read(w, "/blk/added"), b"added\n");
    for (d, n) in [("leaf", 400), ("node", 3000)] {
        let ls = db_ls(w, &format!("/{d}"));
        let extra = if d == "leaf" { 1 } else { -1 };
        assert_eq!(ls.len() as i64, 2 + n + 20 - 20 + extra, "/{d}");
        assert!(ls.contains_key("added_19") && ls.contains_key("renamed_in_place") && !ls.contains_key("entry_number_00000"));
        assert_eq!(db_read(w, &format!("/{d}/added_7")), format!("{d} added 7\n").as_bytes());
        assert_eq!(db_read(w, &format!("/{d}/renamed_in_place")), format!("{d} 1\n").as_bytes());
    }
    assert_eq!(db_read(w, "/leaf/from_node"), b"node 3\n");
    assert_eq!(db_read(w, "/sf/from_blk"), b"blk 4\n");
    let md = db_ls(w, "/moved_dir");
    assert_eq!(md.keys().map(String::as_str).collect::<Vec<_>>(), [".", "..", "inner", "moved", "sub"]);
    assert_eq!(db_ls(w, "/moved_dir/sub")[".."], md["."]);
    assert_eq!(db_field(w, "/moved_dir", "core.nlinkv2"), "3");
    assert_eq!(db_read(w, "/sf/big"), big);
    assert_eq!(db_read(w, "/sf/empty"), small, "renamed over");
    assert_eq!(db_field(w, "/sf/empty", "core.mode"), "0100640");
    assert_eq!(db_field(w, "/sf/empty", "core.uid"), "7");
    assert_eq!(db_read(w, "/moved_dir/inner"), b"inner\n");
    assert_eq!(db_read(w, "/moved_dir/moved"), b"sf 1\n");
    // Nine inodes taken (small, big, empty, d, inner, short, long, sub, added) and 40 in
    // leaf/node, three given back (two unlinked entries and the file renamed over) and 40
    // in leaf/node; the fillers came and went.
    // (The fillers needed new inode chunks, whose inodes are free again.)
    assert_eq!(db_sb(w, "icount") - db_sb(w, "ifree"), icount0 - ifree0 + 6);
    let ov2 = CowOverlay::new(RawImage::open(w).unwrap()).unwrap();
    let x = open(&ov2).unwrap();
    assert_eq!(x.read_link("/sf/long").unwrap(), long.as_bytes());
    assert_eq!(x.read_link("/sf/short").unwrap(), b"../etc/fstab");
    assert_eq!(x.read_file("/sf/short", 1 << 20).unwrap(), b"/dev/sda1 / xfs defaults 0 0\n");
    assert_eq!(x.read_file("/sf/big", 1 << 20).unwrap(), big);
}

#[test]
fn names_v5_4k() {
    names(&[]);
}

#[test]
fn names_v5_1k_finobt_sparse() {
    names(&["-b", "size=1024", "-m", "rmapbt=0,finobt=1", "-i", "sparse=1"]);
}

#[test]
fn names_v5_4k_rmapbt_reflink() {
    names(&["-m", "rmapbt=1,reflink=1"]);
}

#[test]
fn names_v5_1k_rmapbt_reflink_sparse() {
    names(&["-b", "size=1024", "-m", "rmapbt=1,reflink=1,finobt=1", "-i", "sparse=1"]);
}

#[test]
fn names_v4_4k() {
    names(&["-m", "crc=0"]);
}

/// More files than the existing inode chunks have free inodes: new chunks are allocated
/// (aligned, their inodes initialised free, inobt/finobt records inserted, AGI and
/// superblock counts), judged by xfs_repair -n and xfs_db's inode counts.
fn chunks(args: &[&str]) {
    let Some((im, _)) = make(args) else { return };
    let ov = CowOverlay::new(RawImage::open(&im.img).unwrap()).unwrap();
    let (icount0, ifree0) = (db_sb(&im.img, "icount"), db_sb(&im.img, "ifree"));
    let want = ifree0 + 100;
    let dirs = want.div_ceil(30);
    {
        let mut x = open(&ov).unwrap();
        for d in 0..dirs {
            x.mkdir(&format!("/c{d}"), 0o755, 0, 0).unwrap();
            for f in 0..30 {
                x.create_file(&format!("/c{d}/f{f:02}"), format!("{d}/{f}\n").as_bytes(), 0o644, 0, 0).unwrap();
            }
        }
    }
    extract(&ov, &im.work);
    assert_repair_clean(&im.work);
    let w = &im.work;
    let used = dirs * 31;
    let (icount, ifree) = (db_sb(w, "icount"), db_sb(w, "ifree"));
    assert!(icount > icount0, "new chunks: icount {icount0} -> {icount}");
    assert_eq!((icount - icount0) % 64, 0);
    assert_eq!(icount - ifree, icount0 - ifree0 + used);
    assert_eq!(db_read(w, &format!("/c{}/f29", dirs - 1)), format!("{}/29\n", dirs - 1).as_bytes());
    assert_eq!(db_ls(w, "/c0").len(), 32);
}

#[test]
fn inode_chunks_v5_4k() {
    chunks(&[]);
}

/// New chunks (OWN_INODES) and inobt/finobt growth (OWN_INOBT) mapped; the sparse=1 image
/// starts with mkfs's sparse-capable records.
#[test]
fn inode_chunks_v5_rmapbt_reflink_1k_sparse() {
    chunks(&["-b", "size=1024", "-m", "rmapbt=1,reflink=1,finobt=1", "-i", "sparse=1"]);
}

#[test]
fn inode_chunks_v5_rmapbt_reflink_4k() {
    chunks(&["-m", "rmapbt=1,reflink=1"]);
}

#[test]
fn inode_chunks_v4_1k() {
    chunks(&["-m", "crc=0", "-b", "size=1024"]);
}

/// Two files grown a block at a time in turn interleave their blocks: one extent per step,
/// so their extent lists outgrow the inode and become bmbt B+trees (root in the inode,
/// leaves in new blocks); then one shrinks back to extents format and the other is removed
/// with its tree. xfs_repair -n and xfs_db judge each stage.
fn bmbt(args: &[&str]) {
    let Some((im, _)) = make(args) else { return };
    let ov = CowOverlay::new(RawImage::open(&im.img).unwrap()).unwrap();
    let bs = db_sb(&im.img, "blocksize") as usize;
    let free0 = db_sb(&im.img, "fdblocks");
    let rounds = 120;
    {
        let mut x = open(&ov).unwrap();
        x.create_file("/a", b"", 0o644, 0, 0).unwrap();
        x.create_file("/b", b"", 0o644, 0, 0).unwrap();
        for r in 1..=rounds {
            x.write_file("/a", &pattern(r * bs, 1)).unwrap();
            x.write_file("/b", &pattern(r * bs, 2)).unwrap();
        }
    }
    let mid = im.work.with_extension("mid");
    extract(&ov, &mid);
    assert_repair_clean(&mid);
    assert_eq!(db_field(&mid, "/a", "core.format"), "3 (btree)");
    assert_eq!(db_field(&mid, "/b", "core.format"), "3 (btree)");
    assert!(db_field(&mid, "/a", "core.nextents").parse::<u64>().unwrap() > 50);
    assert_eq!(db_read(&mid, "/a"), pattern(rounds * bs, 1));
    assert_eq!(db_read(&mid, "/b"), pattern(rounds * bs, 2));
    std::fs::remove_file(&mid).unwrap();
    {
        let mut x = open(&ov).unwrap();
        assert_eq!(x.read_file("/b", 1 << 30).unwrap(), pattern(rounds * bs, 2));
        x.write_file("/a", b"short\n").unwrap();
        x.unlink("/b").unwrap();
    }
    extract(&ov, &im.work);
    assert_repair_clean(&im.work);
    assert_eq!(db_field(&im.work, "/a", "core.format"), "2 (extents)");
    assert_eq!(db_read(&im.work, "/a"), b"short\n");
    // Everything but /a's one block (and the root directory's growth, if any) is free again.
    let free = db_sb(&im.work, "fdblocks");
    assert!(free + 2 >= free0 - 1 && free < free0, "fdblocks {free0} -> {free}");
}

#[test]
fn bmbt_files_v5_4k() {
    bmbt(&[]);
}

/// Bmbt blocks are mapped with the bmbt flag, freed ones unmapped.
#[test]
fn bmbt_files_v5_rmapbt_reflink_4k() {
    bmbt(&["-m", "rmapbt=1,reflink=1"]);
}

#[test]
fn bmbt_files_v5_rmapbt_reflink_1k() {
    bmbt(&["-b", "size=1024", "-m", "rmapbt=1,reflink=1"]);
}

#[test]
fn bmbt_files_v4_1k() {
    bmbt(&["-m", "crc=0", "-b", "size=1024"]);
}

/// Corrupt free-space and inode trees give one-line errors naming the structure, before
/// anything is written; nothing panics.
#[test]
fn corrupt_trees_are_refused() {
    let Some((im, _)) = make(&["-m", "crc=0"]) else { return };
    let bs = db_sb(&im.img, "blocksize");
    let (agcount, agblocks) = (db_sb(&im.img, "agcount"), db_sb(&im.img, "agblocks"));
    let field = |hdr: &str, ag: u64, f: &str| -> u64 {
        let out = xfs_db(&im.img, &[&format!("{hdr} {ag}"), &format!("print {f}")]);
        out.lines().find_map(|l| l.strip_prefix(&format!("{f} = "))).unwrap().trim().parse().unwrap()
    };
    // (header, root field, byte offset in the root block, value, what the error must name):
    // a numrecs past the block's capacity, a cntbt record changed so the trees disagree, an
    // inobt free count that contradicts its bitmap. Every AG gets it.
    let cases = [("agf", "bnoroot", 6usize, 0xffu8, "bnobt"), ("agf", "cntroot", 16 + 4, 0x7f, "cntbt"), ("agi", "root", 16 + 7, 0x3f, "inobt")];
    for (hdr, root, off, val, what) in cases {
        let bad = im.img.with_extension(what);
        std::fs::copy(&im.img, &bad).unwrap();
        let mut f = std::fs::OpenOptions::new().write(true).open(&bad).unwrap();
        for ag in 0..agcount {
            let blk = ag * agblocks + field(hdr, ag, root);
            f.seek(SeekFrom::Start(blk * bs + off as u64)).unwrap();
            f.write_all(&[val]).unwrap();
        }
        drop(f);
        let ov = CowOverlay::new(RawImage::open(&bad).unwrap()).unwrap();
        let mut x = open(&ov).unwrap();
        let before = ov.overlay_bytes();
        let e = if what == "inobt" {
            x.create_file("/etc/new", b"x", 0o644, 0, 0).unwrap_err()
        } else {
            x.write_file("/etc/hostname", &pattern(200_000, 1)).unwrap_err()
        };
        let msg = e.to_string();
        assert!(msg.contains(what) && !msg.contains('\n'), "{what}: {msg}");
        assert_eq!(ov.overlay_bytes(), before, "{what}: nothing written");
        std::fs::remove_file(&bad).unwrap();
    }
}

/// Height of `path`'s data-fork bmbt as xfs_db reads the root in the inode (the root's
/// level + 1), or 0 in another format.
fn db_bmbt_height(img: &Path, path: &str) -> u32 {
    if db_field(img, path, "core.format") != "3 (btree)" {
        return 0;
    }
    // v5 inodes name the fork u3, v4 ones u.
    let mut out = xfs_db(img, &[&format!("path {path}"), "print u3.bmbt.level"]);
    if out.contains("not found") {
        out = xfs_db(img, &[&format!("path {path}"), "print u.bmbt.level"]);
    }
    let level = out.lines().find_map(|l| l.split_once(".bmbt.level = ")).unwrap_or_else(|| panic!("xfs_db: no bmbt level: {out}")).1;
    level.trim().parse::<u32>().unwrap() + 1
}

/// Free space fragmented through Ferry (every other one-block file of /node unlinked:
/// 1500 one-block holes in its AG), then /node/deep grown a block at a time, each block
/// landing in another hole, until its bmbt has three levels (root in the inode, a node
/// level, leaves); then shrunk to two levels and back to extents format. xfs_repair -n is
/// clean at each stage (bmbt keys, siblings, owners, CRCs, levels, block counts, free
/// space); contents read back through xfs_db's block map, a reopened Ferry and (where this
/// host can loop-mount XFS) the kernel at three levels; the heights are xfs_db's.
fn deep_bmbt(args: &[&str], rounds: usize) {
    let Some((im, t)) = make(args) else { return };
    let victims: Vec<String> = t.files.keys().filter(|p| p.starts_with("node/")).step_by(2).map(|p| format!("/{p}")).collect();
    assert!(victims.len() > rounds);
    let bs = db_sb(&im.img, "blocksize") as usize;
    let ov = CowOverlay::new(RawImage::open(&im.img).unwrap()).unwrap();
    let f = "/node/deep";
    {
        let mut x = open(&ov).unwrap();
        for v in &victims {
            x.unlink(v).unwrap();
        }
        x.create_file(f, b"", 0o644, 0, 0).unwrap();
        for r in 1..=rounds {
            x.write_file(f, &pattern(r * bs, 3)).unwrap();
        }
    }
    let w = &im.work;
    extract(&ov, w);
    assert_repair_clean(w);
    assert_eq!(db_bmbt_height(w, f), 3, "nextents {}", db_field(w, f, "core.nextents"));
    let mut prev = pattern(rounds * bs, 3);
    assert_eq!(db_read(w, f), prev);
    if let Some(m) = Mounted::new(w, w.parent().unwrap()) {
        // The kernel's bmbt verifiers and block map walk agree.
        assert_eq!(std::fs::read(m.0.join(&f[1..])).unwrap(), prev, "read through a loop mount");
    }
    for (blocks, height) in [(rounds / 4, 2), (3, 0)] {
        let now = pattern(blocks * bs - 5, 4);
        {
            let mut x = open(&ov).unwrap();
            assert_eq!(x.read_file(f, 1 << 30).unwrap(), prev);
            x.write_file(f, &now).unwrap();
        }
        extract(&ov, w);
        assert_repair_clean(w);
        assert_eq!(db_bmbt_height(w, f), height, "{blocks} blocks");
        assert_eq!(db_read(w, f), now);
        let ov2 = CowOverlay::new(RawImage::open(w).unwrap()).unwrap();
        assert_eq!(open(&ov2).unwrap().read_file(f, 1 << 30).unwrap(), now);
        if height == 0 {
            assert_eq!(db_field(w, f, "core.format"), "2 (extents)");
        }
        prev = now;
    }
}

#[test]
fn deep_bmbt_v5_1k() {
    // Root in a 512-byte inode: 20 pointers; 59 records a leaf: three levels past 1180.
    // With the rmapbt (and reflink), as RHEL/Oracle make it: every bmbt block mapped too.
    deep_bmbt(&["-b", "size=1024", "-m", "rmapbt=1,reflink=1"], 1300);
}

#[test]
fn deep_bmbt_v4_1k() {
    // Root in a 256-byte inode: 9 pointers; 62 records a leaf: three levels past 558.
    deep_bmbt(&["-m", "crc=0", "-b", "size=1024"], 640);
}

/// Which form `xfs_db` sees directory `path` in: "shortform", "block", "leaf" or "node"
/// (by the blocks its map has at 32 GiB, leaf, and 64 GiB, free index, in its address space).
fn db_dir_form(img: &Path, path: &str) -> &'static str {
    let bs = db_sb(img, "blocksize");
    let dbs = bs << db_sb(img, "dirblklog");
    match db_field(img, path, "core.format").as_str() {
        "1 (local)" => return "shortform",
        "2 (extents)" | "3 (btree)" => {}
        f => panic!("{path}: format {f}"),
    }
    let bmap = xfs_db(img, &[&format!("path {path}"), "bmap"]);
    let offs = bmap.lines().filter_map(|l| l.split_whitespace().nth(2).and_then(|o| o.parse::<u64>().ok()));
    if offs.clone().any(|o| o >= (64u64 << 30) / bs) {
        "node"
    } else if offs.clone().any(|o| o >= (32u64 << 30) / bs) {
        "leaf"
    } else {
        assert_eq!(db_field(img, path, "core.size").parse::<u64>().unwrap(), dbs, "{path}: one block");
        "block"
    }
}

/// A directory grown through Ferry from shortform to node form (2000 names, half-full LEAFN
/// blocks under a da node), then emptied name by name: it is written again in the smallest
/// form that holds it as blocks empty (node, leaf, block, shortform, as the kernel converts
/// them back). At each stage xfs_repair -n is clean and `xfs_db ls` lists exactly the names
/// left with the inode numbers Ferry gave them, in the form xfs_db sees, and (where this host
/// can loop-mount XFS) the kernel's readdir lists the same.
fn deep_dir(args: &[&str]) {
    let Some((im, _)) = make(args) else { return };
    let ov = CowOverlay::new(RawImage::open(&im.img).unwrap()).unwrap();
    let w = &im.work;
    let n = 2000;
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    {
        let mut x = open(&ov).unwrap();
        x.mkdir("/d", 0o755, 0, 0).unwrap();
        for i in 0..n {
            let p = format!("/d/{i:04x}");
            x.create_file(&p, b"", 0o644, 0, 0).unwrap();
            want.insert(format!("{i:04x}"), x.metadata(&p).unwrap().ino);
        }
    }
    let mut left = n;
    for (keep, form) in [(n, "node"), (400, "leaf"), (60, "block"), (8, "shortform"), (0, "shortform")] {
        {
            let mut x = open(&ov).unwrap();
            while left > keep {
                left -= 1;
                x.unlink(&format!("/d/{left:04x}")).unwrap();
                want.remove(&format!("{left:04x}"));
            }
        }
        extract(&ov, w);
        assert_repair_clean(w);
        assert_eq!(db_dir_form(w, "/d"), form, "{keep} names");
        let mut ls = db_ls(w, "/d");
        let (dot, dotdot) = (ls.remove(".").unwrap(), ls.remove("..").unwrap());
        assert_eq!(dotdot, db_ls(w, "/")["."]);
        assert_eq!(dot, db_ls(w, "/")["d"]);
        assert_eq!(ls, want, "{keep} names");
        if let Some(m) = Mounted::new(w, w.parent().unwrap()) {
            // The kernel's directory verifiers and readdir agree.
            use std::os::unix::fs::DirEntryExt;
            let seen: BTreeMap<String, u64> = std::fs::read_dir(m.0.join("d")).unwrap().map(|e| e.unwrap()).map(|e| (e.file_name().into_string().unwrap(), e.ino())).collect();
            assert_eq!(seen, want, "readdir through a loop mount, {keep} names");
        }
    }
}

#[test]
fn deep_dir_v5_1k_blocks() {
    deep_dir(&["-b", "size=1024", "-m", "rmapbt=1,reflink=1"]);
}

#[test]
fn deep_dir_v4_4k() {
    deep_dir(&["-m", "crc=0"]);
}

/// A corrupt rmapbt (its OWN_AG records not the free-space trees and AGFL; an AGF rmap
/// block count that is not the tree's) gives a one-line error naming it before anything is
/// written. The corruption is written with `xfs_db -x` (CRCs recomputed), so only the
/// rmapbt's own checks can catch it.
#[test]
fn corrupt_rmapbt_is_refused() {
    let Some((im, _)) = make(&["-m", "rmapbt=1,reflink=1"]) else { return };
    let agcount = db_sb(&im.img, "agcount");
    // The leftmost rmapbt leaf of each AG starts with mkfs's [0,1,OWN_FS] [1,2,OWN_AG] ...
    let leaf = |img: &Path, ag: u64| -> Vec<String> {
        let mut cmds = vec![format!("agf {ag}"), "addr rmaproot".to_string()];
        loop {
            let c: Vec<&str> = cmds.iter().map(|s| s.as_str()).collect();
            let mut p = c.clone();
            p.push("print level");
            if xfs_db(img, &p).trim() == "level = 0" {
                return cmds;
            }
            cmds.push("addr ptrs[1]".to_string());
        }
    };
    let cases = [("recs[2].blockcount 1", "rmapbt", true), ("rmapblocks 99", "rmap_blocks", false)];
    for (write, what, in_leaf) in cases {
        let bad = im.img.with_extension("bad");
        std::fs::copy(&im.img, &bad).unwrap();
        for ag in 0..agcount {
            let mut cmds = if in_leaf { leaf(&bad, ag) } else { vec![format!("agf {ag}")] };
            cmds.push(format!("write {write}"));
            let c: Vec<&str> = cmds.iter().map(|s| s.as_str()).collect();
            let o = run("xfs_db", &[&["-x", "-f"][..], &c.iter().flat_map(|s| ["-c", s]).collect::<Vec<_>>(), &[bad.to_str().unwrap()]].concat());
            assert!(o.status.success(), "{write}: {}", String::from_utf8_lossy(&o.stderr));
        }
        let ov = CowOverlay::new(RawImage::open(&bad).unwrap()).unwrap();
        let mut x = open(&ov).unwrap();
        let before = ov.overlay_bytes();
        let e = x.write_file("/etc/hostname", &pattern(200_000, 1)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(what) && !msg.contains('\n'), "{write}: {msg}");
        assert!(matches!(e, FsError::Invalid { .. }), "{e:?}");
        assert_eq!(ov.overlay_bytes(), before, "{write}: nothing written");
        std::fs::remove_file(&bad).unwrap();
    }
}
