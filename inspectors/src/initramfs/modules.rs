//! Which virtio drivers an initramfs image holds: module files (`.ko`, `.ko.xz`, `.ko.zst`,
//! `.ko.gz`) anywhere in the unpacked root, and the drivers its `modules.builtin` lists as
//! built into the kernel.

use serde::{Deserialize, Serialize};

use super::image::Initramfs;
use super::{InitramfsError, Limits};

/// The virtio drivers looked for, in the order they are reported.
pub const VIRTIO_DRIVERS: [&str; 10] = [
    "virtio_pci",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_blk",
    "virtio_scsi",
    "virtio_net",
    "virtio_console",
    "virtio_rng",
    "virtio_balloon",
    "virtio_ring",
];

const MODULE_SUFFIXES: [&str; 4] = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"];

/// The virtio drivers of one initramfs image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InitrdDrivers {
    /// Guest path of the image.
    pub path: String,
    /// Each segment's compression in image order (`stored` for a plain cpio archive).
    pub segments: Vec<String>,
    /// Drivers of [`VIRTIO_DRIVERS`] present as module files.
    pub modules: Vec<String>,
    /// Drivers of [`VIRTIO_DRIVERS`] that the image's `modules.builtin` lists.
    pub builtin: Vec<String>,
    /// Drivers the kernel needs to find a virtio-blk disk (virtio_pci and its library
    /// modules, virtio_blk) that it has as modules but the image lacks (filled by the caller,
    /// which knows the kernel).
    pub missing: Vec<String>,
    /// Why the image could not be read (then the lists are empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl InitrdDrivers {
    /// An image that could not be read.
    pub fn unreadable(path: &str, error: impl std::fmt::Display) -> InitrdDrivers {
        InitrdDrivers {
            path: path.to_string(),
            error: Some(error.to_string()),
            ..InitrdDrivers::default()
        }
    }

    /// Whether the image holds `driver` as a module or lists it as built in.
    pub fn holds(&self, driver: &str) -> bool {
        self.modules
            .iter()
            .chain(&self.builtin)
            .any(|m| m == driver)
    }
}

/// The module name of a path: `lib/modules/V/kernel/drivers/block/virtio_blk.ko.zst` ->
/// `virtio_blk` (dashes as underscores); `None` when it is not a module file.
fn module_name(path: &str) -> Option<String> {
    let file = path.rsplit('/').next()?;
    let stem = MODULE_SUFFIXES
        .iter()
        .rev()
        .find_map(|s| file.strip_suffix(s))?;
    Some(stem.replace('-', "_"))
}

/// Parses the image `raw` (named `path` in errors) within `limits` and lists its virtio
/// drivers.
pub fn virtio_drivers(
    path: &str,
    raw: Vec<u8>,
    limits: Limits,
) -> Result<InitrdDrivers, InitramfsError> {
    let image = Initramfs::parse(path, raw, limits)?;
    let mut modules = Vec::new();
    let mut builtin = Vec::new();
    for e in image.segments.iter().flat_map(|s| &s.entries) {
        if !e.is_file() && !e.is_symlink() {
            continue;
        }
        let p = e.path();
        if let Some(m) = module_name(&p) {
            if VIRTIO_DRIVERS.contains(&m.as_str()) && !modules.contains(&m) {
                modules.push(m);
            }
        } else if p.ends_with("/modules.builtin") && p.contains("lib/modules/") {
            for line in String::from_utf8_lossy(image.data(e)).lines() {
                let Some(m) = module_name(line.trim()) else {
                    continue;
                };
                if VIRTIO_DRIVERS.contains(&m.as_str()) && !builtin.contains(&m) {
                    builtin.push(m);
                }
            }
        }
    }
    let order = |v: &mut Vec<String>| v.sort_by_key(|m| VIRTIO_DRIVERS.iter().position(|d| d == m));
    order(&mut modules);
    order(&mut builtin);
    Ok(InitrdDrivers {
        path: path.to_string(),
        segments: image
            .segments
            .iter()
            .map(|s| s.compression.map_or("stored", |c| c.name()).to_string())
            .collect(),
        modules,
        builtin,
        missing: Vec::new(),
        error: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::cpio::{write_archive, Entry};
    use super::super::Compression;
    use super::*;

    fn archive(entries: &[Entry]) -> Vec<u8> {
        let mut out = Vec::new();
        write_archive(&mut out, entries).unwrap();
        out
    }

    #[test]
    fn lists_modules_of_every_suffix_and_builtin_behind_a_microcode_prefix() {
        let mut raw = archive(&[Entry::file(
            "kernel/x86/microcode/GenuineIntel.bin",
            0o644,
            vec![1; 10],
        )]);
        while raw.len() % 4 != 0 {
            raw.push(0);
        }
        let main = archive(&[
            Entry::dir("usr/lib/modules/6.1.0-9-amd64", 0o755),
            Entry::file(
                "usr/lib/modules/6.1.0-9-amd64/kernel/drivers/block/virtio_blk.ko.zst",
                0o644,
                vec![2; 5],
            ),
            Entry::file(
                "usr/lib/modules/6.1.0-9-amd64/kernel/drivers/net/virtio_net.ko.xz",
                0o644,
                vec![3; 5],
            ),
            Entry::file(
                "lib/modules/6.1.0-9-amd64/kernel/drivers/virtio/virtio_pci.ko",
                0o644,
                vec![4; 5],
            ),
            Entry::file(
                "lib/modules/6.1.0-9-amd64/kernel/drivers/scsi/virtio-scsi.ko.gz",
                0o644,
                vec![5; 5],
            ),
            Entry::file(
                "lib/modules/6.1.0-9-amd64/kernel/fs/ext4/ext4.ko",
                0o644,
                vec![6; 5],
            ),
            Entry::file(
                "lib/modules/6.1.0-9-amd64/modules.builtin",
                0o644,
                b"kernel/drivers/virtio/virtio_ring.ko\nkernel/drivers/char/virtio_console.ko\n"
                    .to_vec(),
            ),
        ]);
        for c in [
            Compression::Gzip,
            Compression::Zstd,
            Compression::Xz,
            Compression::Lz4Legacy,
        ] {
            let mut image = raw.clone();
            image.extend_from_slice(&c.compress(&main).unwrap());
            let d = virtio_drivers("/boot/initrd.img", image, Limits::default()).unwrap();
            assert_eq!(d.segments, ["stored", c.name()]);
            assert_eq!(
                d.modules,
                ["virtio_pci", "virtio_blk", "virtio_scsi", "virtio_net"],
                "{c:?}"
            );
            assert_eq!(d.builtin, ["virtio_console", "virtio_ring"]);
            assert!(d.holds("virtio_console") && !d.holds("virtio_rng"));
        }
    }

    #[test]
    fn images_made_by_gnu_cpio_gzip_and_zstd() {
        // The committed fuzz seeds: GNU cpio -H newc archives, a microcode prefix then gzip -9n,
        // and zstd (testdata/inspect/fuzz-seeds/initramfs_virtio/).
        let gz = include_bytes!(
            "../../../testdata/inspect/fuzz-seeds/initramfs_virtio/microcode-then-gzip.img"
        );
        let zst = include_bytes!("../../../testdata/inspect/fuzz-seeds/initramfs_virtio/zstd.img");
        for (raw, segments) in [
            (&gz[..], &["stored", "gzip"][..]),
            (&zst[..], &["zstd"][..]),
        ] {
            let d = virtio_drivers("seed", raw.to_vec(), Limits::default()).unwrap();
            assert_eq!(d.segments, segments);
            assert_eq!(d.modules, ["virtio_pci", "virtio_blk"]);
            assert_eq!(d.builtin, ["virtio_ring"]);
        }
    }

    #[test]
    fn bad_images_are_one_line_errors() {
        let e = virtio_drivers(
            "/boot/initrd.img-x",
            b"initrd\n".to_vec(),
            Limits::default(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/boot/initrd.img-x at offset 0: invalid segment magic 696e6974: neither cpio nor a known compression"
        );
        let big = Compression::Gzip.compress(&vec![0u8; 1 << 20]).unwrap();
        let small = Limits {
            max_segment: 1000,
            max_total: 1000,
        };
        let e = virtio_drivers("i", big, small).unwrap_err().to_string();
        assert!(e.contains("decompressed size > 1000"), "{e}");
        assert_eq!(e.lines().count(), 1);
    }
}
