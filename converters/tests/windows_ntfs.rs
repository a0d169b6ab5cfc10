//! Hive edits on NTFS: a SYSTEM hive on an mkntfs volume (copied in through an ntfs-3g
//! FUSE mount) is read, edited by the hive writer (within its free cells, then grown past
//! its file size), and written back through a copy-on-write overlay. Oracles: ntfscat reads the new bytes back, hivexget
//! reads the new values, `ntfsfix --no-action` accepts the volume, the source image is
//! byte-identical; hibernated volumes are refused as ntfs-3g refuses them.

mod windows_support;

use ferry_converters::fs::Volume;
use ferry_converters::windows::hive::{Hive, Value};
use ferry_converters::fs::ntfs::Ntfs;
use ferry_converters::windows::{edit_hive_file, install_boot_driver, HiveFileError};
use ferry_formats::disk::{BlockDevice, CowOverlay, RawImage};
use std::path::Path;
use std::process::Command;
use windows_support::*;

const SYS: &str = "HKEY_LOCAL_MACHINE\\SYSTEM";
const HIVE: &str = "/Windows/System32/config/SYSTEM";

fn volume(dir: &Path, name: &str, system: &Path, with_hiberfil: bool) -> Option<std::path::PathBuf> {
    let mut files = vec![("Windows/System32/config/SYSTEM", std::fs::read(system).unwrap())];
    if with_hiberfil {
        files.push(("hiberfil.sys", hiberfil(b"hibr", 8192)));
    }
    ntfs_volume(dir, name, 32, &files)
}

fn materialize(dev: &dyn BlockDevice, out: &Path) {
    let mut b = vec![0u8; dev.size() as usize];
    dev.read_at(&mut b, 0).unwrap();
    std::fs::write(out, b).unwrap();
}

#[test]
fn hive_edited_in_place_on_ntfs() {
    if !have("hivexregedit") || !have("mkntfs") || !have("ntfscat") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let system = build_hive(t.path(), "SYSTEM", 5, Some(&support().join("system-2022.reg")), SYS);
    let Some(img) = volume(t.path(), "w.img", &system, false) else { return };
    let before = std::fs::read(&img).unwrap();

    let overlay = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    let vol = Volume::new(&overlay, 0, overlay.size(), "w.img").unwrap();
    let mut w = Ntfs::open(vol, "w.img").unwrap();
    let old = w.read_file(HIVE, 1 << 30).unwrap().unwrap();
    assert_eq!(old, std::fs::read(&system).unwrap());
    let mut h = Hive::open(HIVE, old.clone()).unwrap();
    let k = h.create_key("ControlSet001\\Services\\viostor").unwrap();
    h.set_value(k, "Start", &Value::Dword(0)).unwrap();
    h.set_value(k, "Group", &Value::Sz("SCSI miniport".into())).unwrap();
    let pv = h.lookup("ControlSet001\\Services\\pvscsi").unwrap().unwrap();
    h.set_value(pv, "Start", &Value::Dword(4)).unwrap();
    let new = h.to_bytes();
    assert_eq!(new.len(), old.len(), "the edit fits in the hive's free cells");
    w.write_file(HIVE, &new).unwrap();

    // The one-step form: a second edit through edit_hive_file.
    edit_hive_file(&mut w, "w.img", HIVE, |h| {
        let k = h.create_key("ControlSet001\\Services\\viostor\\Parameters")?;
        h.set_value(k, "BusType", &Value::Dword(1))
    })
    .unwrap();
    // Growth past the file's clusters: the writer allocates more.
    edit_hive_file(&mut w, "w.img", HIVE, |h| {
        let k = h.create_key("Big")?;
        h.set_value(k, "Blob", &Value::Binary(vec![1; 1 << 20]))
    })
    .unwrap();
    let new = w.read_file(HIVE, 1 << 30).unwrap().unwrap();
    assert!(new.len() > old.len(), "the hive grew ({} to {} bytes)", old.len(), new.len());
    // A missing hive is one line naming the volume and path.
    let e = edit_hive_file(&mut w, "w.img", "/Windows/System32/config/NOPE", |_| Ok(())).unwrap_err();
    assert!(matches!(e, HiveFileError::Missing { .. }));
    assert_eq!(e.to_string(), "w.img: /Windows/System32/config/NOPE: no such hive file");

    let out = t.path().join("out.img");
    materialize(&overlay, &out);
    assert_eq!(std::fs::read(&img).unwrap(), before, "the source is unchanged");
    let o = Command::new("ntfscat").args([out.to_str().unwrap(), HIVE]).output().unwrap();
    assert!(o.status.success());
    assert!(o.stdout == new, "ntfscat reads the new hive back");
    let got = t.path().join("SYSTEM.out");
    std::fs::write(&got, &o.stdout).unwrap();
    let g = got.to_str().unwrap();
    assert_eq!(run("hivexget", &[g, "ControlSet001\\Services\\viostor", "Start"]).trim(), "0");
    assert_eq!(run("hivexget", &[g, "ControlSet001\\Services\\viostor", "Group"]).trim(), "SCSI miniport");
    assert_eq!(run("hivexget", &[g, "ControlSet001\\Services\\pvscsi", "Start"]).trim(), "4");
    assert_eq!(run("hivexget", &[g, "ControlSet001\\Services\\viostor\\Parameters", "BusType"]).trim(), "1");
    let big = run("hivexget", &[g, "Big"]);
    assert!(big.len() > 3 << 20 && big.starts_with("\"Blob\"=hex(3):01,01,"), "hivexget reads the 1 MiB value");
    let o = Command::new("ntfsfix").args(["--no-action", out.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn hibernated_volume_refused() {
    if !have("hivexregedit") || !have("mkntfs") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let system = build_hive(t.path(), "SYSTEM", 5, Some(&support().join("system-2022.reg")), SYS);
    let Some(img) = volume(t.path(), "h.img", &system, true) else { return };
    let overlay = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    let vol = Volume::new(&overlay, 0, overlay.size(), "h.img").unwrap();
    let e = Ntfs::open(vol, "h.img").err().unwrap().to_string();
    assert_eq!(e, "h.img: Windows is hibernated (hiberfil.sys): start Windows and shut it down fully (no hibernation, Fast Startup off)");
    // ntfs-3g agrees.
    let mnt = t.path().join("m");
    std::fs::create_dir_all(&mnt).unwrap();
    let o = Command::new("ntfs-3g").args([img.to_str().unwrap(), mnt.to_str().unwrap()]).output().unwrap();
    let _ = Command::new("umount").arg(&mnt).status();
    assert!(String::from_utf8_lossy(&o.stderr).contains("Windows is hibernated"));
}

/// Issue 16 point 3, first step: viostor.sys copied into Windows\System32\drivers and
/// made boot-start in the current control set. Oracles: ntfscat (the driver's bytes),
/// ntfsls (exactly the names expected), hivexget (the Services key), ntfsfix.
#[test]
fn boot_driver_installed() {
    if !have("hivexregedit") || !have("mkntfs") || !have("ntfscat") || !have("ntfsls") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let system = build_hive(t.path(), "SYSTEM", 5, Some(&support().join("system-2022.reg")), SYS);
    let Some(img) = volume(t.path(), "d.img", &system, false) else { return };
    let before = std::fs::read(&img).unwrap();
    let overlay = CowOverlay::new(RawImage::open(&img).unwrap()).unwrap();
    let vol = Volume::new(&overlay, 0, overlay.size(), "d.img").unwrap();
    let mut w = Ntfs::open(vol, "d.img").unwrap();
    w.mkdir("/Windows/System32/drivers").unwrap();
    let sys: Vec<u8> = (0..180_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    install_boot_driver(&mut w, "d.img", "viostor", &sys).unwrap();
    let e = install_boot_driver(&mut w, "d.img", "../x", &sys).unwrap_err();
    assert_eq!(e.to_string(), "d.img: invalid driver name \"../x\" (letters, digits, _ and -, at most 32)");
    drop(w);
    let out = t.path().join("out.img");
    materialize(&overlay, &out);
    assert_eq!(std::fs::read(&img).unwrap(), before, "the source is unchanged");
    let o = Command::new("ntfscat").args([out.to_str().unwrap(), "/Windows/System32/drivers/viostor.sys"]).output().unwrap();
    assert!(o.status.success() && o.stdout == sys, "ntfscat reads the driver back");
    let names = run("ntfsls", &["-f", "-p", "/Windows/System32/drivers", out.to_str().unwrap()]);
    assert_eq!(names.lines().filter(|l| *l != "." && *l != "..").collect::<Vec<_>>(), ["viostor.sys"]);
    let o = Command::new("ntfscat").args([out.to_str().unwrap(), HIVE]).output().unwrap();
    let got = t.path().join("SYSTEM.out");
    std::fs::write(&got, &o.stdout).unwrap();
    let g = got.to_str().unwrap();
    let k = "ControlSet001\\Services\\viostor";
    assert_eq!(run("hivexget", &[g, k, "Type"]).trim(), "1");
    assert_eq!(run("hivexget", &[g, k, "Start"]).trim(), "0");
    assert_eq!(run("hivexget", &[g, k, "ErrorControl"]).trim(), "1");
    assert_eq!(run("hivexget", &[g, k, "Group"]).trim(), "SCSI miniport");
    assert_eq!(run("hivexget", &[g, k, "ImagePath"]).trim(), "system32\\drivers\\viostor.sys");
    let o = Command::new("ntfsfix").args(["--no-action", out.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}
