//! The initramfs listing of virtio drivers on arbitrary bytes: segments (stored cpio, gzip,
//! xz, lzma, zstd, lz4 legacy), newc members, `modules.builtin`. Never panics, never
//! decompresses past its limits; an error is one line.
#![no_main]
use ferry_inspectors::initramfs::{virtio_drivers, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_segment: 16 << 20, max_total: 32 << 20 };
    match virtio_drivers("/boot/initrd.img", data.to_vec(), limits) {
        Ok(d) => assert!(d.modules.len() <= 10 && d.builtin.len() <= 10),
        Err(e) => assert_eq!(e.to_string().lines().count(), 1, "{e}"),
    }
});
