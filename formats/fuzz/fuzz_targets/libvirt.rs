//! Fuzz the libvirt domain XML reader: never panics; errors are one line.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = ferry_formats::libvirt::parse_libvirt_xml(&text, Path::new("fuzz.xml")) {
        assert!(!e.to_string().contains('\n'));
    }
});
