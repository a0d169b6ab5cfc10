//! The NTFS metadata the in-place writer reads: the input overwrites bytes anywhere in a
//! small committed volume (testdata/windows/ntfs-hive.img: mkntfs, a hive written through
//! ntfs-3g), then the volume is opened, the hive read, edited within its size and written
//! back, and read again. Never panics; a write that succeeds reads back.
#![no_main]

use ferry_converters::fs::Volume;
use ferry_converters::windows::hive::{Hive, Value};
use ferry_converters::windows::ntfs::NtfsWriter;
use libfuzzer_sys::fuzz_target;
use std::sync::Mutex;

static IMG: &[u8] = include_bytes!("../../../testdata/windows/ntfs-hive.img");
const HIVE: &str = "/Windows/System32/config/SYSTEM";

#[path = "../common/mem_device.rs"]
mod mem_device;
use mem_device::Mem;

fuzz_target!(|data: &[u8]| {
    let mut img = IMG.to_vec();
    for m in data.chunks_exact(5) {
        let off = u32::from_le_bytes([m[0], m[1], m[2], m[3]]) as usize % img.len();
        img[off] = m[4];
    }
    let len = img.len() as u64;
    let dev = Mem(Mutex::new(img));
    let Ok(vol) = Volume::new(&dev, 0, len, "fuzz") else { return };
    let Ok(mut w) = NtfsWriter::open(vol, "fuzz") else { return };
    let _ = w.read_file("/Windows/missing", 1 << 20);
    let Ok(Some(old)) = w.read_file(HIVE, 8 << 20) else { return };
    let Ok(mut h) = Hive::open("fuzz", old.clone()) else { return };
    let Ok(k) = h.create_key("Fuzz") else { return };
    let _ = h.set_value(k, "Start", &Value::Dword(0));
    let new = h.to_bytes();
    if new.len() == old.len() && w.replace_data(HIVE, &new).is_ok() {
        assert_eq!(w.read_file(HIVE, 8 << 20).expect("re-read").expect("still there"), new);
    }
});
