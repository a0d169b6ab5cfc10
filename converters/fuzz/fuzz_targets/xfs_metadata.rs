//! Corrupted XFS metadata must give errors, never panics or unbounded allocations. The input
//! overwrites bytes of the small committed v5 image (testdata/fs/xfs-v5.img.gz: superblock,
//! AG headers, inodes, shortform/block/leaf directories, symlinks), each 5-byte chunk being a
//! little-endian offset into the metadata-dense first 2 MiB of either AG and a byte; then the
//! filesystem is opened, walked, read, edited in place, and edited through the allocator:
//! files grown, shrunk, created, linked, renamed and removed in shortform, block and leaf
//! directories (free-space, inobt/finobt and directory writes on corrupted trees).
//! The input's length modulo 5 picks the image: 0, that one; 1 or 2,
//! testdata/fs/xfs-reflink.img.gz (files the kernel shared 2 and 3 ways, partly
//! overwritten, multi-extent), whose sharers are then also unlinked, rewritten and renamed:
//! refcountbt-driven frees and the tree's rebuild on corrupted reference counts, AGFs and
//! inodes; 3 or 4, the first tree made with `-m rmapbt=1,reflink=1`
//! (testdata/fs/xfs-v5-rmapbt.img.gz): every write also maps and unmaps in a possibly
//! corrupted rmapbt.
#![no_main]

use ferry_converters::fs::xfs::{FileKind, Xfs};
use ferry_converters::fs::Volume;
use ferry_converters::initramfs::Compression;
use ferry_formats::disk::{BlockDevice, WritableDevice};
use libfuzzer_sys::fuzz_target;
#[path = "../common/paged_device.rs"]
mod paged_device;
use paged_device::Paged;
use std::sync::OnceLock;

static GZ: &[u8] = include_bytes!("../../../testdata/fs/xfs-v5.img.gz");
static GZ_REFLINK: &[u8] = include_bytes!("../../../testdata/fs/xfs-reflink.img.gz");
static GZ_RMAPBT: &[u8] = include_bytes!("../../../testdata/fs/xfs-v5-rmapbt.img.gz");

/// The seed images: 0 plain, 1 reflink (kernel-made sharers), 2 rmapbt.
fn base(which: usize) -> &'static [u8] {
    static IMG: OnceLock<Vec<u8>> = OnceLock::new();
    static REFLINK: OnceLock<Vec<u8>> = OnceLock::new();
    static IMG_RMAPBT: OnceLock<Vec<u8>> = OnceLock::new();
    if which == 1 {
        REFLINK.get_or_init(|| Compression::Gzip.decompress("xfs-reflink.img.gz", GZ_REFLINK, 64 << 20).expect("seed image").0)
    } else if which == 2 {
        IMG_RMAPBT.get_or_init(|| Compression::Gzip.decompress("xfs-v5-rmapbt.img.gz", GZ_RMAPBT, 64 << 20).expect("seed image").0)
    } else {
        IMG.get_or_init(|| Compression::Gzip.decompress("xfs-v5.img.gz", GZ, 64 << 20).expect("seed image").0)
    }
}

fn walk(fs: &Xfs, path: &str, depth: u32, budget: &mut u32) {
    let Ok(entries) = fs.read_dir(path) else { return };
    for e in entries {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let child = format!("{}/{}", path.trim_end_matches('/'), String::from_utf8_lossy(&e.name));
        let Ok(md) = fs.symlink_metadata(&child) else { continue };
        match md.kind {
            FileKind::Directory if depth < 4 => walk(fs, &child, depth + 1, budget),
            FileKind::Regular => {
                let _ = fs.read_file(&child, 1 << 16);
            }
            FileKind::Symlink => {
                let _ = fs.read_link(&child);
                let _ = fs.metadata(&child);
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let which = [0, 1, 1, 2, 2][data.len() % 5];
    let reflink = which == 1;
    let dev = Paged::new(base(which));
    let half = dev.size() / 2;
    for m in data.chunks_exact(5) {
        let off = u64::from(u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
        // Either AG's first 2 MiB: headers, btree roots, inodes, directory blocks.
        let at = (off & ((2 << 20) - 1)) + if off & (1 << 31) != 0 { half } else { 0 };
        let _ = dev.write_at(&m[4..5], at);
    }
    let len = dev.size();
    let Ok(vol) = Volume::new(&dev, 0, len, "fuzz") else { return };
    let Ok(mut fs) = Xfs::open(vol, "fuzz") else { return };
    let mut budget = 400;
    walk(&fs, "/", 0, &mut budget);
    let _ = fs.write_file("/etc/fstab", b"UUID=x / xfs defaults 0 0\n");
    let _ = fs.write_file("/var/data", &[b'y'; 30000]);
    let _ = fs.set_mode("/many/entry_number_7", 0o600);
    let _ = fs.set_owner("/block", 1, 2);
    let _ = fs.set_times("/bin", 1, 2);
    let _ = fs.write_file("/etc/hostname", &[b'h'; 9000]);
    let _ = fs.write_file("/var/data", b"short");
    let _ = fs.create_file("/etc/new", &[b'n'; 5000], 0o644, 0, 0);
    let _ = fs.create_file("/block/new_entry", b"x", 0o644, 0, 0);
    let _ = fs.create_file("/many/new_entry", b"y", 0o644, 0, 0);
    let _ = fs.mkdir("/var/dir", 0o755, 0, 0);
    let _ = fs.symlink("/var/dir/link", b"../../etc/fstab", 0, 0);
    let _ = fs.symlink("/var/remote", &[b'r'; 600], 0, 0);
    let _ = fs.unlink("/many/entry_number_9");
    let _ = fs.unlink("/block/entry_3");
    let _ = fs.rename("/block/entry_4", "/var/dir/moved");
    let _ = fs.rename("/many/entry_number_10", "/many/renamed");
    let _ = fs.rename("/var/dir", "/etc/dir");
    if reflink {
        let _ = fs.unlink("/r/a");
        let _ = fs.write_file("/r/m", &[b'm'; 20000]);
        let _ = fs.write_file("/r/c", b"c");
        let _ = fs.rename("/r/b", "/r/m2");
        let _ = fs.unlink("/r/c");
        let _ = fs.write_file("/r/m2", &[b'n'; 9000]);
    }
    let mut budget = 400;
    walk(&fs, "/", 0, &mut budget);
});
