//! Fuzz the VMX reader: never panics; every error is one line.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = ferry_formats::vmx::parse_vmx(data, Path::new("fuzz.vmx")) {
        assert!(!e.to_string().contains('\n'));
    }
});
