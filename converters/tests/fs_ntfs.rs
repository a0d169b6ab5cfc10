//! The NTFS writer against ntfs-3g: volumes made by mkntfs and filled through an ntfs-3g
//! FUSE mount are edited by Ferry through a copy-on-write overlay; then `ntfsfix
//! --no-action` passes, ntfsresize's cluster accounting matches `$Bitmap`, ntfs-3g (FUSE
//! mount, ntfsls, ntfscat) reads back exactly the expected tree byte for byte, and the
//! source image is unchanged.

mod ntfs_support;
mod windows_support;

use ferry_converters::fs::ntfs::Ntfs;
use ferry_converters::fs::Volume;
use ferry_formats::disk::{BlockDevice, CowOverlay, RawImage};
use ntfs_support::*;
use std::collections::BTreeMap;

fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A volume with a Windows-like tree written by ntfs-3g; returns its model.
type Model = BTreeMap<String, Option<Vec<u8>>>;

fn filled(dir: &std::path::Path, mb: u64, cluster: u32) -> Option<(std::path::PathBuf, Model)> {
    let img = mkvol(dir, "src.img", mb, cluster);
    let mnt = dir.join("fill");
    if !mount(&img, &mnt, false) {
        return None;
    }
    for d in ["Windows/System32/drivers", "Windows/System32/config", "Program Files/VMware"] {
        std::fs::create_dir_all(mnt.join(d)).unwrap();
    }
    std::fs::write(mnt.join("Windows/System32/drivers/pvscsi.sys"), bytes(1, 70_000)).unwrap();
    std::fs::write(mnt.join("Windows/System32/config/SYSTEM"), bytes(2, 300_000)).unwrap();
    std::fs::write(mnt.join("Windows/win.ini"), b"[fonts]\r\n").unwrap();
    std::fs::write(mnt.join("Program Files/VMware/tools.exe"), bytes(3, 9000)).unwrap();
    // A file with an object id and a reparse point (ntfs-3g's xattrs set them).
    std::fs::write(mnt.join("objid.txt"), b"tracked").unwrap();
    std::fs::File::create(mnt.join("reparse")).unwrap();
    for (f, n, v) in [("objid.txt", "system.ntfs_object_id", "0x00112233445566778899aabbccddeeff"), ("reparse", "system.ntfs_reparse_data", "0x1300008000000000")] {
        let o = std::process::Command::new("setfattr").args(["-h", "-n", n, "-v", v]).arg(mnt.join(f)).output().unwrap();
        assert!(o.status.success(), "setfattr {n}: {}", String::from_utf8_lossy(&o.stderr));
    }
    // A sparse file: a hole, then data.
    let f = std::fs::File::create(mnt.join("sparse.bin")).unwrap();
    f.set_len(1 << 20).unwrap();
    std::os::unix::fs::FileExt::write_at(&f, b"tail", 1 << 20).unwrap();
    drop(f);
    let model = walk(&mnt);
    umount(&mnt);
    Some((img, model))
}

fn verify(dir: &std::path::Path, overlay: &dyn BlockDevice, model: &BTreeMap<String, Option<Vec<u8>>>) -> std::path::PathBuf {
    let out = dir.join("out.img");
    materialize(overlay, &out);
    check(&out);
    let mnt = dir.join("verify");
    assert!(mount(&out, &mnt, true));
    let got = walk(&mnt);
    umount(&mnt);
    let names = |m: &BTreeMap<String, Option<Vec<u8>>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&got), names(model), "ntfs-3g lists exactly the expected names");
    for (k, v) in model {
        assert!(got[k] == *v, "{k}: ntfs-3g reads other bytes ({:?} vs {:?} bytes)", got[k].as_ref().map(|x| x.len()), v.as_ref().map(|x| x.len()));
    }
    out
}

#[test]
fn create_write_rename_delete() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let Some((img, mut model)) = filled(t.path(), 64, 0) else { return };
    let before = std::fs::read(&img).unwrap();
    let mtimes = |img: &std::path::Path| {
        let mnt = img.with_extension("times");
        assert!(mount(img, &mnt, true));
        let m = ["Windows", "Program Files", "Windows/System32/drivers"].map(|d| std::fs::metadata(mnt.join(d)).unwrap().modified().unwrap());
        umount(&mnt);
        m
    };
    let old_times = mtimes(&img);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let overlay = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    let vol = Volume::new(&overlay, 0, overlay.size(), "src.img").unwrap();
    let mut fs = Ntfs::open(vol, "src.img").unwrap();
    assert_eq!(fs.read_file("/windows/SYSTEM32/config/system", 1 << 30).unwrap().unwrap(), bytes(2, 300_000));

    // Resident and non-resident files, in existing directories.
    let put = |fs: &mut Ntfs, p: &str, d: Vec<u8>, model: &mut BTreeMap<String, Option<Vec<u8>>>| {
        fs.write_file(p, &d).unwrap();
        assert_eq!(fs.read_file(p, 1 << 30).unwrap().unwrap(), d, "{p}");
        model.insert(p.into(), Some(d));
    };
    put(&mut fs, "/Windows/System32/drivers/viostor.sys", bytes(10, 123_457), &mut model);
    put(&mut fs, "/Windows/ferry.txt", b"small resident file\r\n".to_vec(), &mut model);
    put(&mut fs, "/empty", Vec::new(), &mut model);
    // New directories, nested.
    fs.mkdir("/Windows/Drivers").unwrap();
    fs.mkdir("/Windows/Drivers/VirtIO").unwrap();
    model.insert("/Windows/Drivers".into(), None);
    model.insert("/Windows/Drivers/VirtIO".into(), None);
    put(&mut fs, "/Windows/Drivers/VirtIO/netkvm.inf", bytes(11, 4096), &mut model);
    put(&mut fs, "/Windows/Drivers/VirtIO/vioscsi.sys", bytes(12, 1), &mut model);
    // Replace: grow resident → non-resident, shrink, same size in place, to empty.
    put(&mut fs, "/Windows/win.ini", bytes(13, 50_000), &mut model);
    put(&mut fs, "/Windows/System32/config/SYSTEM", bytes(14, 100_000), &mut model);
    put(&mut fs, "/Windows/System32/config/SYSTEM", bytes(15, 100_000), &mut model);
    put(&mut fs, "/Program Files/VMware/tools.exe", Vec::new(), &mut model);
    // Renames: same directory, across directories, a directory with its contents.
    fs.rename("/Windows/ferry.txt", "/Windows/Ferry Notes.txt").unwrap();
    let v = model.remove("/Windows/ferry.txt").unwrap();
    model.insert("/Windows/Ferry Notes.txt".into(), v);
    fs.rename("/Windows/System32/drivers/pvscsi.sys", "/Windows/Drivers/pvscsi.sys.old").unwrap();
    let v = model.remove("/Windows/System32/drivers/pvscsi.sys").unwrap();
    model.insert("/Windows/Drivers/pvscsi.sys.old".into(), v);
    fs.rename("/Windows/Drivers/VirtIO", "/VirtIO").unwrap();
    for k in ["netkvm.inf", "vioscsi.sys"] {
        let v = model.remove(&format!("/Windows/Drivers/VirtIO/{k}")).unwrap();
        model.insert(format!("/VirtIO/{k}"), v);
    }
    model.remove("/Windows/Drivers/VirtIO");
    model.insert("/VirtIO".into(), None);
    // Deletes: files and an emptied directory.
    fs.remove("/Program Files/VMware/tools.exe").unwrap();
    fs.remove("/Program Files/VMware").unwrap();
    model.remove("/Program Files/VMware/tools.exe");
    model.remove("/Program Files/VMware");
    // Refusals, each one line.
    assert_eq!(fs.remove("/Windows").unwrap_err().to_string(), "src.img: /Windows: directory not empty");
    assert_eq!(fs.mkdir("/WINDOWS").unwrap_err().to_string(), "src.img: /WINDOWS: already exists");
    assert_eq!(fs.rename("/VirtIO", "/VirtIO/x").unwrap_err().to_string(), "src.img: /VirtIO/x: cannot move a directory into itself");
    let e = fs.write_file("/sparse.bin", b"x").unwrap_err().to_string();
    assert!(e.starts_with("src.img: invalid $DATA flags /sparse.bin: 0x8000: compressed, encrypted or sparse"), "{e}");
    let sparse = fs.read_file("/sparse.bin", 4 << 20).unwrap().unwrap();
    assert!(sparse.len() == (1 << 20) + 4 && sparse.ends_with(b"tail") && sparse[..1 << 20].iter().all(|b| *b == 0));
    assert_eq!(fs.remove("/objid.txt").unwrap_err().to_string(), "src.img: unsupported /objid.txt: deleting a file with an object id (indexed in $Extend\\$ObjId)");
    let e = fs.write_file("/reparse", b"x").unwrap_err().to_string();
    assert_eq!(e, "src.img: unsupported /reparse: changing a reparse point (symbolic link, junction, deduplicated or cloud file)");
    assert!(fs.rename("/reparse", "/r2").is_err() && fs.remove("/reparse").is_err());
    let e = fs.write_file("/bad:name", b"x").unwrap_err().to_string();
    assert_eq!(e, "src.img: invalid file name \"/bad:name\": a character Windows forbids in names");
    drop(fs);

    let out = verify(t.path(), &overlay, &model);
    assert_eq!(ntfscat(&out, "/Windows/System32/drivers/viostor.sys"), bytes(10, 123_457));
    // New files carry their parent directory's security descriptor (ntfs-3g's view).
    if have("getfattr") {
        let mnt = t.path().join("acl");
        assert!(mount(&out, &mnt, true));
        let acl = |p: &str| std::process::Command::new("getfattr").args(["-h", "-e", "hex", "--only-values", "-n", "system.ntfs_acl"]).arg(mnt.join(p)).output().unwrap().stdout;
        let (parent, child, dir) = (acl("Windows/System32/drivers"), acl("Windows/System32/drivers/viostor.sys"), acl("VirtIO"));
        umount(&mnt);
        assert!(parent.len() > 20 && parent == child && dir == acl_root_windows(&out), "security descriptors inherited");
    }
    assert_eq!(ntfsls(&out, "/VirtIO", false), vec!["netkvm.inf", "vioscsi.sys"]);
    // Directories whose entries changed have a newer modification time (ntfs-3g's stat).
    let new_times = mtimes(&out);
    for (i, d) in ["/Windows", "/Program Files", "/Windows/System32/drivers"].iter().enumerate() {
        assert!(new_times[i] > old_times[i], "{d}: {:?} -> {:?}", old_times[i], new_times[i]);
    }
    assert!(std::fs::read(&img).unwrap() == before, "the source image is unchanged");
}

/// A shuffled order of `0..n`.
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let r = bytes(seed, n * 8);
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let k = u64::from_le_bytes(r[i * 8..i * 8 + 8].try_into().unwrap()) as usize % (i + 1);
        v.swap(i, k);
    }
    v
}

/// `FERRY_NTFS_ENTRIES=N` runs it with N entries instead of 4000 (a scale check).
#[test]
fn thousands_of_entries_split_the_index() {
    let n = std::env::var("FERRY_NTFS_ENTRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(4000);
    many_entries(0, n);
}

fn many_entries(cluster: u32, n: usize) {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let Some((img, mut model)) = filled(t.path(), 64.max(n as u64 / 200), cluster) else { return };
    let overlay = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    let vol = Volume::new(&overlay, 0, overlay.size(), "src.img").unwrap();
    let mut fs = Ntfs::open(vol, "src.img").unwrap();
    let start = std::time::Instant::now();
    #[allow(non_snake_case)]
    let (N, s4, s400) = (n, 4, n / 10);
    let name = |i: usize| format!("/Windows/System32/drivers/oem{i:05}-Ferry Driver Package.inf");
    for i in shuffled(N, 7) {
        let d = format!("driver {i}\r\n").into_bytes();
        fs.write_file(&name(i), &d).unwrap();
        model.insert(name(i), Some(d));
    }
    // A quarter deleted (the index rebuilt), a few renamed across directories.
    for i in (0..N).step_by(s4) {
        fs.remove(&name(i)).unwrap();
        model.remove(&name(i));
    }
    for i in (1..N).step_by(s400) {
        let to = format!("/Windows/moved-{i}.inf");
        fs.rename(&name(i), &to).unwrap();
        let v = model.remove(&name(i)).unwrap();
        model.insert(to, v);
    }
    let listed = fs.list("/Windows/System32/drivers").unwrap();
    eprintln!("cluster {cluster}: {} creates, {} deletes, {} renames: {:?}", N, N / s4, N / s400, start.elapsed());
    drop(fs);
    let out = verify(t.path(), &overlay, &model);
    let want: Vec<String> = model.keys().filter_map(|k| k.strip_prefix("/Windows/System32/drivers/").map(String::from)).collect();
    let mut got_ferry: Vec<String> = listed.into_iter().map(|e| e.name).collect();
    got_ferry.sort();
    assert_eq!(ntfsls(&out, "/Windows/System32/drivers", false), want);
    assert_eq!(got_ferry, want);
}

#[test]
fn dos_names_where_the_directory_uses_them() {
    if !tools() || !have("setfattr") || !have("getfattr") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let img = mkvol(t.path(), "dos.img", 32, 0);
    let mnt = t.path().join("m");
    if !mount(&img, &mnt, false) {
        return;
    }
    std::fs::create_dir_all(mnt.join("Windows/System32/drivers")).unwrap();
    std::fs::create_dir_all(mnt.join("Plain")).unwrap();
    std::fs::write(mnt.join("Windows/System32/drivers/LongFileName.sys"), b"x").unwrap();
    let o = std::process::Command::new("setfattr")
        .args(["-h", "-n", "system.ntfs_dos_name", "-v", "LONGFI~1.SYS"])
        .arg(mnt.join("Windows/System32/drivers/LongFileName.sys"))
        .output()
        .unwrap();
    umount(&mnt);
    assert!(o.status.success(), "setfattr: {}", String::from_utf8_lossy(&o.stderr));
    let overlay = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    let vol = Volume::new(&overlay, 0, overlay.size(), "dos.img").unwrap();
    let mut fs = Ntfs::open(vol, "dos.img").unwrap();
    fs.write_file("/Windows/System32/drivers/LongFileNameTwo.sys", b"two").unwrap();
    fs.write_file("/Windows/System32/drivers/VIOSTOR.SYS", b"viostor").unwrap();
    fs.write_file("/Windows/System32/drivers/Long File Name.sys", b"three").unwrap();
    fs.write_file("/Plain/Long Name Without Short.txt", b"plain").unwrap();
    fs.rename("/Windows/System32/drivers/Long File Name.sys", "/Plain/Moved Long Name.sys").unwrap();
    // The DOS name finds the file too.
    assert_eq!(fs.read_file("/Windows/System32/drivers/LONGFI~2.SYS", 100).unwrap().unwrap(), b"two");
    drop(fs);
    let out = t.path().join("out.img");
    materialize(&overlay, &out);
    check(&out);
    let d = "/Windows/System32/drivers";
    assert_eq!(ntfsls(&out, d, false), vec!["LongFileName.sys", "LongFileNameTwo.sys", "VIOSTOR.SYS"]);
    assert_eq!(ntfsls(&out, d, true), vec!["LONGFI~1.SYS", "LONGFI~2.SYS", "VIOSTOR.SYS"]);
    assert_eq!(ntfsls(&out, "/Plain", false), vec!["Long Name Without Short.txt", "Moved Long Name.sys"]);
    assert!(ntfsls(&out, "/Plain", true).is_empty(), "no DOS names where the directory has none");
    assert!(mount(&out, &mnt, true));
    let dos = |p: &str| {
        let o = std::process::Command::new("getfattr").args(["-h", "--only-values", "-n", "system.ntfs_dos_name"]).arg(mnt.join(p)).output().unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let got = (dos("Windows/System32/drivers/LongFileNameTwo.sys"), dos("Plain/Moved Long Name.sys"));
    let content = std::fs::read(mnt.join("Windows/System32/drivers/LONGFI~2.SYS")).ok();
    umount(&mnt);
    assert_eq!(got.0, "LONGFI~2.SYS");
    assert_eq!(got.1, "", "no DOS name in a directory without them");
    assert_eq!(content.as_deref(), Some(&b"two"[..]));
}

#[test]
fn random_operations_match_a_model() {
    random_operations(0, 3000);
}

/// Index blocks larger than a cluster (VCNs count clusters) and smaller (VCNs count 512
/// bytes), records in one cluster or spread over several.
#[test]
fn random_operations_other_cluster_sizes() {
    random_operations(512, 700);
    random_operations(65536, 700);
    many_entries(512, 1200);
    many_entries(65536, 1200);
}

fn random_operations(cluster: u32, n: usize) {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let Some((img, mut model)) = filled(t.path(), 96, cluster) else { return };
    let before = std::fs::read(&img).unwrap();
    let overlay = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    let vol = Volume::new(&overlay, 0, overlay.size(), "src.img").unwrap();
    let mut fs = Ntfs::open(vol, "src.img").unwrap();
    let r = bytes(99 + cluster as u64, n * 16);
    let start = std::time::Instant::now();
    let mut counts = [0usize; 6];
    for op in 0..n {
        let x = |k: usize| u16::from_le_bytes([r[op * 16 + 2 * k], r[op * 16 + 2 * k + 1]]) as usize;
        let dirs: Vec<String> = model.iter().filter(|(_, v)| v.is_none()).map(|(k, _)| k.clone()).chain(["".to_string()]).collect();
        // The sparse file, the object id and the reparse point are left alone (refused:
        // create_write_rename_delete).
        let fixed = ["/sparse.bin", "/objid.txt", "/reparse"];
        let files: Vec<String> = model.iter().filter(|(k, v)| v.is_some() && !fixed.contains(&k.as_str())).map(|(k, _)| k.clone()).collect();
        let dir = &dirs[x(0) % dirs.len()];
        let fresh = format!("{dir}/n{}{}", x(1) % 300, ["", ".txt", " long name.dat", "_Mixed_Case.SYS"][x(2) % 4]);
        let taken = model.keys().any(|k| k.eq_ignore_ascii_case(&fresh));
        match x(3) % 10 {
            0..=3 if !taken => {
                let size = [0, 10, 700, 3000, 5000, 70_000][x(4) % 6] + x(5) % 100;
                let d = bytes(op as u64, size);
                fs.write_file(&fresh, &d).unwrap();
                model.insert(fresh, Some(d));
                counts[0] += 1;
            }
            4 | 5 if !files.is_empty() => {
                let f = &files[x(4) % files.len()];
                let size = [0, 20, 900, 4096, 12_000, 150_000][x(5) % 6] + x(6) % 50;
                let d = bytes(op as u64 + 1_000_000, size);
                fs.write_file(f, &d).unwrap();
                model.insert(f.clone(), Some(d));
                counts[1] += 1;
            }
            6 if !taken && dirs.len() < 40 => {
                fs.mkdir(&fresh).unwrap();
                model.insert(fresh, None);
                counts[2] += 1;
            }
            7 if !taken && !files.is_empty() => {
                let f = files[x(4) % files.len()].clone();
                fs.rename(&f, &fresh).unwrap();
                let v = model.remove(&f).unwrap();
                model.insert(fresh, v);
                counts[3] += 1;
            }
            8 if !files.is_empty() => {
                let f = files[x(4) % files.len()].clone();
                fs.remove(&f).unwrap();
                model.remove(&f);
                counts[4] += 1;
            }
            9 => {
                let empty: Vec<&String> = dirs.iter().filter(|d| !d.is_empty() && !model.keys().any(|k| k.starts_with(&format!("{d}/")))).collect();
                if let Some(d) = empty.first() {
                    let d = (*d).clone();
                    fs.remove(&d).unwrap();
                    model.remove(&d);
                    counts[5] += 1;
                }
            }
            _ => {}
        }
        if op % 500 == 499 {
            for (k, v) in &model {
                if let Some(v) = v.as_ref().filter(|_| !fixed.contains(&k.as_str())) {
                    assert!(fs.read_file(k, 1 << 30).unwrap().as_ref() == Some(v), "{k} after op {op}");
                }
            }
        }
    }
    eprintln!("cluster {cluster}: ops (create, rewrite, mkdir, rename, delete file, delete dir) {counts:?} in {:?}", start.elapsed());
    drop(fs);
    verify(t.path(), &overlay, &model);
    assert!(std::fs::read(&img).unwrap() == before, "the source image is unchanged");
}

#[path = "../fuzz/common/mem_device.rs"]
mod mem_device;

/// The fuzz target's body as a test: 400 single-byte corruptions of the committed volume's
/// metadata (boot sector, the first MFT records, `$Bitmap`, INDX blocks) never panic; a
/// write that succeeds reads back. testdata/windows/ntfs-hive.img is mkntfs + ntfs-3g.
#[test]
fn corrupt_metadata_never_panics() {
    let img = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/windows/ntfs-hive.img")).unwrap();
    // Offsets worth corrupting: every 512-byte sector that starts with FILE or INDX, and
    // the boot sector.
    let meta: Vec<usize> = (0..img.len() / 512).filter(|s| matches!(&img[s * 512..s * 512 + 4], b"FILE" | b"INDX")).map(|s| s * 512).chain([0]).collect();
    assert!(meta.len() > 30, "{} metadata sectors", meta.len());
    let r = bytes(5, 4000 * 8);
    let start = std::time::Instant::now();
    let (mut opened, mut wrote) = (0, 0);
    for k in 0..400 {
        let x = u64::from_le_bytes(r[k * 8..k * 8 + 8].try_into().unwrap()) as usize;
        let mut b = img.clone();
        let off = meta[x % meta.len()] + (x >> 16) % 1024;
        let at = off.min(b.len() - 1);
        b[at] ^= (x >> 40) as u8 | 1;
        let len = b.len() as u64;
        let dev = mem_device::Mem(std::sync::Mutex::new(b));
        let vol = Volume::new(&dev, 0, len, "fuzz").unwrap();
        let Ok(mut w) = Ntfs::open(vol, "fuzz") else { continue };
        opened += 1;
        let _ = w.list("/Windows/System32/config");
        for i in 0..12 {
            let p = format!("/Windows/f{i:03}-with-a-longer-name.sys");
            let d = vec![i as u8; i * 397];
            if w.write_file(&p, &d).is_ok() {
                wrote += 1;
                assert_eq!(w.read_file(&p, 1 << 20).unwrap().unwrap(), d);
            }
        }
        let _ = w.mkdir("/Windows/Drivers");
        let _ = w.rename("/Windows/f001-with-a-longer-name.sys", "/Windows/Drivers/g.sys");
        let _ = w.remove("/Windows/f002-with-a-longer-name.sys");
        if let Ok(Some(h)) = w.read_file("/Windows/System32/config/SYSTEM", 8 << 20) {
            let mut h2 = h.clone();
            h2.extend_from_slice(&[1; 9000]);
            let _ = w.write_file("/Windows/System32/config/SYSTEM", &h2);
        }
    }
    eprintln!("400 corruptions: {opened} opened, {wrote} writes read back, {:?}", start.elapsed());
}

/// A volume marked dirty (ntfsfix marks it so Windows runs chkdsk) is refused in one line;
/// ntfs-3g agrees that it needs a check.
#[test]
fn dirty_volume_refused() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let img = mkvol(t.path(), "dirty.img", 16, 0);
    let o = std::process::Command::new("ntfsfix").arg(&img).output().unwrap();
    assert!(o.status.success());
    let o = std::process::Command::new("ntfsls").arg(&img).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("scheduled for check"), "ntfs-3g sees the dirty flag");
    let raw = RawImage::open(&img).unwrap();
    let overlay = CowOverlay::new(raw).unwrap();
    let vol = Volume::new(&overlay, 0, overlay.size(), "dirty.img").unwrap();
    let e = Ntfs::open(vol, "dirty.img").err().unwrap().to_string();
    assert_eq!(e, "dirty.img: the NTFS volume is marked dirty: start Windows and shut it down fully (no hibernation, Fast Startup off)");
}

/// The descriptor of /Windows (VirtIO was made in /Windows/Drivers, made in /Windows).
fn acl_root_windows(img: &std::path::Path) -> Vec<u8> {
    let mnt = img.with_extension("aclmnt");
    assert!(mount(img, &mnt, true));
    let o = std::process::Command::new("getfattr").args(["-h", "-e", "hex", "--only-values", "-n", "system.ntfs_acl"]).arg(mnt.join("Windows")).output().unwrap().stdout;
    umount(&mnt);
    o
}

/// Fragmented free space: a file spread over many runs (runlist deltas of both signs),
/// one needing more runs than its record holds (refused in one line: an attribute list
/// would be needed), one larger than the free space (refused); nothing leaks (ntfsresize's
/// accounting) and ntfs-3g reads every file.
#[test]
fn fragmented_free_space() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let Some((img, mut model)) = filled(t.path(), 24, 4096) else { return };
    let overlay = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    let vol = Volume::new(&overlay, 0, overlay.size(), "src.img").unwrap();
    let mut fs = Ntfs::open(vol, "src.img").unwrap();
    fs.mkdir("/frag").unwrap();
    model.insert("/frag".into(), None);
    let mut i = 0;
    // One-cluster files until the volume is full, then every other one deleted.
    loop {
        let p = format!("/frag/{i:05}");
        match fs.write_file(&p, &bytes(i as u64, 4000)) {
            Ok(()) => {}
            Err(e) => {
                assert!(e.to_string().starts_with("src.img: no space left on the filesystem for"), "{e}");
                break;
            }
        }
        i += 1;
    }
    assert!(i > 1000, "{i} files filled the volume");
    for k in (0..i).step_by(2) {
        fs.remove(&format!("/frag/{k:05}")).unwrap();
    }
    for k in (1..i).step_by(2) {
        model.insert(format!("/frag/{k:05}"), Some(bytes(k as u64, 4000)));
    }
    // ~60 fragments fit in the record's runlist.
    let d = bytes(77, 60 * 4096);
    fs.write_file("/frag/sixty-runs.bin", &d).unwrap();
    model.insert("/frag/sixty-runs.bin".into(), Some(d));
    // Hundreds do not.
    let e = fs.write_file("/frag/too-many-runs.bin", &bytes(78, 400 * 4096)).unwrap_err().to_string();
    assert!(e.starts_with("src.img: unsupported /frag/too-many-runs.bin: data in ") && e.ends_with("fragments (would need an attribute list)"), "{e}");
    assert!(!fs.exists("/frag/too-many-runs.bin").unwrap());
    let e = fs.write_file("/big", &vec![0; 64 << 20]).unwrap_err().to_string();
    assert_eq!(e, "src.img: no space left on the filesystem for 16384 clusters");
    drop(fs);
    verify(t.path(), &overlay, &model);
}

/// A journal with an active client and no "clean" flag (Windows powered off while
/// running): ntfs-3g reports an unclean file system, and Ferry refuses to edit it. The restart pages
/// are written here by hand (where ntfsinfo says `$LogFile` lies), as a running Windows
/// leaves them; with the clean flag set both accept the volume.
#[test]
fn unclean_journal_refused() {
    if !tools() || !have("ntfsinfo") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let img = mkvol(t.path(), "log.img", 32, 4096);
    let info = std::process::Command::new("ntfsinfo").args(["-v", "-i", "2"]).arg(&img).output().unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    let runs = text.lines().skip_while(|l| !l.contains("Runlist:")).nth(1).unwrap().to_string();
    let f: Vec<u64> = runs.split_whitespace().map(|x| u64::from_str_radix(x.trim_start_matches("0x"), 16).unwrap()).collect();
    let (lcn, len) = (f[1], f[2]);
    let size = len * 4096;
    let page = |clean: bool| -> Vec<u8> {
        let mut p = vec![0u8; 4096];
        let put16 = |p: &mut [u8], o: usize, v: u16| p[o..o + 2].copy_from_slice(&v.to_le_bytes());
        p[..4].copy_from_slice(b"RSTR");
        put16(&mut p, 4, 0x1e); // update sequence array at 0x1e, 9 entries
        put16(&mut p, 6, 9);
        p[0x10..0x14].copy_from_slice(&4096u32.to_le_bytes()); // system page size
        p[0x14..0x18].copy_from_slice(&4096u32.to_le_bytes()); // log page size
        put16(&mut p, 0x18, 0x30); // restart area offset
        put16(&mut p, 0x1a, 1); // version 1.1
        put16(&mut p, 0x1c, 1);
        let ra = 0x30;
        p[ra..ra + 8].copy_from_slice(&0x12345u64.to_le_bytes()); // current LSN
        put16(&mut p, ra + 8, 1); // one log client
        put16(&mut p, ra + 0xa, 0xffff); // free list empty
        put16(&mut p, ra + 0xc, 0); // client 0 in use
        put16(&mut p, ra + 0xe, if clean { 2 } else { 0 });
        let bits = 64 - size.leading_zeros();
        p[ra + 0x10..ra + 0x14].copy_from_slice(&(67 - bits).to_le_bytes());
        put16(&mut p, ra + 0x14, 0x40 + 0xa0); // restart area length
        put16(&mut p, ra + 0x16, 0x40); // client array offset
        p[ra + 0x18..ra + 0x20].copy_from_slice(&size.to_le_bytes());
        put16(&mut p, ra + 0x24, 0x30); // log record header length
        put16(&mut p, ra + 0x26, 0x40); // log page data offset
        let c = ra + 0x40;
        put16(&mut p, c + 0x10, 0xffff); // prev client
        put16(&mut p, c + 0x12, 0xffff); // next client
        // Fixups: sequence number 1 at the end of each sector, originals in the array.
        put16(&mut p, 0x1e, 1);
        for i in 1..=8 {
            let end = i * 512 - 2;
            let (a, b) = (p[end], p[end + 1]);
            p[0x1e + 2 * i] = a;
            p[0x1e + 2 * i + 1] = b;
            put16(&mut p, end, 1);
        }
        p
    };
    for (clean, name) in [(false, "dirty-log.img"), (true, "clean-log.img")] {
        let mut b = std::fs::read(&img).unwrap();
        let at = (lcn * 4096) as usize;
        let pg = page(clean);
        b[at..at + 4096].copy_from_slice(&pg);
        b[at + 4096..at + 8192].copy_from_slice(&pg);
        let p = t.path().join(name);
        std::fs::write(&p, b).unwrap();
        let mnt = t.path().join(format!("{name}.mnt"));
        std::fs::create_dir_all(&mnt).unwrap();
        let ferry = {
            let overlay = CowOverlay::new(RawImage::open(&p).unwrap()).unwrap();
            let vol = Volume::new(&overlay, 0, overlay.size(), name).unwrap();
            Ntfs::open(vol, name).err().map(|e| e.to_string())
        };
        // ntfs-3g checks the journal on a read-write mount (this copy is thrown away).
        let o = std::process::Command::new("ntfs-3g").arg(&p).arg(&mnt).output().unwrap();
        if o.status.success() {
            umount(&mnt);
        }
        let said = String::from_utf8_lossy(&o.stderr).to_string();
        if clean {
            assert!(o.status.success() && !said.contains("unclean"), "ntfs-3g mounts the clean journal: {said}");
            assert_eq!(ferry, None);
        } else {
            // ntfs-3g reports it unclean (then, by default, resets the journal: the data
            // it held is lost, which is why Ferry refuses instead).
            assert!(said.contains("The disk contains an unclean file system"), "ntfs-3g: {said}");
            assert_eq!(ferry.as_deref(), Some("dirty-log.img: the NTFS journal ($LogFile) has pending transactions (Windows was not shut down cleanly): start Windows and shut it down fully (no hibernation, Fast Startup off)"));
        }
    }
}

/// An `$MFT` so fragmented that ntfs-3g gave it an attribute list (its `$DATA` continues
/// in another record): Ferry maps it through the list, edits the volume within the free
/// records, and refuses in one line to extend it; ntfs-3g reads everything back.
#[test]
fn fragmented_mft_with_attribute_list() {
    if !tools() || !have("ntfsinfo") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let img = mkvol(t.path(), "al.img", 16, 4096);
    let mnt = t.path().join("m");
    if !mount(&img, &mnt, false) {
        return;
    }
    // Free space in single clusters, then empty files until $MFT grows into them.
    std::fs::create_dir_all(mnt.join("f")).unwrap();
    let mut n = 0;
    while std::fs::write(mnt.join(format!("f/{n:05}")), [7u8; 4000]).is_ok() {
        n += 1;
    }
    for i in (0..n).step_by(2) {
        std::fs::remove_file(mnt.join(format!("f/{i:05}"))).unwrap();
    }
    std::fs::create_dir_all(mnt.join("g")).unwrap();
    let mut k = 0;
    while std::fs::File::create(mnt.join(format!("g/{k:05}"))).is_ok() {
        k += 1;
    }
    // Room again: the rest of f goes (records and clusters free, $MFT stays fragmented).
    std::fs::remove_dir_all(mnt.join("f")).unwrap();
    let mut model = walk(&mnt);
    umount(&mnt);
    let info = std::process::Command::new("ntfsinfo").args(["-i", "0"]).arg(&img).output().unwrap();
    assert!(String::from_utf8_lossy(&info.stdout).contains("$ATTRIBUTE_LIST"), "ntfs-3g gave $MFT an attribute list ({n} files, {k} empty ones)");

    let overlay = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    let vol = Volume::new(&overlay, 0, overlay.size(), "al.img").unwrap();
    let mut fs = Ntfs::open(vol, "al.img").unwrap();
    assert_eq!(fs.list("/g").unwrap().len(), k);
    fs.mkdir("/h").unwrap();
    model.insert("/h".into(), None);
    for i in 0..20 {
        let d = bytes(i, i as usize * 3000);
        fs.write_file(&format!("/h/file {i}.bin"), &d).unwrap();
        model.insert(format!("/h/file {i}.bin"), Some(d));
    }
    fs.rename("/g/00010", "/h/moved").unwrap();
    model.remove("/g/00010");
    model.insert("/h/moved".into(), Some(Vec::new()));
    fs.remove("/g/00011").unwrap();
    model.remove("/g/00011");
    // Empty files until no MFT record is left: then one line, nothing half-made.
    let mut e = None;
    for i in 0..20_000 {
        let p = format!("/h/e{i:05}");
        match fs.write_file(&p, b"") {
            Ok(()) => {
                model.insert(p, Some(Vec::new()));
            }
            Err(x) => {
                e = Some(x.to_string());
                break;
            }
        }
    }
    assert_eq!(e.as_deref(), Some("al.img: unsupported $MFT: extending an $MFT that has an attribute list (no free MFT record left)"));
    drop(fs);
    verify(t.path(), &overlay, &model);
}

/// A 32 MiB volume with a change journal (`$Max` = `max`, `$J` of `j_len` bytes).
fn with_journal(dir: &std::path::Path, max: &[u8], j_len: usize) -> Option<(std::path::PathBuf, CowOverlay<RawImage>)> {
    let img = mkvol(dir, "usn.img", 32, 4096);
    let j = bytes(9, j_len);
    if !windows_support::add_usn_journal(&img, max, |i| j[i], j_len) {
        return None;
    }
    let overlay = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    Some((img, overlay))
}

#[test]
fn usn_journal_reset_gives_a_new_id_and_moves_the_lowest_valid_usn() {
    use ferry_converters::fs::ntfs::UsnReset;
    if !tools() || !ntfs_support::have("ntfscat") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let old_id: u64 = 0x01d9_0000_1234_5678;
    let mut max = Vec::new();
    for v in [32u64 << 20, 8 << 20, old_id, 0] {
        max.extend_from_slice(&v.to_le_bytes());
    }
    let Some((img, overlay)) = with_journal(dir.path(), &max, 6000) else { return };
    let src = std::fs::read(&img).unwrap();
    let vol = Volume::new(&overlay, 0, overlay.size(), "usn.img").unwrap();
    let mut fs = Ntfs::open(vol, "usn.img").unwrap();
    let UsnReset::Reset { old_id: was, new_id, lowest_valid } = fs.reset_usn_journal().unwrap() else { panic!("no journal found") };
    assert_eq!((was, lowest_valid), (old_id, Some(6000)));
    assert!(new_id > old_id);
    drop(fs);
    let out = dir.path().join("out.img");
    materialize(&overlay, &out);
    check(&out);
    let got = windows_support::ntfs_stream(&out, "/$Extend/$UsnJrnl", "$Max");
    assert_eq!(got.len(), 32);
    assert_eq!(got[..16], max[..16], "maximum size and allocation delta are kept");
    assert_eq!(u64::from_le_bytes(got[16..24].try_into().unwrap()), new_id);
    assert_eq!(u64::from_le_bytes(got[24..32].try_into().unwrap()), 6000);
    assert_eq!(windows_support::ntfs_stream(&out, "/$Extend/$UsnJrnl", "$J"), bytes(9, 6000), "the records stay");
    assert_eq!(std::fs::read(&img).unwrap(), src, "the source image changed");

    // Again: another id.
    let vol = Volume::new(&overlay, 0, overlay.size(), "usn.img").unwrap();
    let mut fs = Ntfs::open(vol, "usn.img").unwrap();
    let UsnReset::Reset { old_id: was, new_id: again, .. } = fs.reset_usn_journal().unwrap() else { panic!("no journal found") };
    assert_eq!(was, new_id);
    assert_ne!(again, new_id);

    // No journal: nothing to do. A short $Max: one line, nothing written.
    let plain = mkvol(dir.path(), "plain.img", 16, 4096);
    let overlay = CowOverlay::new(RawImage::open(&plain).unwrap()).unwrap();
    let vol = Volume::new(&overlay, 0, overlay.size(), "plain.img").unwrap();
    assert_eq!(Ntfs::open(vol, "plain.img").unwrap().reset_usn_journal().unwrap(), UsnReset::NoJournal);
    let bad = tempfile::tempdir().unwrap();
    let Some((_, overlay)) = with_journal(bad.path(), &max[..16], 6000) else { return };
    let before = dir.path().join("bad-before.img");
    materialize(&overlay, &before);
    let vol = Volume::new(&overlay, 0, overlay.size(), "usn.img").unwrap();
    let e = Ntfs::open(vol, "usn.img").unwrap().reset_usn_journal().unwrap_err().to_string();
    assert!(e.starts_with("usn.img: invalid $UsnJrnl:$Max ") && e.ends_with("resident of 16 bytes, not the resident 32-byte journal header"), "{e}");
    let after = dir.path().join("bad-after.img");
    materialize(&overlay, &after);
    assert_eq!(std::fs::read(&before).unwrap(), std::fs::read(&after).unwrap(), "a refused reset wrote something");
}
