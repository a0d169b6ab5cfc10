//! The writable qcow2 (`Qcow2Rw`, for the runtime's virtio-blk): random writes and discards
//! on qemu-made images (plain, compressed, with a backing file) and on Ferry's own output,
//! mirrored into a raw copy; afterwards `qemu-img check` must be clean and
//! `qemu-img compare` must find the qcow2 equal to the raw mirror.
mod img_support;
use ferry_formats::disk::{BlockDevice, WritableDevice};
use ferry_formats::qcow2::Qcow2Rw;
use img_support::*;
use std::os::unix::fs::FileExt;
use std::path::Path;

fn hammer(img: &Path, mirror: &Path, seed: u64) {
    let dev = Qcow2Rw::open(img).unwrap();
    let raw = std::fs::OpenOptions::new().write(true).open(mirror).unwrap();
    let size = dev.size();
    let mut x = seed | 1;
    let mut next = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    for i in 0..300 {
        let len = [1u64, 512, 4096, 65536, 70000, 300_000][next(6) as usize];
        let off = next(size - len);
        if i % 10 == 9 {
            dev.discard(off, len).unwrap();
            raw.write_all_at(&vec![0u8; len as usize], off).unwrap();
        } else {
            let data = pattern(len as usize, i);
            dev.write_at(&data, off).unwrap();
            raw.write_all_at(&data, off).unwrap();
        }
        if i % 50 == 0 {
            let mut a = vec![0u8; len as usize];
            dev.read_at(&mut a, off).unwrap();
        }
    }
    dev.flush().unwrap();
}

#[test]
fn random_writes_stay_consistent() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raw = standard_raw(d);
    let ours = d.join("ours.qcow2");
    let (code, _, err) = run(ferry(&["img", "convert", "-O", "qcow2", "-c", s(&raw), s(&ours)]));
    assert_eq!(code, 0, "{err}");
    let mut images = qemu_variants(d, &raw);
    images.push(("ferry-zlib".into(), ours));
    for (k, (name, img)) in images.iter().enumerate() {
        if name == "c4k" {
            continue; // 4 KiB clusters with a 64 MiB disk: covered by the others, slow here
        }
        let mirror = d.join(format!("{name}.mirror.raw"));
        qemu_img(&["convert", "-O", "raw", s(img), s(&mirror)]);
        hammer(img, &mirror, k as u64 + 7);
        assert_check_clean(img);
        assert_same(&mirror, img);
    }
}
