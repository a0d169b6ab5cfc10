//! The NTFS writer against ntfs-3g: volumes made by mkntfs and filled through an ntfs-3g
//! FUSE mount are edited by Ferry through a copy-on-write overlay; then `ntfsfix
//! --no-action` passes, ntfsresize's cluster accounting matches `$Bitmap`, ntfs-3g (FUSE
//! mount, ntfsls, ntfscat) reads back exactly the expected tree byte for byte, and the
//! source image is unchanged.

mod ntfs_support;

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
fn filled(dir: &std::path::Path, mb: u64, cluster: u32) -> Option<(std::path::PathBuf, BTreeMap<String, Option<Vec<u8>>>)> {
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
    let e = fs.write_file("/bad:name", b"x").unwrap_err().to_string();
    assert_eq!(e, "src.img: invalid file name \"/bad:name\": a character Windows forbids in names");
    drop(fs);

    let out = verify(t.path(), &overlay, &model);
    assert_eq!(ntfscat(&out, "/Windows/System32/drivers/viostor.sys"), bytes(10, 123_457));
    assert_eq!(ntfsls(&out, "/VirtIO", false), vec!["netkvm.inf", "vioscsi.sys"]);
    assert!(std::fs::read(&img).unwrap() == before, "the source image is unchanged");
}
