//! Block maps: the packed 128-bit extent records of a data fork, in the inode (extents
//! format) or in a bmbt B+tree whose root sits in the inode (btree format). Reading follows
//! trees of any height; writing builds a new tree of the height the extent count needs
//! (every height) from the sorted extent list, or goes back to extents format when the
//! list fits the inode again.

use super::alloc::AgSpace;
use super::file::Blocks;
use super::release::{Fork, Mapping};
use super::bytes::{be16, be32, be64, crc_ok, set16, set64, set_crc};
use super::inode::{Inode, FMT_BTREE, FMT_EXTENTS};
use super::Xfs;
use crate::fs::FsError;
use std::collections::BTreeMap;

/// Most extents collected for one file (bounds memory on a corrupt tree).
const MAX_EXTENTS: u64 = 1 << 20;
/// Deepest bmbt accepted (the kernel's limit for 64-bit extent counts is 9 or so).
const MAX_LEVELS: u16 = 12;
const BMBT_CRC: usize = 64;
/// Most bmbt blocks read for one fork (a tree whose pointers repeat cannot loop for long).
const MAX_BLOCKS: u64 = 1 << 17;

/// One mapping: file blocks `[off, off+len)` at filesystem block `fsb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub off: u64,
    pub fsb: u64,
    pub len: u64,
    /// Allocated but unwritten (reads as zeros).
    pub unwritten: bool,
}

/// Decodes the extent record at `b[at..at+16]`.
fn record(b: &[u8], at: usize) -> Extent {
    let l0 = be64(b, at);
    let l1 = be64(b, at + 8);
    Extent {
        unwritten: l0 >> 63 != 0,
        off: (l0 >> 9) & ((1u64 << 54) - 1),
        fsb: ((l0 & 0x1ff) << 43) | (l1 >> 21),
        len: l1 & ((1u64 << 21) - 1),
    }
}

impl Xfs<'_> {
    /// The data fork's extents, in file order.
    pub(super) fn extents(&self, ino: &Inode) -> Result<Vec<Extent>, FsError> {
        self.fork_extents(ino, ino.data_fork(), ino.format(), ino.nextents())
    }

    /// The attribute fork's extents (extents or btree format).
    pub(super) fn attr_extents(&self, ino: &Inode) -> Result<Vec<Extent>, FsError> {
        self.fork_extents(ino, ino.attr_fork(), ino.aformat(), ino.anextents())
    }

    fn fork_extents(&self, ino: &Inode, fork: &[u8], format: u8, nextents: u64) -> Result<Vec<Extent>, FsError> {
        Ok(self.fork_map(ino, fork, format, nextents)?.0)
    }

    /// The data fork's extents and the bmbt blocks holding them (none in extents format).
    pub(super) fn data_map(&self, ino: &Inode) -> Result<(Vec<Extent>, Vec<u64>), FsError> {
        self.fork_map(ino, ino.data_fork(), ino.format(), ino.nextents())
    }

    /// The attribute fork's extents (leaf/node blocks and remote values) and bmbt blocks.
    pub(super) fn attr_map(&self, ino: &Inode) -> Result<(Vec<Extent>, Vec<u64>), FsError> {
        self.fork_map(ino, ino.attr_fork(), ino.aformat(), ino.anextents())
    }

    fn fork_map(&self, ino: &Inode, fork: &[u8], format: u8, nextents: u64) -> Result<(Vec<Extent>, Vec<u64>), FsError> {
        let mut out = Vec::new();
        let mut blocks = Vec::new();
        match format {
            FMT_EXTENTS => {
                let n = nextents;
                if n > (fork.len() / 16) as u64 {
                    return Err(self.invalid(&format!("inode {} di_nextents", ino.ino), n, "more than its fork holds"));
                }
                for i in 0..n as usize {
                    out.push(record(fork, i * 16));
                }
            }
            FMT_BTREE => {
                let level = be16(fork, 0);
                let n = usize::from(be16(fork, 2));
                let maxrecs = fork.len().saturating_sub(4) / 16;
                if level == 0 || level > MAX_LEVELS || n == 0 || n > maxrecs {
                    return Err(self.invalid(
                        &format!("inode {} bmbt root", ino.ino),
                        format!("level {level} numrecs {n}"),
                        "not a valid B+tree root",
                    ));
                }
                let mut budget = MAX_BLOCKS;
                for i in 0..n {
                    let ptr = be64(fork, 4 + maxrecs * 8 + i * 8);
                    self.bmbt_block(ino.ino, ptr, level - 1, &mut out, &mut budget, &mut blocks)?;
                }
            }
            f => return Err(self.invalid(&format!("inode {} fork format", ino.ino), f, "no block map in this fork format")),
        }
        self.check_extents(ino.ino, &out)?;
        Ok((out, blocks))
    }

    fn bmbt_block(&self, owner: u64, fsb: u64, level: u16, out: &mut Vec<Extent>, budget: &mut u64, blocks: &mut Vec<u64>) -> Result<(), FsError> {
        let field = format!("inode {owner} bmbt block {fsb}");
        if *budget == 0 {
            return Err(self.invalid(&field, MAX_BLOCKS, "more bmbt blocks than any fork has"));
        }
        *budget -= 1;
        blocks.push(fsb);
        let mut b = vec![0u8; self.sb.block as usize];
        self.read_fsb(&mut b, fsb, &field)?;
        let (magic, hdr): (&[u8; 4], usize) = if self.sb.v5 { (b"BMA3", 72) } else { (b"BMAP", 24) };
        if b.get(0..4) != Some(magic) {
            return Err(self.invalid(&format!("{field} magic"), format!("{:#010x}", be32(&b, 0)), "not a bmbt block"));
        }
        if self.sb.v5 {
            if !crc_ok(&b, BMBT_CRC) {
                return Err(self.invalid(&format!("{field} crc"), format!("{:#010x}", be32(&b, BMBT_CRC)), "checksum mismatch"));
            }
            if be64(&b, 56) != owner {
                return Err(self.invalid(&format!("{field} owner"), be64(&b, 56), "belongs to another inode"));
            }
        }
        if be16(&b, 4) != level {
            return Err(self.invalid(&format!("{field} level"), be16(&b, 4), format!("expected {level}")));
        }
        let n = usize::from(be16(&b, 6));
        let maxrecs = (b.len() - hdr) / 16;
        if n == 0 || n > maxrecs {
            return Err(self.invalid(&format!("{field} numrecs"), n, format!("not 1..{maxrecs}")));
        }
        if level == 0 {
            for i in 0..n {
                if out.len() as u64 >= MAX_EXTENTS {
                    return Err(self.invalid(&field, out.len(), "too many extents"));
                }
                out.push(record(&b, hdr + i * 16));
            }
            return Ok(());
        }
        for i in 0..n {
            let ptr = be64(&b, hdr + maxrecs * 8 + i * 8);
            self.bmbt_block(owner, ptr, level - 1, out, budget, blocks)?;
        }
        Ok(())
    }

    /// Extents must be in order, non-overlapping, and inside the filesystem.
    fn check_extents(&self, ino: u64, ext: &[Extent]) -> Result<(), FsError> {
        let mut end = 0u64;
        for e in ext {
            let field = format!("inode {ino} extent at file block {}", e.off);
            if e.len == 0 || e.off < end {
                return Err(self.invalid(&field, format!("{}+{}", e.fsb, e.len), "empty or out of order"));
            }
            self.fsb_checked(e.fsb, e.len * self.sb.block, &field)?;
            end = e.off + e.len;
        }
        Ok(())
    }

    /// Reads file bytes `[0, len)` through `ext` (holes and unwritten extents read as zeros).
    pub(super) fn read_mapped(&self, ino: u64, ext: &[Extent], len: u64) -> Result<Vec<u8>, FsError> {
        let bs = self.sb.block;
        let mut out = vec![0u8; len as usize];
        for e in ext {
            let start = e.off.saturating_mul(bs);
            if start >= len || e.unwritten {
                continue;
            }
            let n = (e.len * bs).min(len - start) as usize;
            let dst = &mut out[start as usize..start as usize + n];
            self.read_fsb(dst, e.fsb, &format!("inode {ino} extent"))?;
        }
        Ok(out)
    }

    /// Bytes of a bmbt block header (long form; v5 adds blkno, LSN, UUID, owner, CRC).
    fn bmbt_hdr(&self) -> usize {
        if self.sb.v5 {
            72
        } else {
            24
        }
    }

    /// Blocks a bmbt holding `nrecs` extent records takes under an inode root of `rootmax`
    /// pointers (leaves, then node levels until the keys fit the root); `None` past
    /// [`MAX_LEVELS`] or without room for a root.
    pub(super) fn bmbt_blocks_for(&self, nrecs: usize, rootmax: usize) -> Option<usize> {
        let per = (self.sb.block as usize - self.bmbt_hdr()) / 16;
        if rootmax == 0 || per < 2 {
            return None;
        }
        let mut count = nrecs.div_ceil(per).max(1);
        let mut total = count;
        let mut levels = 1u16;
        while count > rootmax {
            count = count.div_ceil(per);
            total += count;
            levels += 1;
            if levels >= MAX_LEVELS {
                return None;
            }
        }
        Some(total)
    }

    /// Builds a bmbt for `ext` (too many for the inode) on `blocks` (exactly
    /// [`Xfs::bmbt_blocks_for`] of them): leaves of records spread evenly over as few blocks
    /// as hold them (so every block below the root's children is at least half full), then
    /// node levels of (first file offset, block) pairs built the same way until they fit the
    /// root in the inode. Siblings link each level; v5 blocks carry their address, the UUID,
    /// the owner and a CRC. Returns the blocks to write; `None` if `blocks` is the wrong count.
    pub(super) fn bmbt_build(&self, ino: &mut Inode, ext: &[Extent], blocks: &[u64]) -> Option<Vec<(u64, Vec<u8>)>> {
        let bs = self.sb.block as usize;
        let hdr = self.bmbt_hdr();
        let per = (bs - hdr) / 16;
        let fork = ino.data_fork().len();
        let rootmax = fork.saturating_sub(4) / 16;
        if ext.is_empty() || self.bmbt_blocks_for(ext.len(), rootmax) != Some(blocks.len()) {
            return None;
        }
        let mut out = Vec::with_capacity(blocks.len());
        let mut free = blocks.iter().copied();
        // (first file offset, block) of each block of the level just built.
        let mut level: Vec<(u64, u64)> = Vec::new();
        let mut height = 0u16;
        let nrecs = ext.len();
        let nleaves = nrecs.div_ceil(per);
        let mut at = 0;
        let mine: Vec<u64> = free.by_ref().take(nleaves).collect();
        for (k, &fsb) in mine.iter().enumerate() {
            let take = nrecs / nleaves + usize::from(k < nrecs % nleaves);
            let mut b = self.bmbt_block_new(ino.ino, fsb, 0, take, &mine, k);
            for (j, e) in ext[at..at + take].iter().enumerate() {
                let (l0, l1) = super::inode::pack_extent(e);
                set64(&mut b, hdr + 16 * j, l0);
                set64(&mut b, hdr + 16 * j + 8, l1);
            }
            level.push((ext[at].off, fsb));
            at += take;
            out.push((fsb, b));
        }
        while level.len() > rootmax {
            height += 1;
            let n = level.len();
            let nb = n.div_ceil(per);
            let mine: Vec<u64> = free.by_ref().take(nb).collect();
            let mut next = Vec::with_capacity(nb);
            let mut at = 0;
            for (k, &fsb) in mine.iter().enumerate() {
                let take = n / nb + usize::from(k < n % nb);
                let mut b = self.bmbt_block_new(ino.ino, fsb, height, take, &mine, k);
                for (j, &(key, ptr)) in level[at..at + take].iter().enumerate() {
                    set64(&mut b, hdr + 8 * j, key);
                    set64(&mut b, hdr + 8 * per + 8 * j, ptr);
                }
                next.push((level[at].0, fsb));
                at += take;
                out.push((fsb, b));
            }
            level = next;
        }
        for (_, b) in &mut out {
            if self.sb.v5 {
                set_crc(b, BMBT_CRC);
            }
        }
        let mut root = vec![0u8; fork];
        set16(&mut root, 0, height + 1);
        set16(&mut root, 2, level.len() as u16);
        for (k, &(key, ptr)) in level.iter().enumerate() {
            set64(&mut root, 4 + 8 * k, key);
            set64(&mut root, 4 + 8 * rootmax + 8 * k, ptr);
        }
        ino.set_btree_root(&root, nrecs as u64);
        Some(out)
    }

    /// A bmbt block's header: block `k` of `row` (one level, left to right) at `level`
    /// holding `numrecs` records (the CRC is set later).
    fn bmbt_block_new(&self, owner: u64, fsb: u64, level: u16, numrecs: usize, row: &[u64], k: usize) -> Vec<u8> {
        let mut b = vec![0u8; self.sb.block as usize];
        b[0..4].copy_from_slice(if self.sb.v5 { b"BMA3" } else { b"BMAP" });
        set16(&mut b, 4, level);
        set16(&mut b, 6, numrecs as u16);
        set64(&mut b, 8, if k == 0 { u64::MAX } else { row[k - 1] });
        set64(&mut b, 16, row.get(k + 1).copied().unwrap_or(u64::MAX));
        if self.sb.v5 {
            set64(&mut b, 24, self.daddr(fsb >> self.sb.agblklog, fsb & ((1 << self.sb.agblklog) - 1)));
            b[40..56].copy_from_slice(&self.sb.meta_uuid);
            set64(&mut b, 56, owner);
        }
        b
    }

    /// Makes `ext` the data fork of `i`, in memory: in the inode when it fits, else in a
    /// bmbt of the height it needs, its blocks allocated near the inode in `spaces`. The old
    /// tree's blocks `old` are freed first. Returns the bmbt blocks to write (none in
    /// extents format).
    pub(super) fn plan_data_fork(
        &self,
        i: &mut Inode,
        ext: &[Extent],
        old: &[u64],
        spaces: &mut BTreeMap<u64, AgSpace>,
        what: &str,
    ) -> Result<Vec<(u64, Vec<u8>)>, FsError> {
        for &fsb in old {
            self.release(spaces, Mapping { ino: i.ino, fork: Fork::Data, off: None, fsb, len: 1, unwritten: false })?;
        }
        if ext.len() <= i.data_fork_slots() {
            i.set_data_extents(ext);
            return Ok(Vec::new());
        }
        let rootmax = i.data_fork().len().saturating_sub(4) / 16;
        let deep = || self.unsupported(format!("{what}: {} extents need a bmbt deeper than {MAX_LEVELS} levels", ext.len()));
        let nblocks = self.bmbt_blocks_for(ext.len(), rootmax).ok_or_else(deep)?;
        let mut bext = Vec::new();
        self.plan_file_blocks(i.ino, &[], nblocks as u64, Blocks::Bmbt, &mut bext, spaces)?;
        let blocks: Vec<u64> = bext.iter().flat_map(|e| e.fsb..e.fsb + e.len).collect();
        self.bmbt_build(i, ext, &blocks).ok_or_else(deep)
    }
}
