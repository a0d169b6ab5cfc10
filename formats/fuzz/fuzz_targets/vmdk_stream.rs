#![no_main]
//! Fuzz target: ferry_formats::vmdk::fuzzing::stream.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ferry_formats::vmdk::fuzzing::stream(data);
});
