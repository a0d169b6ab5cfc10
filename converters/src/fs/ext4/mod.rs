//! ext2/3/4 editing without an appliance.
//!
//! [`Ext4::open`] validates the superblock and group descriptors of a filesystem inside a
//! [`Volume`] and refuses to write one whose journal needs recovery, has pending orphans,
//! recorded errors, or features this code does not maintain (quota, bigalloc, meta_bg,
//! inline_data, ea_inode, mmp). The path API ([`Ext4::write_file`], [`Ext4::mkdir`],
//! [`Ext4::rename`], ...) keeps bitmaps, free counts, link counts and every checksum
//! (metadata_csum crc32c, gdt_csum crc16) right, so `e2fsck -fn` stays clean.
//!
//! htree (dir_index) directories keep their index: lookups and removals go through it,
//! additions split leaves and index blocks and add levels as the kernel does (`htree.rs`,
//! `dxnode.rs`, `dxhash.rs`: legacy, half_md4 and tea hashes, signed or unsigned; up to 3
//! levels with largedir). Only a tree full at its maximum depth, where the kernel would
//! refuse the entry, is turned back into a linear directory.
//!
//! Writes are not journaled: the caller edits a copy-on-write overlay and throws it away if
//! any operation fails, because a failed operation may leave the overlay half-updated.

mod alloc;
mod blockmap;
mod bytes;
mod dir;
mod dxhash;
mod dxnode;
mod extents;
mod filemap;
mod group;
mod htree;
mod inode;
mod ops;
mod superblock;
mod xattr;

pub use inode::FileKind;
pub use ops::{DirEntry, Metadata};

use super::{FsError, Volume};
use group::Gdt;
use superblock::{Superblock, SB_OFFSET, SB_SIZE};

/// The root directory's inode number.
pub const ROOT_INO: u32 = 2;

/// An ext2/3/4 filesystem opened for editing.
pub struct Ext4<'a> {
    vol: Volume<'a>,
    name: String,
    sb: Superblock,
    gdt: Gdt,
}

impl<'a> Ext4<'a> {
    /// Opens the filesystem in `vol`; `name` (e.g. "disk1.vmdk partition 2") prefixes errors.
    pub fn open(vol: Volume<'a>, name: &str) -> Result<Self, FsError> {
        let mut raw = vec![0u8; SB_SIZE];
        vol.read(&mut raw, SB_OFFSET, name)?;
        let sb = Superblock::parse(raw, vol.len(), name)?;
        let gdt = Gdt::load(&vol, &sb, name)?;
        let fs = Ext4 { vol, name: name.to_string(), sb, gdt };
        fs.check_journal()?;
        Ok(fs)
    }

    /// Free blocks and free inodes, as the superblock counts them.
    pub fn free_counts(&self) -> (u64, u32) {
        (self.sb.free_blocks(), self.sb.free_inodes())
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u64 {
        self.sb.block_size
    }

    fn invalid(&self, field: &str, value: impl std::fmt::Display, reason: impl Into<String>) -> FsError {
        FsError::Invalid { fs: self.name.clone(), field: field.into(), value: value.to_string(), reason: reason.into() }
    }

    fn unsupported(&self, what: impl Into<String>) -> FsError {
        FsError::Unsupported { fs: self.name.clone(), what: what.into() }
    }

    fn read_block(&self, block: u64) -> Result<Vec<u8>, FsError> {
        let mut buf = vec![0u8; self.sb.block_size as usize];
        self.read_blocks(&mut buf, block)?;
        Ok(buf)
    }

    fn read_blocks(&self, buf: &mut [u8], block: u64) -> Result<(), FsError> {
        self.check_block(block, buf.len() as u64 / self.sb.block_size)?;
        self.vol.read(buf, block * self.sb.block_size, &self.name)
    }

    fn write_block(&self, block: u64, data: &[u8]) -> Result<(), FsError> {
        self.check_block(block, (data.len() as u64).div_ceil(self.sb.block_size))?;
        self.vol.write(data, block * self.sb.block_size, &self.name)
    }

    /// `count` blocks from `block` lie inside the filesystem's data area.
    fn check_block(&self, block: u64, count: u64) -> Result<(), FsError> {
        match block.checked_add(count) {
            Some(end) if block >= self.sb.first_data_block && end <= self.sb.blocks_count => Ok(()),
            _ => Err(self.invalid(
                "block number",
                block,
                format!("outside the filesystem ({} blocks)", self.sb.blocks_count),
            )),
        }
    }

    fn write_super(&mut self) -> Result<(), FsError> {
        let name = self.name.clone();
        let bytes = self.sb.updated_bytes().to_vec();
        self.vol.write(&bytes, SB_OFFSET, &name)
    }

    /// A journal that is marked clean in the superblock but still holds transactions is also
    /// refused: writing under it would be undone by the replay at the next mount.
    fn check_journal(&self) -> Result<(), FsError> {
        if self.sb.journal_inum == 0 {
            return Ok(());
        }
        let ino = self.read_inode(self.sb.journal_inum)?;
        let map = self.mapping(&ino)?;
        let Some(first) = map.runs.iter().find(|r| r.lblk == 0) else {
            return Err(self.invalid("journal inode block 0", "hole", "the journal has no superblock"));
        };
        let block = self.read_block(first.pblk)?;
        let be = |off: usize| block.get(off..off + 4).map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
        if be(0) != 0xC03B_3998 {
            return Err(self.invalid("journal magic", format!("{:#x}", be(0)), "not a jbd2 journal"));
        }
        if be(28) != 0 {
            return Err(FsError::NeedsRecovery { fs: self.name.clone() });
        }
        Ok(())
    }
}

/// The time stamped on edited inodes: `SOURCE_DATE_EPOCH` when set (reproducible output;
/// `ferry batch` pins it per VM so a rerun after a crash writes the same bytes), else now.
fn now() -> i64 {
    if let Some(t) = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse::<i64>().ok()) {
        return t;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
