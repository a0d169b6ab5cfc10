//! Whole initramfs images (stored and compressed segments): never panics, bounded memory;
//! a parsed image's main segment rewrites to the same members.
#![no_main]

use ferry_converters::initramfs::{Initramfs, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_segment: 16 << 20, max_total: 32 << 20 };
    if let Ok(image) = Initramfs::parse("fuzz", data.to_vec(), limits) {
        let main = image.main_segment();
        let entries = image.segments[main].entries.clone();
        if let Ok(out) = image.rewrite_segment(main, &entries) {
            let again = Initramfs::parse("fuzz", out, Limits::default()).expect("re-read what was written");
            assert_eq!(again.segments[main].entries, entries);
        }
        for e in image.segments.iter().flat_map(|s| &s.entries) {
            let _ = image.data(e);
        }
    }
});
