//! Reflinked files in Ferry's XFS writer, on filesystems the host kernel filled: files shared
//! two and three ways with `cp --reflink=always`, some partly overwritten in the mount
//! (partial sharing), multi-extent ones; then Ferry unlinks, rewrites and renames sharers.
//! Judged by `xfs_repair -n` (it rebuilds the reference counts from every data fork and
//! compares them with the refcountbt), a read-only kernel mount of the result (every other
//! sharer byte-identical), and the superblock's free block count (changed by exactly the
//! unshared blocks freed less the blocks the rewrites took). Skipped where loop mounts are
//! not available.

mod fs_support;

use ferry_formats::disk::{CowOverlay, RawImage};
use fs_support::xfs::{assert_repair_clean, db_sb, extract, open, xfs_db, Mounted};
use fs_support::{have, pattern, run};
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// mkfs.xfs refuses filesystems under 300 MB; the image is sparse.
const FS_LEN: u64 = 320 << 20;

/// An empty reflink=1 filesystem with `bs`-byte blocks, rmapbt as `rmapbt` says; None without
/// the tools.
fn mkfs_with(dir: &Path, bs: u64, rmapbt: bool) -> Option<std::path::PathBuf> {
    if !have("mkfs.xfs") || !have("xfs_repair") || !have("xfs_db") || !have("cp") {
        eprintln!("skipping: xfsprogs or coreutils not installed");
        return None;
    }
    let img = dir.join("fs.img");
    std::fs::File::create(&img).unwrap().set_len(FS_LEN).unwrap();
    let m = format!("crc=1,reflink=1,rmapbt={}", u8::from(rmapbt));
    let o = run("mkfs.xfs", &["-q", "-f", "-m", &m, "-b", &format!("size={bs}"), img.to_str().unwrap()]);
    assert!(o.status.success(), "mkfs.xfs: {}", String::from_utf8_lossy(&o.stderr));
    Some(img)
}

/// An empty reflink=1, rmapbt=0 filesystem with `bs`-byte blocks; None without the tools.
fn mkfs(dir: &Path, bs: u64) -> Option<std::path::PathBuf> {
    mkfs_with(dir, bs, false)
}

fn reflink(m: &Mounted, from: &str, to: &str) {
    let o = run("cp", &["--reflink=always", m.0.join(from).to_str().unwrap(), m.0.join(to).to_str().unwrap()]);
    assert!(o.status.success(), "cp --reflink {from} {to}: {}", String::from_utf8_lossy(&o.stderr));
}

/// Overwrites `data` at `off` of a file in the mount (no truncation: the kernel copies on write).
fn overwrite(m: &Mounted, name: &str, off: u64, data: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(m.0.join(name)).unwrap();
    f.write_at(data, off).unwrap();
    f.sync_all().unwrap();
}

/// Sum over the AGs of what each AGF says is free (free extents, AGFL, free-space tree
/// blocks but their roots): what `sb_fdblocks` must hold.
fn agf_free(img: &Path) -> u64 {
    let agcount = db_sb(img, "agcount");
    (0..agcount)
        .map(|ag| {
            let out = xfs_db(img, &[&format!("agf {ag}"), "print freeblks flcount btreeblks"]);
            out.lines().filter_map(|l| l.split_once(" = ")).map(|(_, v)| v.trim().parse::<u64>().unwrap()).sum::<u64>()
        })
        .sum()
}

/// Refcountbt records of every AG as xfs_db prints them (`recs[1-3] = [startblock,...]`
/// and the lines after it), for the failure messages and the record count.
fn refcount_recs(img: &Path) -> Vec<String> {
    let agcount = db_sb(img, "agcount");
    let mut out = Vec::new();
    for ag in 0..agcount {
        let levels = xfs_db(img, &[&format!("agf {ag}"), "print refcntlevel"]);
        if !levels.contains("refcntlevel = 1") {
            out.push(format!("AG {ag}: {}", levels.trim()));
            continue;
        }
        let p = xfs_db(img, &[&format!("agf {ag}"), "addr refcntroot", "print recs"]);
        out.extend(p.lines().filter(|l| l.contains(':') && l.contains(',')).map(|l| format!("AG {ag}: {}", l.trim())));
    }
    out
}

fn scenario(bs: u64, rmapbt: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(img) = mkfs_with(dir.path(), bs, rmapbt) else { return };
    // Sizes and overwrites in 4 KiB pages: the kernel copies on write whole pages, so a
    // 1 KiB-block filesystem unshares page-aligned runs exactly as written.
    const PG: u64 = 4096;
    let pages = |n: u64| pattern((n * PG) as usize, n);
    let per = PG / bs;
    // name -> contents, as the kernel leaves them.
    let mut want: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    {
        let Some(m) = Mounted::new(&img, dir.path()) else { return };
        // Two-way sharing: a/a2, i/i2 (both later unlinked), e/e2, k/k2, h/h2.
        for (name, n) in [("a", 40), ("i", 30), ("e", 16), ("k", 12), ("h", 9)] {
            let data = pages(n);
            std::fs::write(m.0.join(name), &data).unwrap();
            want.insert(name, data);
        }
        // Three ways: b/b2/b3, g/g2/g3 (g3 partly overwritten).
        for (name, n) in [("b", 30), ("g", 20)] {
            let data = pages(n);
            std::fs::write(m.0.join(name), &data).unwrap();
            want.insert(name, data);
        }
        // c/c2, then 5 pages of c2 overwritten: c keeps 5 pages no one shares.
        let c = pages(33);
        std::fs::write(m.0.join("c"), &c).unwrap();
        want.insert("c", c);
        // Multi-extent d: every other block written (holes between), then shared.
        {
            let f = std::fs::File::create(m.0.join("d")).unwrap();
            let mut d = Vec::new();
            for k in 0..8u64 {
                let b = vec![(k as u8) + 1; PG as usize];
                f.write_at(&b, 2 * k * PG).unwrap();
                d.resize((2 * k * PG) as usize, 0);
                d.extend_from_slice(&b);
            }
            f.sync_all().unwrap();
            want.insert("d", d);
        }
        run("sync", &[]);
        for (from, to) in [("a", "a2"), ("i", "i2"), ("e", "e2"), ("k", "k2"), ("h", "h2"), ("b", "b2"), ("b", "b3"), ("g", "g2"), ("g", "g3"), ("c", "c2"), ("d", "d2")] {
            reflink(&m, from, to);
            let w = want[from].clone();
            want.insert(to, w);
        }
        let patch = vec![0xeeu8; 5 * PG as usize];
        overwrite(&m, "c2", 10 * PG, &patch);
        want.get_mut("c2").unwrap()[(10 * PG) as usize..(15 * PG) as usize].copy_from_slice(&patch);
        let patch = vec![0xddu8; 3 * PG as usize];
        overwrite(&m, "g3", 2 * PG, &patch);
        want.get_mut("g3").unwrap()[(2 * PG) as usize..(5 * PG) as usize].copy_from_slice(&patch);
        for (name, data) in &want {
            assert_eq!(&std::fs::read(m.0.join(name)).unwrap(), data, "{name} as the kernel wrote it");
        }
    }
    assert_repair_clean(&img);
    let recs = refcount_recs(&img);
    assert!(recs.len() >= 7, "the kernel's refcountbt records: {recs:#?}");
    let fd0 = db_sb(&img, "fdblocks");
    assert_eq!(fd0, agf_free(&img), "sb_fdblocks as the kernel left it");

    let ov = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    // Unshared blocks these operations free, less the blocks the rewrites take.
    let new_e = pattern(16 * PG as usize, 91);
    let new_d = pattern(20 * PG as usize + 100, 92);
    let new_g = b"shrunk\n".to_vec();
    let new_k = pattern(3 * PG as usize, 93);
    // c's own 5 pages; i's 30 once i2 went too; k's old 12 once k2, their last sharer, went.
    let freed = ((5 + 30 + 12) * per) as i64;
    let taken = (16 * per + (new_d.len() as u64).div_ceil(bs) + 1 + 3 * per) as i64;
    {
        let mut x = open(&ov).unwrap();
        assert!(x.features().contains(&"reflink"));
        x.unlink("/a").unwrap(); // two-way: nothing freed
        x.unlink("/b").unwrap(); // three-way: b2, b3 keep it (count 3 -> 2)
        x.unlink("/c").unwrap(); // partly shared: its 5 own blocks freed
        x.unlink("/i").unwrap();
        x.unlink("/i2").unwrap(); // the last sharer: all 30 freed
        x.write_file("/e", &new_e).unwrap(); // same size, new blocks; e2 keeps the old
        x.write_file("/d", &new_d).unwrap(); // multi-extent, grown
        x.write_file("/g", &new_g).unwrap(); // three-way, shrunk
        x.rename("/h", "/h.moved").unwrap();
        x.write_file("/k", &new_k).unwrap();
        x.rename("/k", "/k2").unwrap(); // k2 held k's old blocks alone: all freed
        for (name, data) in [("/e", &new_e), ("/d", &new_d), ("/g", &new_g), ("/k2", &new_k)] {
            assert_eq!(&x.read_file(name, 1 << 30).unwrap(), data, "{name} read back by Ferry");
        }
        assert_eq!(x.read_file("/a2", 1 << 30).unwrap(), want["a2"]);
    }
    for (n, w) in [("e", new_e), ("d", new_d), ("g", new_g), ("k2", new_k)] {
        want.insert(n, w);
    }
    for gone in ["a", "b", "c", "i", "i2", "k"] {
        want.remove(gone);
    }
    let h = want.remove("h").unwrap();
    want.insert("h.moved", h);
    let out = dir.path().join("out.img");
    extract(&ov, &out);
    assert_repair_clean(&out);
    let fd1 = db_sb(&out, "fdblocks");
    assert_eq!(fd1 as i64 - fd0 as i64, freed - taken, "sb_fdblocks {fd0} -> {fd1}; refcountbt now {:#?}", refcount_recs(&out));
    assert_eq!(fd1, agf_free(&out), "sb_fdblocks agrees with the AGFs");
    eprintln!("{bs}-byte blocks: sb_fdblocks {fd0} -> {fd1} ({freed} unshared blocks freed, {taken} taken); refcountbt records {} -> {:?}", recs.len(), refcount_recs(&out));
    // Read back by the kernel, without log recovery (the log is clean).
    let Some(m) = Mounted::new_ro(&out, dir.path()) else { return };
    let mut names: Vec<String> = std::fs::read_dir(&m.0).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, want.keys().map(|k| k.to_string()).collect::<Vec<_>>());
    for (name, data) in &want {
        assert_eq!(&std::fs::read(m.0.join(name)).unwrap(), data, "{name} read back by the kernel");
    }
}

/// 4 KiB blocks (Debian 12's and RHEL's mkfs defaults).
#[test]
fn refc_kernel_shared_files_4k() {
    scenario(4096, false);
}

/// 4 KiB blocks with the rmapbt too (RHEL/Oracle with `-m rmapbt=1`): each sharer's release
/// drops its own reverse mapping and keeps the others'; xfs_repair -n cross-checks both trees.
#[test]
fn refc_kernel_shared_files_rmapbt_4k() {
    scenario(4096, true);
}

/// 1 KiB blocks.
#[test]
fn refc_kernel_shared_files_1k() {
    scenario(1024, false);
}

/// A refcountbt record in the CoW domain (a staging extent an unclean shutdown leaves; the
/// kernel frees it at the next mount) is made with `xfs_db write` on a kernel-made record:
/// every write is then refused in one line naming it, and nothing is written.
#[test]
fn refc_cow_staging_leftovers_refused() {
    let dir = tempfile::tempdir().unwrap();
    let Some(img) = mkfs(dir.path(), 4096) else { return };
    {
        let Some(m) = Mounted::new(&img, dir.path()) else { return };
        std::fs::write(m.0.join("f"), pattern(8 * 4096, 5)).unwrap();
        run("sync", &[]);
        reflink(&m, "f", "f2");
    }
    // The file's AG is the one whose refcountbt holds a record.
    let ag = (0..db_sb(&img, "agcount")).find(|ag| xfs_db(&img, &[&format!("agf {ag}"), "addr refcntroot", "print numrecs"]).contains("numrecs = 1")).expect("a refcount record");
    let field = |f: &str| -> u64 { xfs_db(&img, &[&format!("agf {ag}"), "addr refcntroot", &format!("print recs[1].{f}")]).trim().rsplit(' ').next().unwrap().parse().unwrap() };
    let (start, len) = (field("startblock"), field("blockcount"));
    let o = run("xfs_db", &["-x", "-f", "-c", &format!("agf {ag}"), "-c", "addr refcntroot", "-c", "write recs[1].cowflag 1", "-c", "write recs[1].refcount 1", img.to_str().unwrap()]);
    assert!(o.status.success(), "xfs_db write: {}", String::from_utf8_lossy(&o.stderr));
    let p = xfs_db(&img, &[&format!("agf {ag}"), "addr refcntroot", "print recs[1]"]);
    assert!(p.contains(&format!("[{start},{len},1,1]")), "the crafted CoW record: {p}");
    let ov = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    let mut x = open(&ov).unwrap();
    assert_eq!(x.read_file("/f2", 1 << 20).unwrap(), pattern(8 * 4096, 5), "reading still works");
    let want = format!(
        "fs.img: unsupported writes while AG {ag} holds copy-on-write staging extents (refcountbt CoW record {start}+{len}), leftovers of an unclean shutdown the kernel frees at the next mount: mount and unmount the filesystem once"
    );
    assert_eq!(x.unlink("/f").unwrap_err().to_string(), want);
    assert_eq!(x.write_file("/f2", b"x").unwrap_err().to_string(), want);
    assert_eq!(x.create_file("/new", b"x", 0o644, 0, 0).unwrap_err().to_string(), want);
    assert_eq!(x.set_mode("/f", 0o600).unwrap_err().to_string(), want);
    drop(x);
    assert_eq!(ov.overlay_bytes(), 0, "a refused write wrote nothing");
}

/// Sum of the AGFs' refcountbt block counts.
fn refcount_blocks(img: &Path) -> u64 {
    (0..db_sb(img, "agcount"))
        .map(|ag| xfs_db(img, &[&format!("agf {ag}"), "print refcntblocks"]).trim().rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// A refcountbt of two levels (1 KiB blocks: 80 records a leaf): a 400-page file shared three
/// ways, every other page of one copy overwritten, gives about 400 records of counts 3 and
/// 2. Ferry unlinks the untouched copy (counts 2 and 1: every other record goes, the tree
/// is rebuilt smaller, nothing freed) and rewrites the original (the rest go, the pages only
/// it still held are freed): xfs_repair -n is clean after each, the overwritten copy reads
/// back, and sb_fdblocks moves by exactly the blocks freed and taken and the refcountbt
/// blocks given back.
#[test]
fn refc_two_level_refcountbt_1k() {
    let dir = tempfile::tempdir().unwrap();
    let Some(img) = mkfs(dir.path(), 1024) else { return };
    const PG: usize = 4096;
    let orig = pattern(400 * PG, 3);
    let mut patched = orig.clone();
    {
        let Some(m) = Mounted::new(&img, dir.path()) else { return };
        std::fs::write(m.0.join("o"), &orig).unwrap();
        run("sync", &[]);
        reflink(&m, "o", "p");
        reflink(&m, "o", "q");
        let f = std::fs::OpenOptions::new().write(true).open(m.0.join("p")).unwrap();
        for k in (0..400).step_by(2) {
            let b = vec![k as u8; PG];
            f.write_at(&b, (k * PG) as u64).unwrap();
            patched[k * PG..(k + 1) * PG].copy_from_slice(&b);
        }
        f.sync_all().unwrap();
    }
    assert_repair_clean(&img);
    let levels = xfs_db(&img, &["agf 0", "print refcntlevel"]) + &xfs_db(&img, &["agf 1", "print refcntlevel"]);
    assert!(levels.contains("refcntlevel = 2"), "the kernel made a two-level refcountbt: {levels}");
    let (fd0, rb0) = (db_sb(&img, "fdblocks"), refcount_blocks(&img));
    let ov = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    {
        let mut x = open(&ov).unwrap();
        x.unlink("/q").unwrap();
    }
    let mid = dir.path().join("mid.img");
    extract(&ov, &mid);
    assert_repair_clean(&mid);
    let (fd1, rb1) = (db_sb(&mid, "fdblocks"), refcount_blocks(&mid));
    assert!(rb1 < rb0, "the rebuilt refcountbt is smaller: {rb0} -> {rb1} blocks");
    assert_eq!(fd1, fd0 + (rb0 - rb1), "only refcountbt blocks were freed");
    {
        let mut x = open(&ov).unwrap();
        x.write_file("/o", b"one block\n").unwrap();
        assert_eq!(x.read_file("/p", 1 << 30).unwrap(), patched);
    }
    let out = dir.path().join("out.img");
    extract(&ov, &out);
    assert_repair_clean(&out);
    let (fd2, rb2) = (db_sb(&out, "fdblocks"), refcount_blocks(&out));
    assert_eq!(refcount_recs(&out), Vec::<String>::new(), "nothing is shared any more");
    // The 200 pages p overwrote were o's and q's, o's alone since q went: freed (800
    // blocks); the other 200 are p's alone now.
    assert_eq!(fd2 as i64, fd1 as i64 + 800 - 1 + (rb1 - rb2) as i64, "o's own blocks freed, one taken, refcountbt blocks given back");
    eprintln!("two-level refcountbt: {rb0} -> {rb1} -> {rb2} blocks; sb_fdblocks {fd0} -> {fd1} -> {fd2}");
    let Some(m) = Mounted::new_ro(&out, dir.path()) else { return };
    assert_eq!(std::fs::read(m.0.join("p")).unwrap(), patched);
    assert_eq!(std::fs::read(m.0.join("o")).unwrap(), b"one block\n");
}
