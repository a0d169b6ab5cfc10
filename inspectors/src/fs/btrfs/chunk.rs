//! Logical → physical mapping: chunk items from the superblock's `sys_chunk_array` and the
//! chunk tree. Single-device filesystems with SINGLE or DUP profiles only.

use crate::bytes::{field, u16le, u64le};

/// `BTRFS_CHUNK_ITEM_KEY`.
pub const CHUNK_ITEM: u8 = 228;
/// Chunk items hold at most this many stripes (bounds a corrupt `num_stripes`).
const MAX_STRIPES: usize = 256;
/// Most chunks kept (a 64 TiB filesystem of 1 GiB chunks has 65536).
const MAX_CHUNKS: usize = 1 << 20;

/// Block-group profile bits and their names (`BTRFS_BLOCK_GROUP_*`); DUP is readable.
const PROFILES: [(u64, &str); 8] = [
    (1 << 3, "RAID0"),
    (1 << 4, "RAID1"),
    (1 << 6, "RAID10"),
    (1 << 7, "RAID5"),
    (1 << 8, "RAID6"),
    (1 << 9, "RAID1C3"),
    (1 << 10, "RAID1C4"),
    (1 << 5, "DUP"),
];
const DUP: u64 = 1 << 5;

/// One chunk: `length` logical bytes at `logical`, stored at `physical` on this device.
#[derive(Clone, Copy, Debug)]
pub struct Chunk {
    pub logical: u64,
    pub length: u64,
    pub physical: u64,
}

/// The chunks of a filesystem, sorted by logical address.
#[derive(Debug, Default)]
pub struct ChunkMap {
    chunks: Vec<Chunk>,
}

impl ChunkMap {
    /// Adds the chunk item `data` at logical address `logical`; the error names the field.
    pub fn add(&mut self, logical: u64, data: &[u8], devid: u64) -> Result<(), String> {
        let c = parse(logical, data, devid)?;
        if self.chunks.len() >= MAX_CHUNKS {
            return Err(format!("more than {MAX_CHUNKS} chunks"));
        }
        match self.chunks.binary_search_by_key(&c.logical, |x| x.logical) {
            Ok(_) => {}
            Err(i) => self.chunks.insert(i, c),
        }
        Ok(())
    }

    /// Adds every chunk of a `sys_chunk_array` (keys and items back to back).
    pub fn add_sys_array(&mut self, arr: &[u8], devid: u64) -> Result<(), String> {
        let mut p = 0;
        while p < arr.len() {
            let ty = *arr.get(p + 8).unwrap_or(&0);
            let logical = u64le(arr, p + 9);
            if ty != CHUNK_ITEM {
                return Err(format!("sys_chunk_array key type {ty} at byte {p} is not a chunk item"));
            }
            let item = arr.get(p + 17..).unwrap_or_default();
            let n = usize::from(u16le(item, 44));
            let len = 48 + 32 * n;
            if n == 0 || item.len() < len {
                return Err(format!("sys_chunk_array chunk at byte {p} has num_stripes {n} past the array's end"));
            }
            self.add(logical, &item[..len], devid)?;
            p += 17 + len;
        }
        Ok(())
    }

    /// The physical byte address of `logical` and how many bytes follow it in its chunk.
    pub fn map(&self, logical: u64) -> Option<(u64, u64)> {
        let i = self.chunks.partition_point(|c| c.logical <= logical).checked_sub(1)?;
        let c = self.chunks.get(i)?;
        let off = logical - c.logical;
        (off < c.length).then(|| (c.physical.saturating_add(off), c.length - off))
    }
}

fn parse(logical: u64, d: &[u8], devid: u64) -> Result<Chunk, String> {
    let length = u64le(d, 0);
    let flags = u64le(d, 24);
    let n = usize::from(u16le(d, 44));
    if n == 0 || n > MAX_STRIPES || d.len() < 48 + 32 * n {
        return Err(format!("chunk {logical} num_stripes {n} is invalid for a {}-byte item", d.len()));
    }
    if length == 0 || logical.checked_add(length).is_none() {
        return Err(format!("chunk {logical} length {length} is invalid"));
    }
    if let Some((_, name)) = PROFILES.iter().find(|(b, _)| flags & b != 0 && *b != DUP) {
        return Err(format!("chunk {logical} has profile {name}: multi-device profiles are not supported"));
    }
    let stripe = field(d, 48, 32).unwrap_or_default();
    let sdev = u64le(stripe, 0);
    if sdev != devid {
        return Err(format!("chunk {logical} stripe is on device {sdev}, not this device {devid}"));
    }
    Ok(Chunk { logical, length, physical: u64le(stripe, 8) })
}
