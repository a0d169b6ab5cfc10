//! Fuzzes the qcow2 header, extension and table parsers, the reader (map + reads of mapped
//! data, compressed clusters included) and the consistency checker with arbitrary files.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Errors are expected; panics, hangs and huge allocations are the bugs.
    let _ = ferry_formats::qcow2::fuzz_image(data);
});
