//! The NTFS metadata the writer reads: the input overwrites bytes anywhere in a small
//! committed volume (testdata/windows/ntfs-hive.img: mkntfs, a hive written through
//! ntfs-3g), then the volume is opened, listed, the hive read, edited and written back
//! grown, and files and directories created, renamed and deleted (MFT records, runlists,
//! `$Bitmap`, `$MFT`'s bitmap, `$I30` roots and INDX blocks all read from the mutated
//! bytes), and the change journal reset looked for. Never panics; a write that succeeds
//! reads back.
#![no_main]

use ferry_converters::fs::ntfs::Ntfs;
use ferry_converters::fs::Volume;
use ferry_converters::windows::hive::{Hive, Value};
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
    let Ok(mut w) = Ntfs::open(vol, "fuzz") else { return };
    let _ = w.read_file("/Windows/missing", 1 << 20);
    let _ = w.list("/Windows/System32");
    for i in 0..40 {
        let p = format!("/Windows/f{i:03}-with-a-longer-name.sys");
        if w.write_file(&p, &vec![i as u8; i * 97]).is_ok() {
            assert_eq!(w.read_file(&p, 1 << 20).expect("re-read").expect("created"), vec![i as u8; i * 97]);
        }
    }
    let _ = w.mkdir("/Windows/Drivers");
    let _ = w.rename("/Windows/f001-with-a-longer-name.sys", "/Windows/Drivers/g.sys");
    let _ = w.remove("/Windows/f002-with-a-longer-name.sys");
    let _ = w.list("/Windows");
    let _ = w.reset_usn_journal();
    let Ok(Some(old)) = w.read_file(HIVE, 8 << 20) else { return };
    let Ok(mut h) = Hive::open("fuzz", old) else { return };
    let Ok(k) = h.create_key("Fuzz") else { return };
    let _ = h.set_value(k, "Blob", &Value::Binary(vec![7; 20_000]));
    let new = h.to_bytes();
    if w.write_file(HIVE, &new).is_ok() {
        assert_eq!(w.read_file(HIVE, 8 << 20).expect("re-read").expect("still there"), new);
    }
});
