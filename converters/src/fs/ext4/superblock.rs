//! The superblock: parsing with validation, the feature policy, and write-back.

use super::bytes::{crc32c_raw, le16, le32, lohi, set32, set_lohi};
use crate::fs::FsError;

pub const SB_OFFSET: u64 = 1024;
pub const SB_SIZE: usize = 1024;

pub const COMPAT_HAS_JOURNAL: u32 = 0x4;
pub const COMPAT_DIR_INDEX: u32 = 0x20;
pub const COMPAT_SPARSE_SUPER2: u32 = 0x200;

pub const INCOMPAT_FILETYPE: u32 = 0x2;
pub const INCOMPAT_RECOVER: u32 = 0x4;
pub const INCOMPAT_META_BG: u32 = 0x10;
pub const INCOMPAT_EXTENTS: u32 = 0x40;
pub const INCOMPAT_64BIT: u32 = 0x80;
pub const INCOMPAT_FLEX_BG: u32 = 0x200;
pub const INCOMPAT_CSUM_SEED: u32 = 0x2000;
pub const INCOMPAT_LARGEDIR: u32 = 0x4000;
pub const INCOMPAT_ENCRYPT: u32 = 0x10000;
pub const INCOMPAT_CASEFOLD: u32 = 0x20000;

pub const RO_SPARSE_SUPER: u32 = 0x1;
pub const RO_LARGE_FILE: u32 = 0x2;
pub const RO_BTREE_DIR: u32 = 0x4;
pub const RO_HUGE_FILE: u32 = 0x8;
pub const RO_GDT_CSUM: u32 = 0x10;
pub const RO_DIR_NLINK: u32 = 0x20;
pub const RO_EXTRA_ISIZE: u32 = 0x40;
pub const RO_METADATA_CSUM: u32 = 0x400;
pub const RO_VERITY: u32 = 0x8000;
pub const RO_ORPHAN_PRESENT: u32 = 0x10000;

const INCOMPAT_OK: u32 = INCOMPAT_FILETYPE
    | INCOMPAT_EXTENTS
    | INCOMPAT_64BIT
    | INCOMPAT_FLEX_BG
    | INCOMPAT_CSUM_SEED
    | INCOMPAT_LARGEDIR
    | INCOMPAT_ENCRYPT
    | INCOMPAT_CASEFOLD;
const RO_OK: u32 = RO_SPARSE_SUPER
    | RO_LARGE_FILE
    | RO_BTREE_DIR
    | RO_HUGE_FILE
    | RO_GDT_CSUM
    | RO_DIR_NLINK
    | RO_EXTRA_ISIZE
    | RO_METADATA_CSUM
    | RO_VERITY;

/// The parsed superblock; `raw` keeps every byte so unknown fields survive write-back.
#[derive(Clone, Debug)]
pub struct Superblock {
    pub raw: Vec<u8>,
    pub block_size: u64,
    pub blocks_count: u64,
    pub inodes_count: u32,
    pub first_data_block: u64,
    pub blocks_per_group: u32,
    pub inodes_per_group: u32,
    pub inode_size: u32,
    pub first_ino: u32,
    pub desc_size: u32,
    pub groups: u32,
    pub reserved_gdt_blocks: u32,
    pub compat: u32,
    pub incompat: u32,
    pub ro_compat: u32,
    pub csum_seed: u32,
    pub journal_inum: u32,
    pub want_extra_isize: u16,
}

fn bad(fs: &str, field: &str, value: impl std::fmt::Display, reason: &str) -> FsError {
    FsError::Invalid { fs: fs.into(), field: field.into(), value: value.to_string(), reason: reason.into() }
}

impl Superblock {
    /// Parses and validates `raw` (1024 bytes) for a filesystem of `fs_len` bytes, refusing
    /// filesystems that must not be written (journal needing recovery, unknown features).
    pub fn parse(raw: Vec<u8>, fs_len: u64, fs: &str) -> Result<Self, FsError> {
        if raw.len() != SB_SIZE || le16(&raw, 0x38) != 0xEF53 {
            return Err(bad(fs, "superblock magic", format!("{:#x}", le16(&raw, 0x38)), "not an ext2/3/4 filesystem"));
        }
        let incompat = le32(&raw, 0x60);
        let ro_compat = le32(&raw, 0x64);
        let compat = le32(&raw, 0x5C);
        let log = le32(&raw, 0x18);
        if log > 6 {
            return Err(bad(fs, "s_log_block_size", log, "block size above 64 KiB"));
        }
        let block_size = 1024u64 << log;
        let is64 = incompat & INCOMPAT_64BIT != 0;
        let blocks_count = lohi(&raw, 0x04, 0x150, 4, is64);
        let bpg = le32(&raw, 0x20);
        let ipg = le32(&raw, 0x28);
        let inodes_count = le32(&raw, 0x00);
        let first_data_block = u64::from(le32(&raw, 0x14));
        let rev = le32(&raw, 0x4C);
        let (inode_size, first_ino) =
            if rev == 0 { (128, 11) } else { (u32::from(le16(&raw, 0x58)), le32(&raw, 0x54)) };
        let bits = block_size * 8;
        if bpg == 0 || u64::from(bpg) > bits {
            return Err(bad(fs, "s_blocks_per_group", bpg, "must be between 1 and 8 * block size"));
        }
        if ipg == 0 || u64::from(ipg) > bits {
            return Err(bad(fs, "s_inodes_per_group", ipg, "must be between 1 and 8 * block size"));
        }
        if !inode_size.is_power_of_two() || inode_size < 128 || u64::from(inode_size) > block_size {
            return Err(bad(fs, "s_inode_size", inode_size, "must be a power of two from 128 to the block size"));
        }
        if blocks_count.checked_mul(block_size).is_none_or(|b| b > fs_len) {
            return Err(bad(
                fs,
                "s_blocks_count",
                blocks_count,
                &format!("larger than the partition ({fs_len} bytes)"),
            ));
        }
        if first_data_block >= blocks_count || first_data_block > 1 {
            return Err(bad(fs, "s_first_data_block", first_data_block, "out of range"));
        }
        let groups64 = (blocks_count - first_data_block).div_ceil(u64::from(bpg));
        let groups = u32::try_from(groups64).map_err(|_| bad(fs, "group count", groups64, "too large"))?;
        if u64::from(inodes_count) != u64::from(groups) * u64::from(ipg) {
            return Err(bad(fs, "s_inodes_count", inodes_count, &format!("is not {groups} groups * {ipg} inodes")));
        }
        if first_ino < 11 || first_ino >= inodes_count {
            return Err(bad(fs, "s_first_ino", first_ino, "out of range"));
        }
        let desc_size = if is64 { u32::from(le16(&raw, 0xFE)) } else { 32 };
        if desc_size < 32
            || !desc_size.is_power_of_two()
            || u64::from(desc_size) > block_size
            || (is64 && desc_size < 64)
        {
            return Err(bad(
                fs,
                "s_desc_size",
                desc_size,
                "must be a power of two from 32 (64 with 64bit) to the block size",
            ));
        }
        let reserved_gdt_blocks = u32::from(le16(&raw, 0xCE));
        let has_csum = ro_compat & RO_METADATA_CSUM != 0;
        let csum_seed = if incompat & INCOMPAT_CSUM_SEED != 0 {
            le32(&raw, 0x270)
        } else {
            crc32c_raw(!0, raw.get(0x68..0x78).unwrap_or(&[]))
        };
        let sb = Superblock {
            block_size,
            blocks_count,
            inodes_count,
            first_data_block,
            blocks_per_group: bpg,
            inodes_per_group: ipg,
            inode_size,
            first_ino,
            desc_size,
            groups,
            reserved_gdt_blocks,
            compat,
            incompat,
            ro_compat,
            csum_seed,
            journal_inum: if compat & COMPAT_HAS_JOURNAL != 0 { le32(&raw, 0xE0) } else { 0 },
            want_extra_isize: le16(&raw, 0x15E),
            raw,
        };
        if has_csum && le32(&sb.raw, 0x3FC) != sb.checksum() {
            return Err(bad(fs, "superblock checksum", format!("{:#x}", le32(&sb.raw, 0x3FC)), "does not match"));
        }
        sb.check_writable(fs)?;
        Ok(sb)
    }

    fn check_writable(&self, fs: &str) -> Result<(), FsError> {
        if self.incompat & INCOMPAT_RECOVER != 0 {
            return Err(FsError::NeedsRecovery { fs: fs.into() });
        }
        let unclean = |reason: &str| Err(FsError::Unclean { fs: fs.into(), reason: reason.into() });
        if self.ro_compat & RO_ORPHAN_PRESENT != 0 || le32(&self.raw, 0xE8) != 0 {
            return unclean("filesystem has orphan inodes pending: shut the guest down cleanly");
        }
        let state = le16(&self.raw, 0x3A);
        if state & 2 != 0 {
            return unclean("filesystem has errors recorded: run e2fsck on it first");
        }
        if state & 1 == 0 && self.journal_inum == 0 {
            return unclean("filesystem was not cleanly unmounted: shut the guest down cleanly");
        }
        let unsupported = |what: String| Err(FsError::Unsupported { fs: fs.into(), what });
        if self.incompat & !INCOMPAT_OK != 0 {
            return unsupported(format!("incompatible features {:#x}", self.incompat & !INCOMPAT_OK));
        }
        if self.ro_compat & !RO_OK != 0 {
            return unsupported(format!("read-only-compatible features {:#x}", self.ro_compat & !RO_OK));
        }
        if self.has_csum() && self.raw.get(0x175) != Some(&1) {
            return unsupported(format!("checksum type {:?}", self.raw.get(0x175)));
        }
        Ok(())
    }

    pub fn has_csum(&self) -> bool {
        self.ro_compat & RO_METADATA_CSUM != 0
    }
    pub fn has_gdt_csum(&self) -> bool {
        self.ro_compat & RO_GDT_CSUM != 0 && !self.has_csum()
    }
    pub fn is64(&self) -> bool {
        self.incompat & INCOMPAT_64BIT != 0
    }
    pub fn has_extents(&self) -> bool {
        self.incompat & INCOMPAT_EXTENTS != 0
    }
    pub fn has_filetype(&self) -> bool {
        self.incompat & INCOMPAT_FILETYPE != 0
    }
    /// Htree directories are maintained (a directory's index flag means nothing without it).
    pub fn has_dir_index(&self) -> bool {
        self.compat & COMPAT_DIR_INDEX != 0
    }
    /// Index levels an htree may have, the root included (`indirect_levels` stays below it):
    /// 3 with largedir, else 2.
    pub fn max_dx_levels(&self) -> u8 {
        if self.incompat & INCOMPAT_LARGEDIR != 0 {
            3
        } else {
            2
        }
    }
    /// `s_hash_seed`, as the four words the directory hashes start from.
    pub fn hash_seed(&self) -> [u32; 4] {
        [le32(&self.raw, 0xEC), le32(&self.raw, 0xF0), le32(&self.raw, 0xF4), le32(&self.raw, 0xF8)]
    }
    /// `s_flags` says directory hashes treat name bytes as unsigned chars.
    pub fn unsigned_hash(&self) -> bool {
        le32(&self.raw, 0x160) & 0x2 != 0
    }
    pub fn uuid(&self) -> &[u8] {
        self.raw.get(0x68..0x78).unwrap_or(&[])
    }

    pub fn free_blocks(&self) -> u64 {
        lohi(&self.raw, 0x0C, 0x158, 4, self.is64())
    }
    pub fn set_free_blocks(&mut self, v: u64) {
        let is64 = self.is64();
        set_lohi(&mut self.raw, 0x0C, 0x158, 4, is64, v);
    }
    pub fn free_inodes(&self) -> u32 {
        le32(&self.raw, 0x10)
    }
    pub fn set_free_inodes(&mut self, v: u32) {
        set32(&mut self.raw, 0x10, v);
    }
    pub fn set_ro_compat(&mut self, flag: u32) {
        self.ro_compat |= flag;
        set32(&mut self.raw, 0x64, self.ro_compat);
    }

    /// Groups that hold a superblock backup (and so the group descriptor table copy).
    pub fn group_has_super(&self, g: u32) -> bool {
        if g == 0 {
            return true;
        }
        if self.compat & COMPAT_SPARSE_SUPER2 != 0 {
            return g == le32(&self.raw, 0x24C) || g == le32(&self.raw, 0x250);
        }
        if self.ro_compat & RO_SPARSE_SUPER == 0 || g == 1 {
            return true;
        }
        [3u32, 5, 7].iter().any(|&base| {
            let mut n = base;
            while n < g {
                match n.checked_mul(base) {
                    Some(m) => n = m,
                    None => return false,
                }
            }
            n == g
        })
    }

    /// Blocks of the group descriptor table.
    pub fn gdt_blocks(&self) -> u64 {
        (u64::from(self.groups) * u64::from(self.desc_size)).div_ceil(self.block_size)
    }

    pub fn checksum(&self) -> u32 {
        crc32c_raw(!0, self.raw.get(..0x3FC).unwrap_or(&[]))
    }

    /// The superblock bytes with the checksum brought up to date.
    pub fn updated_bytes(&mut self) -> &[u8] {
        if self.has_csum() {
            let c = self.checksum();
            set32(&mut self.raw, 0x3FC, c);
        }
        &self.raw
    }
}
