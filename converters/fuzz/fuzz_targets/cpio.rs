//! cpio newc/crc reader: never panics; what it reads writes back to the same members.
#![no_main]

use ferry_converters::initramfs::cpio::{parse_stream, write_archive};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = parse_stream("fuzz", data) {
        let mut out = Vec::new();
        if write_archive(&mut out, &entries).is_ok() {
            let again = parse_stream("fuzz", &out).expect("re-read what was written");
            assert_eq!(again, entries);
        }
    }
});
