//! Fuzzes the ISO 9660 reader (virtio-win images): volume descriptors, Joliet names,
//! directory records and file reads.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Errors are expected; panics, hangs and huge allocations are the bugs.
    let _ = ferry_formats::iso9660::fuzz_image(data);
});
