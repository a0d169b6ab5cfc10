//! Fuzz the OVF envelope parser and the manifest parser: never panic; errors are one line.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = ferry_formats::ovf::parse_ovf_text(&text, Path::new("fuzz.ovf")) {
        assert!(!e.to_string().contains('\n'));
    }
    let _ = ferry_formats::ovf::manifest::parse(&text);
});
