//! Fuzz the Xen xl/xm reader (syntax, disk and vif specs): never panics; errors are one line.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = ferry_formats::xen::parse_xen(&text, Path::new("fuzz.cfg")) {
        assert!(!e.to_string().contains('\n'));
    }
    let _ = ferry_formats::xen::parse_disk(&text);
});
