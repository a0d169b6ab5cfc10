//! The btrfs superblock (the primary copy at 64 KiB) and the four checksum algorithms.

use crate::bytes::{array, field, u16le, u32le, u64le};
use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};

/// Byte offset of the primary superblock.
pub const SUPER_OFFSET: u64 = 0x10000;
/// Size of the superblock, all of it checksummed after the 32-byte checksum field.
pub const SUPER_SIZE: usize = 4096;
/// Size of the checksum field at the start of the superblock and of every tree block.
pub const CSUM_FIELD: usize = 32;

/// `BTRFS_FEATURE_INCOMPAT_*` bits and their names as `btrfs inspect-internal dump-super`
/// prints them (lowercase).
pub const INCOMPAT_NAMES: [(u64, &str); 14] = [
    (1 << 0, "mixed_backref"),
    (1 << 1, "default_subvol"),
    (1 << 2, "mixed_groups"),
    (1 << 3, "compress_lzo"),
    (1 << 4, "compress_zstd"),
    (1 << 5, "big_metadata"),
    (1 << 6, "extended_iref"),
    (1 << 7, "raid56"),
    (1 << 8, "skinny_metadata"),
    (1 << 9, "no_holes"),
    (1 << 10, "metadata_uuid"),
    (1 << 11, "raid1c34"),
    (1 << 12, "zoned"),
    (1 << 13, "extent_tree_v2"),
];
/// `BTRFS_FEATURE_COMPAT_RO_*` bits.
pub const COMPAT_RO_NAMES: [(u64, &str); 4] =
    [(1 << 0, "free_space_tree"), (1 << 1, "free_space_tree_valid"), (1 << 2, "verity"), (1 << 3, "block_group_tree")];
const INCOMPAT_METADATA_UUID: u64 = 1 << 10;

/// Checksum algorithm of the filesystem (`csum_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsumType {
    Crc32c,
    Xxhash64,
    Sha256,
    Blake2b,
}

impl CsumType {
    fn from_raw(v: u16) -> Option<Self> {
        Some(match v {
            0 => CsumType::Crc32c,
            1 => CsumType::Xxhash64,
            2 => CsumType::Sha256,
            3 => CsumType::Blake2b,
            _ => return None,
        })
    }

    /// The name `mkfs.btrfs --csum` takes.
    pub fn name(self) -> &'static str {
        match self {
            CsumType::Crc32c => "crc32c",
            CsumType::Xxhash64 => "xxhash64",
            CsumType::Sha256 => "sha256",
            CsumType::Blake2b => "blake2b",
        }
    }

    /// Bytes of the checksum stored (the rest of the 32-byte field is zero).
    pub fn size(self) -> usize {
        match self {
            CsumType::Crc32c => 4,
            CsumType::Xxhash64 => 8,
            CsumType::Sha256 | CsumType::Blake2b => 32,
        }
    }

    /// The checksum of `data`, as stored on disk (little-endian for the integer ones).
    pub fn compute(self, data: &[u8]) -> Vec<u8> {
        match self {
            CsumType::Crc32c => crc32c::crc32c(data).to_le_bytes().to_vec(),
            CsumType::Xxhash64 => twox_hash::XxHash64::oneshot(0, data).to_le_bytes().to_vec(),
            CsumType::Sha256 => sha2::Sha256::digest(data).to_vec(),
            CsumType::Blake2b => Blake2b::<U32>::digest(data).to_vec(),
        }
    }

    /// Checks the checksum field at the start of `block` against the rest of it; on a
    /// mismatch, returns the stored and computed values in hex.
    pub fn verify(self, block: &[u8]) -> Result<(), (String, String)> {
        let n = self.size();
        let stored = field(block, 0, n).unwrap_or_default();
        let computed = self.compute(block.get(CSUM_FIELD..).unwrap_or_default());
        if stored == computed.as_slice() {
            return Ok(());
        }
        Err((hex(stored), hex(&computed)))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The superblock fields the reader uses.
#[derive(Clone, Debug)]
pub struct Super {
    /// The UUID tree blocks carry (`metadata_uuid` when that feature is set, else `fsid`).
    pub meta_uuid: [u8; 16],
    pub root: u64,
    pub chunk_root: u64,
    pub root_dir_objectid: u64,
    pub num_devices: u64,
    pub sectorsize: u32,
    pub nodesize: u32,
    pub compat_ro: u64,
    pub incompat: u64,
    pub csum: CsumType,
    pub root_level: u8,
    pub chunk_root_level: u8,
    /// This device's id (`dev_item.devid`).
    pub devid: u64,
    /// The bootstrap chunk items (`sys_chunk_array`, `sys_chunk_array_size` bytes).
    pub sys_chunks: Vec<u8>,
}

impl Super {
    /// Parses and checks a 4096-byte superblock; the error names the field and its value.
    pub fn parse(b: &[u8]) -> Result<Self, String> {
        if b.len() < SUPER_SIZE {
            return Err(format!("superblock is {} bytes, not {SUPER_SIZE}", b.len()));
        }
        if field(b, 0x40, 8) != Some(b"_BHRfS_M") {
            return Err(format!("superblock magic {:#018x} is not _BHRfS_M", u64le(b, 0x40)));
        }
        let raw = u16le(b, 0xc4);
        let csum = CsumType::from_raw(raw).ok_or_else(|| format!("superblock csum_type {raw} is unknown"))?;
        if let Err((stored, computed)) = csum.verify(field(b, 0, SUPER_SIZE).unwrap_or_default()) {
            return Err(format!("superblock {} checksum {stored} does not match {computed}", csum.name()));
        }
        let sectorsize = u32le(b, 0x90);
        let nodesize = u32le(b, 0x94);
        if !(4096..=65536).contains(&sectorsize) || !sectorsize.is_power_of_two() {
            return Err(format!("superblock sectorsize {sectorsize} is invalid"));
        }
        if !(4096..=65536).contains(&nodesize) || !nodesize.is_power_of_two() || nodesize < sectorsize {
            return Err(format!("superblock nodesize {nodesize} is invalid"));
        }
        let sys_size = u32le(b, 0xa0);
        if sys_size > 2048 {
            return Err(format!("superblock sys_chunk_array_size {sys_size} exceeds 2048"));
        }
        let (root_level, chunk_root_level) = (b[0xc6], b[0xc7]);
        if root_level >= 8 || chunk_root_level >= 8 {
            return Err(format!("superblock root_level {root_level} / chunk_root_level {chunk_root_level} exceeds 7"));
        }
        let incompat = u64le(b, 0xbc);
        let fsid = array(b, 0x20);
        let meta_uuid = if incompat & INCOMPAT_METADATA_UUID != 0 { array(b, 0x23b) } else { fsid };
        Ok(Super {
            meta_uuid,
            root: u64le(b, 0x50),
            chunk_root: u64le(b, 0x58),
            root_dir_objectid: u64le(b, 0x80),
            num_devices: u64le(b, 0x88),
            sectorsize,
            nodesize,
            compat_ro: u64le(b, 0xb4),
            incompat,
            csum,
            root_level,
            chunk_root_level,
            devid: u64le(b, 0xc9),
            sys_chunks: field(b, 0x32b, sys_size as usize).unwrap_or_default().to_vec(),
        })
    }

    /// Feature names set in `incompat_flags` and `compat_ro_flags`.
    pub fn features(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> =
            INCOMPAT_NAMES.iter().filter(|(b, _)| self.incompat & b != 0).map(|(_, n)| *n).collect();
        v.extend(COMPAT_RO_NAMES.iter().filter(|(b, _)| self.compat_ro & b != 0).map(|(_, n)| *n));
        v
    }
}
