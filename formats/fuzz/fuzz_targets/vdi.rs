//! Fuzzes the VDI reader: header and table parsing, then the map and reads of mapped data.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Errors are expected; panics, hangs and huge allocations are the bugs.
    let _ = ferry_formats::vdi::fuzz_image(data);
});
