//! The hand-written XFS reader (and md superblock parsing) on arbitrary bytes.
#![no_main]
use ferry_inspectors::fs::{FileSystem, XfsFs};
use ferry_inspectors::{md, Device, MemDevice};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let dev = Device::new("/dev/sda1", Arc::new(MemDevice(data.to_vec())));
    if let Ok(Some(m)) = md::read_member(&dev) {
        let _ = md::assemble(&[m]);
    }
    let Ok(fs) = XfsFs::open(&dev) else { return };
    for dir in ["/", "/etc"] {
        if let Ok(entries) = fs.read_dir(dir) {
            for (name, _) in entries.iter().take(8) {
                let p = format!("{}/{name}", dir.trim_end_matches('/'));
                let _ = fs.metadata(&p);
                let _ = fs.read_head(&p, 4096);
                let _ = fs.read_link(&p);
            }
        }
    }
});
