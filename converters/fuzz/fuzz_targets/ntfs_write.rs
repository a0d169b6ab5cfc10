//! The NTFS metadata the in-place writer reads: the input overwrites bytes anywhere in a
//! small committed volume (testdata/windows/ntfs-hive.img: mkntfs, a hive written through
//! ntfs-3g), then the volume is opened, the hive read, edited within its size and written
//! back, and read again. Never panics; a write that succeeds reads back.
#![no_main]

use ferry_converters::fs::Volume;
use ferry_converters::windows::hive::{Hive, Value};
use ferry_converters::windows::ntfs::NtfsWriter;
use ferry_formats::disk::{BlockDevice, DiskError, Extent, ExtentKind, ImageInfo, WritableDevice};
use libfuzzer_sys::fuzz_target;
use std::sync::Mutex;

static IMG: &[u8] = include_bytes!("../../../testdata/windows/ntfs-hive.img");
const HIVE: &str = "/Windows/System32/config/SYSTEM";

struct Mem(Mutex<Vec<u8>>);

impl BlockDevice for Mem {
    fn size(&self) -> u64 {
        self.0.lock().unwrap().len() as u64
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        let v = self.0.lock().unwrap();
        ferry_formats::disk::check_range(std::path::Path::new("mem"), offset, buf.len() as u64, v.len() as u64)?;
        buf.copy_from_slice(&v[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
    fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
        Ok(vec![Extent { offset, length, kind: ExtentKind::Data }])
    }
    fn info(&self) -> ImageInfo {
        ImageInfo::default()
    }
}

impl WritableDevice for Mem {
    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), DiskError> {
        let mut v = self.0.lock().unwrap();
        let len = v.len() as u64;
        ferry_formats::disk::check_range(std::path::Path::new("mem"), offset, buf.len() as u64, len)?;
        v[offset as usize..offset as usize + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&self) -> Result<(), DiskError> {
        Ok(())
    }
    fn discard(&self, _: u64, _: u64) -> Result<(), DiskError> {
        Ok(())
    }
}

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
