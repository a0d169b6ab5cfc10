//! What the `ext4` crate cannot do, done directly on the on-disk format: locating raw
//! inodes, block-mapped (ext2/ext3, non-extent) file data, and directories spanning many
//! blocks (the crate stops at the first block's checksum tail). Layout per the kernel's
//! Documentation/filesystems/ext4.

use crate::bytes::{u16le, u32le};
use crate::device::Device;

/// Inode flag: data mapped by an extent tree.
pub const EXTENTS_FL: u32 = 0x8_0000;
/// Inode flag: data stored inside the inode.
pub const INLINE_DATA_FL: u32 = 0x1000_0000;

/// Geometry from the superblock, enough to find inodes and blocks.
pub struct Geometry {
    pub block: u64,
    inodes_per_group: u64,
    inodes_count: u64,
    inode_size: u64,
    desc_size: u64,
    gdt_block: u64,
}

/// A raw inode's fields the wrapper needs.
pub struct RawInode {
    pub mode: u16,
    pub size: u64,
    pub flags: u32,
    /// `i_block`: block map, extent root or inline symlink target (60 bytes).
    pub iblock: Vec<u8>,
    pub blocks: u32,
}

impl Geometry {
    /// From the 1024-byte superblock; `None` if a field is out of range.
    pub fn new(sb: &[u8]) -> Option<Geometry> {
        let log = u32le(sb, 24);
        if log > 6 {
            return None;
        }
        let block = 1024u64 << log;
        let incompat = u32le(sb, 96);
        let desc_size = if incompat & 0x80 != 0 { u64::from(u16le(sb, 254)).max(32) } else { 32 };
        let inode_size = if u32le(sb, 76) == 0 { 128 } else { u64::from(u16le(sb, 88)) };
        let ipg = u64::from(u32le(sb, 40));
        if ipg == 0 || !(128..=4096).contains(&inode_size) || desc_size > 1024 {
            return None;
        }
        Some(Geometry {
            block,
            inodes_per_group: ipg,
            inodes_count: u64::from(u32le(sb, 0)),
            inode_size,
            desc_size,
            gdt_block: u64::from(u32le(sb, 20)) + 1,
        })
    }

    /// Reads inode `ino`.
    pub fn inode(&self, dev: &Device, ino: u64) -> Result<RawInode, String> {
        if ino == 0 || ino > self.inodes_count {
            return Err(format!("inode number {ino} out of range (1-{})", self.inodes_count));
        }
        let group = (ino - 1) / self.inodes_per_group;
        let index = (ino - 1) % self.inodes_per_group;
        let desc_at = self.gdt_block * self.block + group * self.desc_size;
        let d = dev.read(desc_at, self.desc_size as usize).map_err(|e| e.to_string())?;
        let hi = if self.desc_size >= 64 { u64::from(u32le(&d, 0x28)) } else { 0 };
        let table = (hi << 32) | u64::from(u32le(&d, 8));
        let at = table
            .checked_mul(self.block)
            .and_then(|t| t.checked_add(index * self.inode_size))
            .ok_or(format!("inode table block {table} out of range"))?;
        let b = dev.read(at, self.inode_size as usize).map_err(|e| e.to_string())?;
        let size = u64::from(u32le(&b, 4)) | (u64::from(u32le(&b, 108)) << 32);
        Ok(RawInode {
            mode: u16le(&b, 0),
            size,
            flags: u32le(&b, 32),
            iblock: b.get(40..100).unwrap_or_default().to_vec(),
            blocks: u32le(&b, 28),
        })
    }

    /// First `want` bytes of a block-mapped inode (holes read as zeros).
    pub fn read_mapped(&self, dev: &Device, ino: &RawInode, want: u64) -> Result<Vec<u8>, String> {
        let nblocks = want.div_ceil(self.block);
        let mut phys = Vec::with_capacity(nblocks.min(1 << 16) as usize);
        for i in 0..12 {
            phys.push(u64::from(u32le(&ino.iblock, i * 4)));
        }
        for (slot, depth) in [(12usize, 1u32), (13, 2), (14, 3)] {
            if phys.len() as u64 >= nblocks {
                break;
            }
            self.indirect(dev, u64::from(u32le(&ino.iblock, slot * 4)), depth, nblocks, &mut phys)?;
        }
        let mut out = vec![0u8; want as usize];
        for (i, chunk) in out.chunks_mut(self.block as usize).enumerate() {
            let Some(&p) = phys.get(i) else { break };
            if p != 0 {
                dev.dev.read_at(chunk, p * self.block).map_err(|e| e.to_string())?;
            }
        }
        Ok(out)
    }

    fn indirect(&self, dev: &Device, blk: u64, depth: u32, want: u64, out: &mut Vec<u64>) -> Result<(), String> {
        let per = self.block / 4;
        if blk == 0 {
            // A hole: as many zero entries as this subtree covers (bounded by `want`).
            let span = per.saturating_pow(depth);
            let n = span.min(want.saturating_sub(out.len() as u64));
            out.extend(std::iter::repeat_n(0, n as usize));
            return Ok(());
        }
        let b = dev.read(blk * self.block, self.block as usize).map_err(|e| e.to_string())?;
        for i in 0..per as usize {
            if out.len() as u64 >= want {
                break;
            }
            let p = u64::from(u32le(&b, i * 4));
            if depth == 1 {
                out.push(p);
            } else {
                self.indirect(dev, p, depth - 1, want, out)?;
            }
        }
        Ok(())
    }
}

/// Directory entries (name, inode, dirent file type) in directory data of any number of
/// blocks. Checksum tails and htree index blocks have inode 0 and are skipped.
pub fn dirents(data: &[u8], block: usize) -> Vec<(String, u32, u8)> {
    let mut out = Vec::new();
    for b in data.chunks(block) {
        let mut p = 0usize;
        while p + 8 <= b.len() {
            let ino = u32le(b, p);
            let rec = usize::from(u16le(b, p + 4));
            let nlen = usize::from(*b.get(p + 6).unwrap_or(&0));
            if rec < 8 || p + rec > b.len() || 8 + nlen > rec {
                break;
            }
            if ino != 0 {
                let name = String::from_utf8_lossy(b.get(p + 8..p + 8 + nlen).unwrap_or_default()).into_owned();
                if name != "." && name != ".." {
                    out.push((name, ino, *b.get(p + 7).unwrap_or(&0)));
                }
            }
            p += rec;
        }
    }
    out
}
