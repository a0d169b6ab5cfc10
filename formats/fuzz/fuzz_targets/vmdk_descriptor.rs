#![no_main]
//! Fuzz target: ferry_formats::vmdk::fuzzing::descriptor.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ferry_formats::vmdk::fuzzing::descriptor(data);
});
