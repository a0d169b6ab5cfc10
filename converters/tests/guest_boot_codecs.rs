//! The Linux kernel itself accepts the images this crate writes: the VMware guest's real
//! initrd, rewritten by the library as xz, lzma and lz4 legacy behind a
//! stored early-microcode-style cpio prefix, is unpacked by the guest's kernel under QEMU TCG
//! without "Initramfs unpacking failed" and runs its `/init` (initramfs-tools' first words, `Loading, please wait...`).

mod guest_support;

use std::time::Duration;

use ferry_converters::initramfs::{Compression, Initramfs, Limits};
use guest_support::*;

#[test]
fn kernel_unpacks_images_written_in_every_codec_with_a_stored_prefix() {
    let Some(g) = guest("debian-vmware") else { return };
    let work = tempfile::tempdir().unwrap();
    let (kernel, initrd) = extract_boot(&g, work.path());
    let image = Initramfs::parse("initrd", std::fs::read(&initrd).unwrap(), Limits::default()).unwrap();
    let main = image.main_segment();
    // zstd (initramfs-tools) and gzip (dracut) images written by the library already boot to a
    // login prompt in guest_boot_vmware/guest_boot_dracut; here the other three.
    let codecs = [Compression::Xz, Compression::Lzma, Compression::Lz4Legacy];
    // one at a time: TCG guests in parallel starve each other on small machines
    {
        for c in codecs {
            let (kernel, image, work) = (&kernel, &image, work.path());
            let disk = g.disk();
            {
                let body = image.rewrite_segment_with(main, &image.segments[main].entries, Some(c)).unwrap();
                let body = Initramfs::parse("body", body, Limits::default()).unwrap();
                let full = body.prepend_stored(&microcode_prefix()).unwrap();
                // our own reader sees both segments
                let back = Initramfs::parse("full", full.clone(), Limits::default()).unwrap();
                assert_eq!(back.segments.len(), 2, "{c:?}");
                assert_eq!(back.segments[0].compression, None);
                assert_eq!(back.segments[1].compression, Some(c));
                assert_eq!(back.segments[1].entries, image.segments[main].entries);
                let dir = work.join(c.name());
                std::fs::create_dir_all(&dir).unwrap();
                let path = dir.join("initrd.img");
                std::fs::write(&path, &full).unwrap();
                let b = boot(
                    kernel,
                    &path,
                    &disk,
                    "root=/dev/vda1 ro console=ttyS0",
                    &["Loading, please wait", "Initramfs unpacking failed", "Kernel panic"],
                    Duration::from_secs(240),
                    &dir,
                );
                assert_eq!(b.hit.as_deref(), Some("Loading, please wait"), "{c:?}:\n{}", tail(&b.log, 30));
                assert!(!b.log.contains("Initramfs unpacking failed"), "{c:?}");
                eprintln!("{c:?}: init ran after {:.1?}", b.elapsed);
            }
        }
    }
}
