//! XFS (v4 and v5) editing without an appliance.
//!
//! [`Xfs::open`] validates the superblock (CRC, geometry, every feature bit: unknown ones are
//! refused by name), the AGF/AGI/AGFL of every AG, and refuses a filesystem whose log needs
//! recovery. Reading covers v2/v3 inodes with CRCs, data forks in extent and B+tree (bmbt)
//! format, shortform, block, leaf and node directories, inline and remote symlinks, extended
//! attributes (shortform and leaf attribute forks, local and remote values).
//!
//! Writes keep every CRC right and the log clean: mode, owner and times in place; file
//! contents grown or shrunk through the free-space allocator (bnobt/cntbt, AGFL, AGF and
//! superblock counters), extent lists moving to a bmbt of any height when they outgrow the
//! inode and back to extents format as they shrink; new files, directories and symlinks
//! (inodes from the inobt/finobt, new chunks when full), unlink and rename, directories
//! converted shortform → block → leaf → node (a da B+tree of any height, the block map a
//! bmbt when needed) as they grow and back as they shrink; a new inode takes its parent
//! directory's `security.selinux` label (shortform attribute fork), and [`Xfs::set_xattr`]
//! sets an attribute that fits the inode's shortform fork. On reflink filesystems every
//! block an inode gives up goes through one release path (`release.rs`): data-fork extents
//! lose a reference in the AG's refcountbt (`refcount.rs`, rebuilt whole on commit) and only
//! unshared blocks are freed; a reflinked file's rewrite goes to new blocks, never into
//! shared ones. A refcountbt holding CoW staging records (an unclean shutdown's leftovers)
//! refuses every write. On rmapbt filesystems every allocation and free keeps the
//! reverse-mapping B+tree exact (`rmap.rs`: owners and file offsets, rebuilt with the
//! free-space trees on commit). What is not written (xattrs in attribute blocks, so
//! attribute fork trees of any kind) is refused with [`FsError::Unsupported`] before
//! anything is written, so the caller's overlay is dropped untouched rather than
//! half-written.

mod ag;
mod alloc;
mod bmap;
mod btree;
mod bytes;
mod create;
#[cfg(test)]
mod da_tree_tests;
mod dir;
mod dir_block;
mod dir_leaf;
mod dir_write;
mod file;
mod ialloc;
mod inode;
mod log;
mod ops;
mod refcount;
mod release;
mod rmap;
mod superblock;
mod xattr;

pub use inode::FileKind;
pub use ops::{DirEntry, Metadata};

use super::{FsError, Volume};
use superblock::{Superblock, SB_LEN, SB_SECTSIZE};

/// An XFS filesystem opened for editing.
pub struct Xfs<'a> {
    vol: Volume<'a>,
    name: String,
    sb: Superblock,
    /// No refcountbt holds CoW staging records (checked before the first allocating write).
    cow_checked: std::cell::Cell<bool>,
}

impl<'a> Xfs<'a> {
    /// Opens the filesystem in `vol`; `name` (e.g. "sda2 (disk.vmdk)") prefixes errors.
    pub fn open(vol: Volume<'a>, name: &str) -> Result<Self, FsError> {
        let mut raw = vec![0u8; SB_LEN];
        vol.read(&mut raw, 0, name)?;
        let sectsize = usize::from(bytes::be16(&raw, SB_SECTSIZE));
        if sectsize > SB_LEN && sectsize <= 32768 && raw.get(0..4) == Some(b"XFSB") {
            raw = vec![0u8; sectsize];
            vol.read(&mut raw, 0, name)?;
        }
        let sb = Superblock::parse(raw, vol.len(), name)?;
        let fs = Xfs { vol, name: name.to_string(), sb, cow_checked: std::cell::Cell::new(false) };
        fs.check_ags()?;
        fs.check_log()?;
        Ok(fs)
    }

    /// "v4" or "v5".
    pub fn version(&self) -> &'static str {
        if self.sb.v5 {
            "v5"
        } else {
            "v4"
        }
    }

    /// The feature names the superblock sets (`crc`, `finobt`, `sparse`, `reflink`, ...).
    pub fn features(&self) -> Vec<&'static str> {
        self.sb.features()
    }

    /// The name errors start with (device and partition).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u64 {
        self.sb.block
    }

    fn invalid(&self, field: &str, value: impl std::fmt::Display, reason: impl Into<String>) -> FsError {
        FsError::Invalid { fs: self.name.clone(), field: field.into(), value: value.to_string(), reason: reason.into() }
    }

    fn unsupported(&self, what: impl Into<String>) -> FsError {
        FsError::Unsupported { fs: self.name.clone(), what: what.into() }
    }

    /// Byte offset of filesystem block `fsb` (AG number in the high bits); `field` names
    /// where the number came from, for the error.
    fn fsb_byte(&self, fsb: u64, field: &str) -> Result<u64, FsError> {
        let ag = fsb >> self.sb.agblklog;
        let agbno = fsb & ((1u64 << self.sb.agblklog) - 1);
        if ag >= self.sb.agcount || agbno >= self.sb.ag_len(ag) {
            return Err(self.invalid(field, fsb, "block outside the filesystem"));
        }
        Ok((ag * self.sb.agblocks + agbno) * self.sb.block)
    }

    /// Reads `buf.len()` bytes at filesystem block `fsb`; the whole range must lie in one AG.
    fn read_fsb(&self, buf: &mut [u8], fsb: u64, field: &str) -> Result<(), FsError> {
        let at = self.fsb_checked(fsb, buf.len() as u64, field)?;
        self.vol.read(buf, at, &self.name)
    }

    /// Writes `buf` at filesystem block `fsb` (inside one AG).
    fn write_fsb(&self, buf: &[u8], fsb: u64, field: &str) -> Result<(), FsError> {
        let at = self.fsb_checked(fsb, buf.len() as u64, field)?;
        self.vol.write(buf, at, &self.name)
    }

    fn fsb_checked(&self, fsb: u64, len: u64, field: &str) -> Result<u64, FsError> {
        let at = self.fsb_byte(fsb, field)?;
        let blocks = len.div_ceil(self.sb.block);
        let agbno = fsb & ((1u64 << self.sb.agblklog) - 1);
        if agbno + blocks > self.sb.ag_len(fsb >> self.sb.agblklog) {
            return Err(self.invalid(field, format!("{fsb}+{blocks}"), "extent runs past the end of its AG"));
        }
        Ok(at)
    }
}

fn now() -> (i64, u32) {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (i64::try_from(d.as_secs()).unwrap_or(i64::MAX), d.subsec_nanos())
}
