//! FAT (ESP) writing through `fatfs` over a partition window of the overlay, judged by
//! `fsck.vfat -n` and mtools.

mod fs_support;

use ferry_converters::fs::fat::Fat;
use ferry_converters::fs::Volume;
use ferry_formats::disk::{BlockDevice, CowOverlay, RawImage};
use fs_support::*;

fn exercise(fat_bits: &str, size_kb: u64) {
    if !have("mkfs.vfat") || !have("fsck.vfat") || !have("mtype") {
        eprintln!("skipping: dosfstools or mtools not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("esp.img");
    let p = part.to_str().unwrap();
    let out = run("mkfs.vfat", &["-F", fat_bits, "-C", p, &size_kb.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let old_cfg = dir.path().join("grub.cfg");
    std::fs::write(&old_cfg, b"set root=(hd0,gpt2)\nlinux /vmlinuz root=/dev/sda2\n").unwrap();
    assert!(run("mmd", &["-i", p, "::/EFI", "::/EFI/debian"]).status.success());
    assert!(run("mcopy", &["-i", p, old_cfg.to_str().unwrap(), "::/EFI/debian/grub.cfg"]).status.success());
    let mut disk = vec![0u8; PART_OFFSET as usize];
    disk.extend_from_slice(&std::fs::read(&part).unwrap());
    let part_len = disk.len() as u64 - PART_OFFSET;
    let disk_path = dir.path().join("disk.raw");
    std::fs::write(&disk_path, &disk).unwrap();

    let ov = CowOverlay::new(RawImage::open(&disk_path).unwrap()).unwrap();
    let new_cfg = pattern(9000, 5).iter().map(|b| b'a' + b % 26).collect::<Vec<u8>>();
    let new_file = b"written by ferry\n".to_vec();
    {
        let fs = Fat::open(Volume::new(&ov, PART_OFFSET, part_len, "disk.raw").unwrap(), "disk.raw p1").unwrap();
        assert_eq!(fs.read_file("/EFI/debian/grub.cfg", 1 << 20).unwrap(), std::fs::read(&old_cfg).unwrap());
        fs.write_file("/EFI/debian/grub.cfg", &new_cfg).unwrap();
        fs.write_file("/EFI/ferry/new.txt", &new_file).unwrap();
        fs.write_file("/EFI/BOOT/deeper/Long File Name.cfg", b"long\n").unwrap();
        fs.create_dir_all("/EFI/empty/one").unwrap();
        fs.write_file("/EFI/ferry/gone.txt", b"x").unwrap();
        fs.remove("/EFI/ferry/gone.txt").unwrap();
        assert_eq!(fs.read_file("/EFI/ferry/new.txt", 1 << 20).unwrap(), new_file);
        assert!(fs.read_file("/EFI/debian/grub.cfg", 100).is_err(), "size cap enforced");
        fs.unmount().unwrap();
    }
    let mut merged = vec![0u8; part_len as usize];
    ov.read_at(&mut merged, PART_OFFSET).unwrap();
    let out_img = dir.path().join("out.img");
    std::fs::write(&out_img, merged).unwrap();
    let o = out_img.to_str().unwrap();
    let fsck = run("fsck.vfat", &["-n", o]);
    assert_eq!(fsck.status.code(), Some(0), "fsck.vfat -n: {}", String::from_utf8_lossy(&fsck.stdout));
    assert_eq!(run("mtype", &["-i", o, "::/EFI/debian/grub.cfg"]).stdout, new_cfg);
    assert_eq!(run("mtype", &["-i", o, "::/EFI/ferry/new.txt"]).stdout, new_file);
    let listing = String::from_utf8_lossy(&run("mdir", &["-b", "-i", o, "::/EFI/ferry"]).stdout).into_owned();
    assert!(listing.contains("new.txt") && !listing.contains("gone.txt"), "mdir: {listing}");
    assert_eq!(run("mtype", &["-i", o, "::/EFI/BOOT/deeper/Long File Name.cfg"]).stdout, b"long\n");
    drop(ov);
    assert!(std::fs::read(&disk_path).unwrap() == disk, "source disk unchanged");
}

#[test]
fn fat32_esp_edits() {
    exercise("32", 40_000);
}

#[test]
fn fat16_esp_edits() {
    exercise("16", 16_000);
}
