//! Directory reading: shortform (entries packed in the inode), and the data blocks of block,
//! leaf, node and B+tree directories (the hash-ordered leaf and free blocks above 32 GiB in
//! the directory's address space are indexes; the names live in the data blocks).

use super::bytes::{be16, be32, be64, byte, crc_ok};
use super::inode::{Inode, FMT_BTREE, FMT_EXTENTS, FMT_LOCAL};
use super::Xfs;
use crate::fs::FsError;

/// Byte offset where leaf and free-index blocks start in a directory's address space.
const LEAF_OFFSET: u64 = 32 << 30;
/// Largest directory data read (names of ~1M entries).
const MAX_DIR: u64 = 256 << 20;
const FREE_TAG: u16 = 0xffff;
const DIR_CRC: usize = 4;

/// One directory entry as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    pub name: Vec<u8>,
    pub ino: u64,
    /// The file type byte (0 without ftype).
    pub ftype: u8,
}

/// Size of a data-block entry with a `namelen`-byte name.
pub fn entry_size(namelen: usize, ftype: bool) -> usize {
    (8 + 1 + namelen + usize::from(ftype) + 2).div_ceil(8) * 8
}

impl Xfs<'_> {
    /// Every entry of directory `dir` but `.` and `..`.
    pub(super) fn dir_entries(&self, dir: &Inode) -> Result<Vec<RawEntry>, FsError> {
        match dir.format() {
            FMT_LOCAL => self.shortform(dir),
            FMT_EXTENTS | FMT_BTREE => self.block_entries(dir),
            f => Err(self.invalid(&format!("directory inode {} di_format", dir.ino), f, "not a directory format")),
        }
    }

    fn shortform(&self, dir: &Inode) -> Result<Vec<RawEntry>, FsError> {
        let fork = dir.data_fork();
        let field = format!("directory inode {} shortform", dir.ino);
        let size = dir.size() as usize;
        if size > fork.len() || size < 6 {
            return Err(self.invalid(&format!("{field} size"), size, format!("not 6..{}", fork.len())));
        }
        let b = &fork[..size];
        let count = usize::from(byte(b, 0));
        let i8count = byte(b, 1);
        let inolen = if i8count > 0 { 8 } else { 4 };
        let read_ino = |at: usize| if inolen == 8 { be64(b, at) } else { u64::from(be32(b, at)) };
        let mut at = 2 + inolen;
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            let namelen = usize::from(byte(b, at));
            let end = at + 3 + namelen + usize::from(self.sb.ftype) + inolen;
            if namelen == 0 || end > b.len() {
                return Err(self.invalid(&format!("{field} entry {i}"), namelen, "runs past the fork"));
            }
            let name = b[at + 3..at + 3 + namelen].to_vec();
            let ftype = if self.sb.ftype { byte(b, at + 3 + namelen) } else { 0 };
            out.push(RawEntry { name, ino: read_ino(end - inolen), ftype });
            at = end;
        }
        Ok(out)
    }

    fn block_entries(&self, dir: &Inode) -> Result<Vec<RawEntry>, FsError> {
        let dbs = self.sb.dirblock();
        let size = dir.size();
        if size % dbs != 0 || size > MAX_DIR.min(LEAF_OFFSET) {
            return Err(self.invalid(&format!("directory inode {} di_size", dir.ino), size, format!("not a multiple of {dbs} up to {MAX_DIR}")));
        }
        let ext = self.extents(dir)?;
        let data = self.read_mapped(dir.ino, &ext, size)?;
        let mut out = Vec::new();
        for (i, blk) in data.chunks(dbs as usize).enumerate() {
            let lblk = i as u64 * (dbs / self.sb.block);
            let mapped = ext.iter().any(|e| e.off <= lblk && lblk < e.off + e.len);
            if !mapped {
                continue;
            }
            self.data_block(dir.ino, blk, i == 0 && size == dbs, &mut out)?;
        }
        Ok(out)
    }

    /// Parses one directory data block (or the single block of a block directory).
    pub(super) fn data_block(&self, ino: u64, b: &[u8], single: bool, out: &mut Vec<RawEntry>) -> Result<(), FsError> {
        let field = format!("directory inode {ino} data block");
        let (block_magic, data_magic, hdr): (&[u8], &[u8], usize) =
            if self.sb.v5 { (b"XDB3", b"XDD3", 64) } else { (b"XD2B", b"XD2D", 16) };
        let magic = b.get(0..4).unwrap_or(&[]);
        let mut end = b.len();
        if magic == block_magic && single {
            let count = be32(b, b.len() - 8) as usize;
            match (b.len() - 8).checked_sub(count.saturating_mul(8)) {
                Some(e) if e >= hdr => end = e,
                _ => return Err(self.invalid(&format!("{field} leaf count"), count, "more than the block holds")),
            }
        } else if magic != data_magic {
            return Err(self.invalid(&format!("{field} magic"), format!("{:#010x}", be32(b, 0)), "not a directory data block"));
        }
        if self.sb.v5 {
            if !crc_ok(b, DIR_CRC) {
                return Err(self.invalid(&format!("{field} crc"), format!("{:#010x}", be32(b, DIR_CRC)), "checksum mismatch"));
            }
            if be64(b, 40) != ino {
                return Err(self.invalid(&format!("{field} owner"), be64(b, 40), "belongs to another inode"));
            }
        }
        let mut at = hdr;
        while at < end {
            if be16(b, at) == FREE_TAG {
                let len = usize::from(be16(b, at + 2));
                if len == 0 || len % 8 != 0 || at + len > end {
                    return Err(self.invalid(&format!("{field} free length at {at}"), len, "not a multiple of 8 inside the block"));
                }
                at += len;
                continue;
            }
            let namelen = usize::from(byte(b, at + 8));
            let len = entry_size(namelen, self.sb.ftype);
            if namelen == 0 || at + len > end {
                return Err(self.invalid(&format!("{field} entry at {at} namelen"), namelen, "runs past the block"));
            }
            let name = &b[at + 9..at + 9 + namelen];
            if name != b"." && name != b".." {
                let ftype = if self.sb.ftype { byte(b, at + 9 + namelen) } else { 0 };
                out.push(RawEntry { name: name.to_vec(), ino: be64(b, at), ftype });
            }
            at += len;
        }
        Ok(())
    }
}
