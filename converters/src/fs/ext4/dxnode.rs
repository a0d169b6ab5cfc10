//! The index blocks of htree directories: the dx_root (block 0: fake "." and ".." records,
//! dx_root_info, then count/limit and the (hash, block) entries) and dx_node blocks (a fake
//! empty record spanning the block, then count/limit and entries), every header field
//! validated on load, and the dx_tail checksum of metadata_csum filesystems.

use super::bytes::{crc32c_raw, le16, le32, set16, set32};
use super::dxhash::{HASH_TEA, UNSIGNED_OFFSET};
use super::inode::Inode;
use super::{Ext4, FsError};

/// Where count/limit sit in the root block and in a node block.
pub const ROOT_BASE: usize = 32;
pub const NODE_BASE: usize = 8;
const ENTRY: usize = 8;
const DX_TAIL: usize = 8;
/// The top bits of an entry's block number are reserved.
const BLOCK_MASK: u32 = 0x0fff_ffff;

/// One index block in memory: `base` is where its count/limit header starts.
#[derive(Clone, Debug)]
pub struct DxBlock {
    pub lblk: u64,
    pub pblk: u64,
    pub data: Vec<u8>,
    pub base: usize,
}

impl DxBlock {
    pub fn limit(&self) -> usize {
        usize::from(le16(&self.data, self.base))
    }
    pub fn count(&self) -> usize {
        usize::from(le16(&self.data, self.base + 2))
    }
    pub fn is_full(&self) -> bool {
        self.count() >= self.limit()
    }
    fn set_count(&mut self, n: usize) {
        set16(&mut self.data, self.base + 2, n as u16);
    }
    fn set_limit(&mut self, n: usize) {
        set16(&mut self.data, self.base, n as u16);
    }
    /// Entry `i`'s hash; entry 0 has none (its slot holds count/limit): it covers from 0.
    pub fn hash(&self, i: usize) -> u32 {
        if i == 0 {
            0
        } else {
            le32(&self.data, self.base + ENTRY * i)
        }
    }
    /// Entry `i`'s logical directory block.
    pub fn block(&self, i: usize) -> u64 {
        u64::from(le32(&self.data, self.base + ENTRY * i + 4) & BLOCK_MASK)
    }
    fn set_entry(&mut self, i: usize, hash: u32, block: u64) {
        if i > 0 {
            set32(&mut self.data, self.base + ENTRY * i, hash);
        }
        set32(&mut self.data, self.base + ENTRY * i + 4, block as u32);
    }
    /// The entry whose range holds `hash`: the last one whose hash is not above it.
    pub fn find(&self, hash: u32) -> usize {
        let (mut lo, mut hi) = (1, self.count());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.hash(mid) > hash {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo - 1
    }
    /// Inserts (hash, block) right after entry `at`; the caller checked there is room.
    pub fn insert_after(&mut self, at: usize, hash: u32, block: u64) {
        let count = self.count();
        let from = self.base + ENTRY * (at + 1);
        let to = self.base + ENTRY * count;
        if from <= to && to + ENTRY <= self.data.len() {
            self.data.copy_within(from..to, from + ENTRY);
        }
        self.set_entry(at + 1, hash, block);
        self.set_count(count + 1);
    }
    /// Entries `from..count` as (hash, block), and the block keeps the first `from`.
    pub fn split_off(&mut self, from: usize) -> Vec<(u32, u64)> {
        let moved = (from..self.count()).map(|i| (self.hash(i), self.block(i))).collect();
        self.set_count(from);
        moved
    }
    /// Replaces the entries with `entries` (the first entry's hash is dropped).
    pub fn set_entries(&mut self, entries: &[(u32, u64)]) {
        for (i, &(h, b)) in entries.iter().enumerate() {
            self.set_entry(i, h, b);
        }
        self.set_count(entries.len());
    }
}

/// What the root says about the whole tree.
#[derive(Clone, Copy, Debug)]
pub struct DxRootInfo {
    /// The hash to use, the superblock's unsigned flag applied (0..=5).
    pub version: u8,
    /// `indirect_levels`: index node levels below the root.
    pub levels: u8,
}

impl Ext4<'_> {
    /// Entries an index block holds: the block minus the header (and the dx_tail).
    pub(super) fn dx_limit(&self, base: usize) -> usize {
        let tail = if self.sb.has_csum() { DX_TAIL } else { 0 };
        (self.sb.block_size as usize).saturating_sub(base + tail) / ENTRY
    }

    fn dx_err(&self, dir: u32, what: &str, field: &str, value: impl std::fmt::Display, reason: &str) -> FsError {
        self.invalid(&format!("directory {dir} htree {what} {field}"), value, reason)
    }

    /// Loads and validates the root (directory block 0 at `pblk`).
    pub(super) fn load_dx_root(&self, dir: &Inode, pblk: u64) -> Result<(DxBlock, DxRootInfo), FsError> {
        let data = self.read_block(pblk)?;
        let bs = self.sb.block_size as usize;
        let d = dir.ino;
        // Name lengths and names only: the file type bytes are 0 without the filetype feature.
        let dot_ok =
            le32(&data, 0) == d && le16(&data, 4) == 12 && data.get(6) == Some(&1) && data.get(8) == Some(&b'.');
        if !dot_ok {
            return Err(self.dx_err(d, "root", "\".\" record", pblk, "malformed"));
        }
        if self.decode_rec_len(le16(&data, 16)) != bs - 12
            || data.get(18) != Some(&2)
            || data.get(20..22) != Some(b"..")
        {
            return Err(self.dx_err(d, "root", "\"..\" record", pblk, "malformed"));
        }
        let reserved = le32(&data, 24);
        if reserved != 0 {
            return Err(self.dx_err(d, "root", "reserved_zero", reserved, "must be 0"));
        }
        let version = data.get(28).copied().unwrap_or(0);
        if version > HASH_TEA {
            return Err(self.dx_err(d, "root", "hash_version", version, "not legacy, half_md4 or tea"));
        }
        let info_len = data.get(29).copied().unwrap_or(0);
        if usize::from(info_len) != ROOT_BASE - 24 {
            return Err(self.dx_err(d, "root", "info_length", info_len, "must be 8"));
        }
        let levels = data.get(30).copied().unwrap_or(0);
        if levels >= self.sb.max_dx_levels() {
            let why = if self.sb.max_dx_levels() == 2 { "above 1 without largedir" } else { "above 2" };
            return Err(self.dx_err(d, "root", "indirect_levels", levels, why));
        }
        let flags = data.get(31).copied().unwrap_or(0);
        if flags & 1 != 0 {
            return Err(self.dx_err(d, "root", "unused_flags", flags, "unknown hash flags"));
        }
        let root = DxBlock { lblk: 0, pblk, data, base: ROOT_BASE };
        self.check_counts(d, "root", &root)?;
        let version = if self.sb.unsigned_hash() { version + UNSIGNED_OFFSET } else { version };
        Ok((root, DxRootInfo { version, levels }))
    }

    /// Loads and validates an index node (directory block `lblk` at `pblk`).
    pub(super) fn load_dx_node(&self, dir: &Inode, lblk: u64, pblk: u64) -> Result<DxBlock, FsError> {
        let data = self.read_block(pblk)?;
        let what = format!("node {lblk}");
        let rec_len = le16(&data, 4);
        if le32(&data, 0) != 0 || self.decode_rec_len(rec_len) != data.len() || le16(&data, 6) != 0 {
            return Err(self.dx_err(
                dir.ino,
                &what,
                "fake record rec_len",
                rec_len,
                "not an empty record spanning the block",
            ));
        }
        let node = DxBlock { lblk, pblk, data, base: NODE_BASE };
        self.check_counts(dir.ino, &what, &node)?;
        Ok(node)
    }

    fn check_counts(&self, dir: u32, what: &str, b: &DxBlock) -> Result<(), FsError> {
        let want = self.dx_limit(b.base);
        if b.limit() != want {
            return Err(self.dx_err(dir, what, "limit", b.limit(), &format!("must be {want} for this block size")));
        }
        if b.count() == 0 || b.count() > b.limit() {
            return Err(self.dx_err(dir, what, "count", b.count(), &format!("must be 1..={}", b.limit())));
        }
        Ok(())
    }

    /// A fresh, empty index node for directory block `lblk` at `pblk`.
    pub(super) fn new_dx_node(&self, lblk: u64, pblk: u64) -> DxBlock {
        let bs = self.sb.block_size as usize;
        let mut data = vec![0u8; bs];
        set16(&mut data, 4, self.encode_rec_len(bs));
        let mut b = DxBlock { lblk, pblk, data, base: NODE_BASE };
        b.set_limit(self.dx_limit(NODE_BASE));
        b
    }

    /// Writes an index block, its dx_tail checksum brought up to date on metadata_csum.
    pub(super) fn write_dx_block(&self, dir: &Inode, b: &mut DxBlock) -> Result<(), FsError> {
        if self.sb.has_csum() {
            let tail = b.base + ENTRY * b.limit();
            let used = b.base + ENTRY * b.count();
            let (Some(head), Some(reserved)) = (b.data.get(..used), b.data.get(tail..tail + 4)) else {
                return Err(self.dx_err(dir.ino, "block", "dx_tail", b.lblk, "does not fit in the block"));
            };
            let c = crc32c_raw(crc32c_raw(crc32c_raw(self.seed_of(dir), head), reserved), &[0; 4]);
            set32(&mut b.data, tail + 4, c);
        }
        self.write_block(b.pblk, &b.data)
    }
}
