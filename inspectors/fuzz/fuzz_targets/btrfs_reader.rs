//! The btrfs reader on arbitrary metadata. The input is sparse, so that a whole small
//! filesystem fits a seed: records of (u32 LE byte offset, u16 LE length, bytes) laid on a
//! zeroed 16 MiB device (`mkfs.btrfs --shrink` images, zero runs dropped, are the seeds).
#![no_main]
use ferry_inspectors::fs::{BtrfsFs, FileSystem};
use ferry_inspectors::{Device, MemDevice};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

const SIZE: usize = 16 << 20;

fn walk(fs: &BtrfsFs, dir: &str, depth: usize, budget: &mut usize) {
    let Ok(entries) = fs.read_dir(dir) else { return };
    for (name, _) in entries.iter().take(16) {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let p = format!("{}/{name}", dir.trim_end_matches('/'));
        let _ = fs.metadata(&p);
        let _ = fs.read_head(&p, 1 << 20);
        let _ = fs.read_link(&p);
        if depth < 4 {
            walk(fs, &p, depth + 1, budget);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut img = vec![0u8; SIZE];
    let mut p = 0;
    while let Some(h) = data.get(p..p + 6) {
        let off = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let len = usize::from(u16::from_le_bytes([h[4], h[5]]));
        let Some(bytes) = data.get(p + 6..p + 6 + len) else { break };
        if let Some(dst) = img.get_mut(off..off.saturating_add(len)) {
            dst.copy_from_slice(bytes);
        }
        p += 6 + len;
    }
    let dev = Device::new("/dev/sda1", Arc::new(MemDevice(img)));
    let Ok(fs) = BtrfsFs::open(&dev) else { return };
    let _ = fs.report();
    if let Ok(subs) = fs.subvolumes() {
        for s in subs.iter().take(4) {
            if let Ok(v) = fs.subvolume(s.id) {
                walk(&v, "/", 0, &mut 64);
            }
        }
    }
});
