//! Group descriptors: loading with validation, field access, checksums and write-back.

use super::bytes::{crc16, crc32c_raw, le16, lohi, set16};
use super::superblock::Superblock;
use crate::fs::{FsError, Volume};

pub const BG_INODE_UNINIT: u16 = 0x1;
pub const BG_BLOCK_UNINIT: u16 = 0x2;
pub const BG_ITABLE_ZEROED: u16 = 0x4;

/// The group descriptor table, kept in memory and written back one descriptor at a time.
pub struct Gdt {
    raw: Vec<u8>,
    desc_size: usize,
    is64: bool,
    /// Byte offset of the table in the volume.
    offset: u64,
}

impl Gdt {
    pub fn load(vol: &Volume, sb: &Superblock, fs: &str) -> Result<Self, FsError> {
        if sb.incompat & super::superblock::INCOMPAT_META_BG != 0 {
            return Err(FsError::Unsupported { fs: fs.into(), what: "meta_bg group descriptor layout".into() });
        }
        let offset = (sb.first_data_block + 1) * sb.block_size;
        if sb.gdt_blocks() + u64::from(sb.reserved_gdt_blocks) + 1 >= u64::from(sb.blocks_per_group) {
            return Err(FsError::Invalid {
                fs: fs.into(),
                field: "group descriptor table size".into(),
                value: format!("{} blocks", sb.gdt_blocks()),
                reason: "does not fit in the first group".into(),
            });
        }
        let len = sb.groups as usize * sb.desc_size as usize; // groups * desc_size <= fs size, checked
        let mut raw = vec![0u8; len];
        vol.read(&mut raw, offset, fs)?;
        let gdt = Gdt { raw, desc_size: sb.desc_size as usize, is64: sb.is64(), offset };
        let itable_blocks = itable_blocks(sb);
        let bad = |g: u32, field: &str, v: u64, why: &str| FsError::Invalid {
            fs: fs.into(),
            field: format!("group {g} {field}"),
            value: v.to_string(),
            reason: why.into(),
        };
        for g in 0..sb.groups {
            for (field, block, n) in [
                ("block bitmap", gdt.block_bitmap(g), 1),
                ("inode bitmap", gdt.inode_bitmap(g), 1),
                ("inode table", gdt.inode_table(g), itable_blocks),
            ] {
                if block < sb.first_data_block + 1 || block.checked_add(n).is_none_or(|e| e > sb.blocks_count) {
                    return Err(bad(g, field, block, "outside the filesystem"));
                }
            }
            if u64::from(gdt.free_inodes(g)) > u64::from(sb.inodes_per_group) {
                return Err(bad(g, "free inodes count", gdt.free_inodes(g).into(), "above inodes per group"));
            }
            if gdt.free_blocks(g) > u64::from(sb.blocks_per_group) {
                return Err(bad(g, "free blocks count", gdt.free_blocks(g), "above blocks per group"));
            }
            if (sb.has_csum() || sb.has_gdt_csum()) && gdt.checksum(sb, g) != le16(gdt.desc(g), 0x1E) {
                return Err(bad(g, "descriptor checksum", le16(gdt.desc(g), 0x1E).into(), "does not match"));
            }
        }
        Ok(gdt)
    }

    fn desc(&self, g: u32) -> &[u8] {
        let a = g as usize * self.desc_size;
        self.raw.get(a..a + self.desc_size).unwrap_or(&[])
    }

    fn desc_mut(&mut self, g: u32) -> &mut [u8] {
        let a = g as usize * self.desc_size;
        self.raw.get_mut(a..a + self.desc_size).unwrap_or(&mut [])
    }

    pub fn block_bitmap(&self, g: u32) -> u64 {
        lohi(self.desc(g), 0x00, 0x20, 4, self.is64)
    }
    pub fn inode_bitmap(&self, g: u32) -> u64 {
        lohi(self.desc(g), 0x04, 0x24, 4, self.is64)
    }
    pub fn inode_table(&self, g: u32) -> u64 {
        lohi(self.desc(g), 0x08, 0x28, 4, self.is64)
    }
    pub fn free_blocks(&self, g: u32) -> u64 {
        u64::from(le16(self.desc(g), 0x0C)) | (u64::from(if self.is64 { le16(self.desc(g), 0x2C) } else { 0 }) << 16)
    }
    pub fn set_free_blocks(&mut self, g: u32, v: u64) {
        let is64 = self.is64;
        let d = self.desc_mut(g);
        set16(d, 0x0C, v as u16);
        if is64 {
            set16(d, 0x2C, (v >> 16) as u16);
        }
    }
    fn get_split16(&self, g: u32, lo: usize, hi: usize) -> u32 {
        u32::from(le16(self.desc(g), lo)) | (u32::from(if self.is64 { le16(self.desc(g), hi) } else { 0 }) << 16)
    }
    fn set_split16(&mut self, g: u32, lo: usize, hi: usize, v: u32) {
        let is64 = self.is64;
        let d = self.desc_mut(g);
        set16(d, lo, v as u16);
        if is64 {
            set16(d, hi, (v >> 16) as u16);
        }
    }
    pub fn free_inodes(&self, g: u32) -> u32 {
        self.get_split16(g, 0x0E, 0x2E)
    }
    pub fn set_free_inodes(&mut self, g: u32, v: u32) {
        self.set_split16(g, 0x0E, 0x2E, v)
    }
    pub fn used_dirs(&self, g: u32) -> u32 {
        self.get_split16(g, 0x10, 0x30)
    }
    pub fn set_used_dirs(&mut self, g: u32, v: u32) {
        self.set_split16(g, 0x10, 0x30, v)
    }
    pub fn itable_unused(&self, g: u32) -> u32 {
        self.get_split16(g, 0x1C, 0x32)
    }
    pub fn set_itable_unused(&mut self, g: u32, v: u32) {
        self.set_split16(g, 0x1C, 0x32, v)
    }
    pub fn flags(&self, g: u32) -> u16 {
        le16(self.desc(g), 0x12)
    }
    pub fn set_flags(&mut self, g: u32, v: u16) {
        set16(self.desc_mut(g), 0x12, v)
    }

    pub fn block_bitmap_csum(&self, g: u32) -> u32 {
        let hi = if self.desc_size >= 0x3A { u32::from(le16(self.desc(g), 0x38)) } else { 0 };
        u32::from(le16(self.desc(g), 0x18)) | (hi << 16)
    }
    pub fn inode_bitmap_csum(&self, g: u32) -> u32 {
        let hi = if self.desc_size >= 0x3C { u32::from(le16(self.desc(g), 0x3A)) } else { 0 };
        u32::from(le16(self.desc(g), 0x1A)) | (hi << 16)
    }
    /// Stores a bitmap checksum (low half only when the descriptor has no high field).
    pub fn set_bitmap_csum(&mut self, g: u32, inode: bool, csum: u32) {
        let size = self.desc_size;
        let (lo, hi, end) = if inode { (0x1A, 0x3A, 0x3C) } else { (0x18, 0x38, 0x3A) };
        let d = self.desc_mut(g);
        set16(d, lo, csum as u16);
        if size >= end {
            set16(d, hi, (csum >> 16) as u16);
        }
    }
    /// The part of a bitmap checksum the descriptor can hold.
    pub fn bitmap_csum_mask(&self, inode: bool) -> u32 {
        if self.desc_size >= if inode { 0x3C } else { 0x3A } {
            u32::MAX
        } else {
            0xFFFF
        }
    }

    pub fn checksum(&self, sb: &Superblock, g: u32) -> u16 {
        let d = self.desc(g);
        let le = g.to_le_bytes();
        let (head, tail) = (d.get(..0x1E).unwrap_or(&[]), d.get(0x20..).unwrap_or(&[]));
        if sb.has_csum() {
            let mut c = crc32c_raw(sb.csum_seed, &le);
            c = crc32c_raw(c, head);
            c = crc32c_raw(c, &[0, 0]);
            c = crc32c_raw(c, tail);
            c as u16
        } else {
            let mut c = crc16(!0, sb.uuid());
            c = crc16(c, &le);
            c = crc16(c, head);
            if sb.is64() {
                c = crc16(c, tail);
            }
            c
        }
    }

    /// Updates descriptor `g`'s checksum and writes it to the primary table.
    pub fn write(&mut self, vol: &Volume, sb: &Superblock, g: u32, fs: &str) -> Result<(), FsError> {
        if sb.has_csum() || sb.has_gdt_csum() {
            let c = self.checksum(sb, g);
            set16(self.desc_mut(g), 0x1E, c);
        }
        let off = self.offset + g as u64 * self.desc_size as u64;
        vol.write(self.desc(g), off, fs)
    }
}

/// Blocks each group's inode table takes.
pub fn itable_blocks(sb: &Superblock) -> u64 {
    (u64::from(sb.inodes_per_group) * u64::from(sb.inode_size)).div_ceil(sb.block_size)
}
