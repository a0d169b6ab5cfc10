//! Corrupted btrfs metadata must give errors, never panics or unbounded allocations, in the
//! btrfs writer (Ferry's code and the btrfs-transaction crate under it). The input overwrites
//! bytes of the small committed image (testdata/fs/btrfs.img.gz: `@` default and `@home`
//! subvolumes, inline, regular and zstd files, a 600-entry directory, symlinks, an xattr):
//! each 5-byte chunk is a little-endian u32 picking one of the image's tree blocks (found
//! once by their fsid) and a byte in it, and a byte. Every tree block touched then gets its
//! checksum recomputed (crc32c), and so does the superblock, so corruption gets past checksum
//! verification into the parsers. Then the filesystem is opened, walked and read, edited
//! (rewrite, create, grow, unlink, rename, mkdir, symlink, chmod, chown, xattr) and
//! committed. A panic inside btrfs-transaction or btrfs-disk is contained by the writer
//! (`catch_unwind` → one-line error), so this target's panic hook lets those unwind to it
//! (libFuzzer's hook aborts on any panic) and aborts on every other one.
#![no_main]

use ferry_converters::fs::btrfs::Btrfs;
use ferry_converters::fs::Volume;
use ferry_converters::initramfs::Compression;
use ferry_formats::disk::{BlockDevice, WritableDevice};
use libfuzzer_sys::fuzz_target;
#[path = "../common/paged_device.rs"]
mod paged_device;
use paged_device::Paged;
use std::collections::BTreeSet;
use std::sync::{Once, OnceLock};

static GZ: &[u8] = include_bytes!("../../../testdata/fs/btrfs.img.gz");
const NODE: usize = 16384;
const SUPER: u64 = 64 << 10;

/// The seed image and the physical offsets of its tree blocks.
fn base() -> &'static (Vec<u8>, Vec<u64>) {
    static IMG: OnceLock<(Vec<u8>, Vec<u64>)> = OnceLock::new();
    IMG.get_or_init(|| {
        let img = Compression::Gzip.decompress("btrfs.img.gz", GZ, 256 << 20).expect("seed image").0;
        let fsid = img[SUPER as usize + 32..SUPER as usize + 48].to_vec();
        let blocks = (0..img.len() / NODE).map(|i| (i * NODE) as u64).filter(|&o| o != SUPER && img[o as usize + 32..o as usize + 48] == fsid[..]).collect();
        (img, blocks)
    })
}

/// Recomputes the crc32c of the block (tree block or superblock) at `at`.
fn rechecksum(dev: &Paged, at: u64, len: usize) {
    let mut b = vec![0u8; len];
    if dev.read_at(&mut b, at).is_ok() {
        let c = crc32c::crc32c(&b[32..]);
        let _ = dev.write_at(&c.to_le_bytes(), at);
    }
}

fn walk(fs: &Btrfs, path: &str, depth: u32, budget: &mut u32) {
    let Ok(names) = fs.read_dir(path) else { return };
    for n in names {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let child = format!("{}/{}", path.trim_end_matches('/'), String::from_utf8_lossy(&n));
        let Ok(md) = fs.symlink_metadata(&child) else { continue };
        match md.mode & 0o170_000 {
            0o040_000 if depth < 4 => walk(fs, &child, depth + 1, budget),
            0o100_000 => {
                let _ = fs.read_file(&child, 1 << 20);
                let _ = fs.get_xattr(&child, "security.selinux");
            }
            0o120_000 => {
                let _ = fs.read_link(&child);
            }
            _ => {}
        }
    }
}

/// libFuzzer's panic hook, except for panics in the crates the writer contains.
fn contain_crate_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_crate = info.location().is_some_and(|l| l.file().contains("btrfs-transaction") || l.file().contains("btrfs-disk"));
            if !in_crate {
                prev(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    contain_crate_panics();
    let (_, blocks) = base();
    if blocks.is_empty() {
        return;
    }
    let dev = Paged::new(&base().0);
    let mut touched = BTreeSet::new();
    for m in data.chunks_exact(5) {
        let v = u32::from_le_bytes([m[0], m[1], m[2], m[3]]);
        let (block, byte) = if v & (1 << 31) != 0 {
            // The superblock's first 1 KiB (roots, sizes, flags, the sys_chunk_array start).
            (SUPER, u64::from(v) % 1024 + 32)
        } else {
            (blocks[(v >> 12) as usize % blocks.len()], u64::from(v) % (NODE as u64 - 32) + 32)
        };
        let _ = dev.write_at(&m[4..5], block + byte);
        touched.insert(block);
    }
    for &b in &touched {
        rechecksum(&dev, b, if b == SUPER { 4096 } else { NODE });
    }
    let len = dev.size();
    let Ok(vol) = Volume::new(&dev, 0, len, "fuzz") else { return };
    let Ok(mut fs) = Btrfs::open(vol, "fuzz") else { return };
    let mut budget = 300;
    walk(&fs, "/", 0, &mut budget);
    let _ = fs.write_file("/etc/fstab", b"UUID=y / btrfs defaults 0 0\n");
    let _ = fs.write_file("/etc/hostname", &[b'h'; 9000]);
    let _ = fs.create_file("/etc/new", &[b'n'; 5000], 0o644, 0, 0);
    let _ = fs.create_file("/many/new", b"x", 0o644, 0, 0);
    let _ = fs.mkdir("/etc/dir", 0o755, 0, 0);
    let _ = fs.symlink("/etc/dir/link", b"../fstab", 0, 0);
    let _ = fs.unlink("/many/f9");
    let _ = fs.unlink("/boot/vmlinuz");
    let _ = fs.rename("/many/f10", "/etc/dir/moved");
    let _ = fs.rename("/many/f11", "/many/f12");
    let _ = fs.set_mode("/etc/fstab", 0o600);
    let _ = fs.set_owner("/boot/config", 1, 2);
    let _ = fs.set_xattr("/etc/fstab", "security.selinux", b"system_u:object_r:etc_t:s0\0");
    let _ = fs.write_file("/boot/config", b"short");
    let mut budget = 300;
    walk(&fs, "/", 0, &mut budget);
    let mut home = fs.another_view("fuzz @home");
    if home.view_path("@home").is_ok() {
        let _ = home.write_file("/user/notes", b"edited");
    }
    let _ = home.commit();
    let _ = fs.commit();
});
