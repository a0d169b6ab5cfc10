//! The ext2/3/4 wrapper on arbitrary filesystem bytes: errors, never panics out of the
//! wrapper. (Panics inside the `ext4` crate are contained by the wrapper; the default
//! hook is silenced so libFuzzer does not abort on a contained one.)
#![no_main]
use ferry_inspectors::fs::{probe, ExtFs, FileSystem};
use ferry_inspectors::{Device, MemDevice};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, Once};

static HOOK: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    HOOK.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let dev = Device::new("/dev/sda1", Arc::new(MemDevice(data.to_vec())));
    let _ = probe(&dev);
    let Ok(fs) = ExtFs::open(&dev) else { return };
    if let Ok(entries) = fs.read_dir("/") {
        for (name, _) in entries.iter().take(8) {
            let p = format!("/{name}");
            let _ = fs.metadata(&p);
            let _ = fs.read_head(&p, 4096);
            let _ = fs.read_link(&p);
            let _ = fs.read_dir(&p);
        }
    }
    let _ = fs.read_file("/etc/os-release", 1 << 16);
});
