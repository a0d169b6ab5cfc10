//! Corrupted ext2/3/4 metadata must give errors, never panics or unbounded allocations.
//! The input selects one of the small committed images (testdata/fs/) and overwrites bytes
//! in its first 64 KiB (superblock, group descriptors, bitmaps, inode table, directories),
//! then the filesystem is opened, walked, read, and edited.
#![no_main]

use ferry_converters::fs::ext4::{Ext4, FileKind};
use ferry_converters::fs::Volume;
use libfuzzer_sys::fuzz_target;
use std::sync::Mutex;

static NOCSUM: &[u8] = include_bytes!("../../../testdata/fs/ext4-nocsum.img");
static CSUM: &[u8] = include_bytes!("../../../testdata/fs/ext4-csum.img");
static EXT2: &[u8] = include_bytes!("../../../testdata/fs/ext2.img");

#[path = "../common/mem_device.rs"]
mod mem_device;
use mem_device::Mem;

fn walk(fs: &Ext4, path: &str, depth: u32, budget: &mut u32) {
    let Ok(entries) = fs.read_dir(path) else { return };
    for e in entries {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let child = format!("{}/{}", path.trim_end_matches('/'), String::from_utf8_lossy(&e.name));
        let _ = fs.symlink_metadata(&child);
        match e.kind {
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
    let Some((&sel, muts)) = data.split_first() else { return };
    let base = match sel % 3 {
        0 => NOCSUM,
        1 => CSUM,
        _ => EXT2,
    };
    let mut img = base.to_vec();
    for m in muts.chunks_exact(3) {
        let off = usize::from(u16::from_le_bytes([m[0], m[1]]));
        if let Some(b) = img.get_mut(off) {
            *b = m[2];
        }
    }
    let len = img.len() as u64;
    let dev = Mem(Mutex::new(img));
    let Ok(vol) = Volume::new(&dev, 0, len, "fuzz") else { return };
    let Ok(mut fs) = Ext4::open(vol, "fuzz") else { return };
    let mut budget = 300;
    walk(&fs, "/", 0, &mut budget);
    let _ = fs.write_file("/etc/fstab", &[b'x'; 3000], 0o644, 0, 0);
    let _ = fs.write_file("/many/added_entry_with_a_long_name", b"new", 0o644, 0, 0);
    // Enough additions to split htree leaves and index blocks.
    for i in 0..40 {
        let _ = fs.create_file(&format!("/many/added_{i}_{}", "n".repeat(200)), b"", 0o644, 0, 0);
    }
    let _ = fs.dir_index_levels("/many");
    let _ = fs.mkdir("/newdir", 0o755, 0, 0);
    let _ = fs.symlink("/newdir/link", "/etc/fstab", 0, 0);
    let _ = fs.unlink("/etc/hostname");
    let _ = fs.unlink("/many/entry_number_7");
    let _ = fs.rename("/many/entry_number_5", "/etc/moved");
    let _ = fs.rename("/var/lib", "/newdir/lib");
    let _ = fs.rmdir("/usr/bin");
    let _ = fs.set_mode("/etc/fstab", 0o600);
    let _ = fs.write_file("/var/lib/data", b"short", 0o644, 0, 0);
    let mut budget = 300;
    walk(&fs, "/", 0, &mut budget);
});
