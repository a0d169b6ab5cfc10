//! Short-form AG B+trees (the free-space bnobt and cntbt, the inobt/finobt, the rmapbt): reading every record of a tree
//! with each block checked (magic, level, record count, v5 CRC/owner/UUID/address), and
//! writing a tree of any height from a sorted record list onto given blocks.
//!
//! Block header: magic, level, numrecs, left and right siblings (AG block numbers); v5 adds
//! the block's disk address, LSN, UUID, owning AG and CRC. Leaves hold records, nodes hold
//! keys (the first record of each child) followed by child pointers at `hdr + maxrecs * key`.
//! The rmapbt's records may overlap, so its node keys are pairs: the child's lowest key and
//! the highest key any record under it reaches (see [`super::rmap`]).

use super::bytes::{be16, be32, be64, crc_ok, set16, set32, set64, set_crc};
use super::Xfs;
use crate::fs::FsError;

const HDR_V4: usize = 16;
const HDR_V5: usize = 56;
const CRC_V5: usize = 52;
/// "No sibling".
const NULL_AGBNO: u32 = u32::MAX;
/// Deepest AG B+tree accepted when reading (the kernel's limit for the free-space trees of
/// the largest AG is 5 or so).
pub const MAX_LEVELS: u32 = 9;

/// One tree's on-disk identity.
#[derive(Clone, Copy)]
pub struct Kind {
    pub name: &'static str,
    pub magic_v4: &'static [u8; 4],
    pub magic_v5: &'static [u8; 4],
    /// Record and key sizes in bytes (pointers are 4 bytes; a low/high key pair for
    /// overlapping trees).
    pub rec: usize,
    pub key: usize,
    /// Node keys are (low, high) pairs made by [`super::rmap::leaf_key`]/[`super::rmap::node_key`].
    pub overlapping: bool,
}

pub const BNOBT: Kind = Kind { name: "bnobt", magic_v4: b"ABTB", magic_v5: b"AB3B", rec: 8, key: 8, overlapping: false };
pub const CNTBT: Kind = Kind { name: "cntbt", magic_v4: b"ABTC", magic_v5: b"AB3C", rec: 8, key: 8, overlapping: false };
/// v5 only (there is no v4 magic).
pub const RMAPBT: Kind = Kind { name: "rmapbt", magic_v4: b"RMB3", magic_v5: b"RMB3", rec: 24, key: 40, overlapping: true };

/// A whole tree as read: its records in key order and the AG blocks it occupies.
pub struct Tree {
    pub recs: Vec<Vec<u8>>,
    pub blocks: Vec<u64>,
}

impl Xfs<'_> {
    fn bt_hdr(&self) -> usize {
        if self.sb.v5 {
            HDR_V5
        } else {
            HDR_V4
        }
    }

    /// Most records in a leaf and most keys in a node of a tree of `kind`.
    pub(super) fn bt_maxrecs(&self, kind: Kind) -> (usize, usize) {
        let room = self.sb.block as usize - self.bt_hdr();
        (room / kind.rec, room / (kind.key + 4))
    }

    /// The kernel's bound on the height of a tree of `kind` holding `records` records (each
    /// block at least half full).
    pub(super) fn bt_maxlevels(&self, kind: Kind, records: u64) -> u32 {
        let (leaf, node) = self.bt_maxrecs(kind);
        let (leaf, node) = ((leaf / 2).max(1) as u64, (node / 2).max(2) as u64);
        let mut blocks = records.div_ceil(leaf);
        let mut levels = 1;
        while blocks > 1 {
            blocks = blocks.div_ceil(node);
            levels += 1;
        }
        levels
    }

    /// Reads the tree of `kind` in AG `ag` rooted at `root` with `levels` levels. Reads at
    /// most as many blocks and records as the AG has blocks, so a looping tree ends.
    pub(super) fn bt_read(&self, ag: u64, kind: Kind, root: u64, levels: u32) -> Result<Tree, FsError> {
        let field = format!("AG {ag} {} root", kind.name);
        if levels == 0 || levels > MAX_LEVELS {
            return Err(self.invalid(&format!("AG {ag} {} levels", kind.name), levels, format!("not 1..{MAX_LEVELS}")));
        }
        let mut tree = Tree { recs: Vec::new(), blocks: Vec::new() };
        let mut level_blocks = vec![root];
        for level in (0..levels).rev() {
            let mut next = Vec::new();
            for &bno in &level_blocks {
                if tree.blocks.len() as u64 >= self.sb.ag_len(ag) {
                    return Err(self.invalid(&field, root, "more tree blocks than the AG has"));
                }
                tree.blocks.push(bno);
                let b = self.bt_block(ag, kind, bno, level)?;
                let n = usize::from(be16(&b, 6));
                let hdr = self.bt_hdr();
                if level == 0 {
                    for k in 0..n {
                        tree.recs.push(b[hdr + k * kind.rec..hdr + (k + 1) * kind.rec].to_vec());
                    }
                } else {
                    let (_, maxkeys) = self.bt_maxrecs(kind);
                    for k in 0..n {
                        next.push(u64::from(be32(&b, hdr + maxkeys * kind.key + k * 4)));
                    }
                }
            }
            level_blocks = next;
        }
        Ok(tree)
    }

    /// Reads and checks one block of a tree of `kind` in AG `ag`, expected at `level`.
    fn bt_block(&self, ag: u64, kind: Kind, bno: u64, level: u32) -> Result<Vec<u8>, FsError> {
        let field = format!("AG {ag} {} block {bno}", kind.name);
        if bno == 0 || bno >= self.sb.ag_len(ag) {
            return Err(self.invalid(&field, bno, "outside the AG"));
        }
        let mut b = vec![0u8; self.sb.block as usize];
        self.read_fsb(&mut b, (ag << self.sb.agblklog) | bno, &field)?;
        let magic = if self.sb.v5 { kind.magic_v5 } else { kind.magic_v4 };
        if b.get(0..4) != Some(&magic[..]) {
            return Err(self.invalid(&format!("{field} magic"), format!("{:#010x}", be32(&b, 0)), format!("not a {} block", kind.name)));
        }
        if u32::from(be16(&b, 4)) != level {
            return Err(self.invalid(&format!("{field} level"), be16(&b, 4), format!("expected {level}")));
        }
        let (leaf, node) = self.bt_maxrecs(kind);
        let max = if level == 0 { leaf } else { node };
        let n = usize::from(be16(&b, 6));
        if n > max || (level > 0 && n == 0) {
            return Err(self.invalid(&format!("{field} numrecs"), n, format!("not {}..{max}", usize::from(level > 0))));
        }
        if self.sb.v5 {
            if !crc_ok(&b, CRC_V5) {
                return Err(self.invalid(&format!("{field} crc"), format!("{:#010x}", be32(&b, CRC_V5)), "checksum mismatch"));
            }
            if u64::from(be32(&b, 48)) != ag || b.get(32..48) != Some(&self.sb.meta_uuid[..]) {
                return Err(self.invalid(&format!("{field} owner"), be32(&b, 48), "not this AG's, or another filesystem's UUID"));
            }
            if be64(&b, 16) != self.daddr(ag, bno) {
                return Err(self.invalid(&format!("{field} blkno"), be64(&b, 16), "not this block's address"));
            }
        }
        Ok(b)
    }

    /// 512-byte sector address of AG block `bno` (v5 headers record it).
    pub(super) fn daddr(&self, ag: u64, bno: u64) -> u64 {
        (ag * self.sb.agblocks + bno) * (self.sb.block / 512)
    }

    /// Blocks a tree of `kind` holding `n` records takes when built by [`Xfs::bt_write`].
    pub(super) fn bt_blocks_for(&self, kind: Kind, n: usize) -> (usize, u32) {
        let (leaf, node) = self.bt_maxrecs(kind);
        let mut count = n.div_ceil(leaf).max(1);
        let (mut total, mut levels) = (count, 1);
        while count > 1 {
            count = count.div_ceil(node);
            total += count;
            levels += 1;
        }
        (total, levels)
    }

    /// Writes a tree of `kind` in AG `ag` holding `recs` (in key order) onto `blocks` (as
    /// many as [`Xfs::bt_blocks_for`] says), records spread evenly so every block but a
    /// lone root is at least half full. `lsn` is stamped into v5 headers. Returns the root
    /// block and the number of levels.
    pub(super) fn bt_write(&self, ag: u64, kind: Kind, recs: &[Vec<u8>], blocks: &[u64], lsn: u64) -> Result<(u64, u32), FsError> {
        let (leaf, node) = self.bt_maxrecs(kind);
        let hdr = self.bt_hdr();
        let bs = self.sb.block as usize;
        let mut used = 0usize;
        // (first key, block) of each block of the level just written.
        let mut children: Vec<(Vec<u8>, u64)> = Vec::new();
        let mut level = 0u32;
        loop {
            let items = if level == 0 { recs.len() } else { children.len() };
            let per = if level == 0 { leaf } else { node };
            let nblocks = items.div_ceil(per).max(1);
            let mine = blocks.get(used..used + nblocks).ok_or_else(|| self.invalid(kind.name, nblocks, "not enough blocks reserved"))?;
            used += nblocks;
            let mut next = Vec::with_capacity(nblocks);
            let mut at = 0usize;
            for (k, &bno) in mine.iter().enumerate() {
                let n = items / nblocks + usize::from(k < items % nblocks);
                let mut b = vec![0u8; bs];
                b[0..4].copy_from_slice(if self.sb.v5 { kind.magic_v5 } else { kind.magic_v4 });
                set16(&mut b, 4, level as u16);
                set16(&mut b, 6, n as u16);
                set32(&mut b, 8, if k == 0 { NULL_AGBNO } else { mine[k - 1] as u32 });
                set32(&mut b, 12, mine.get(k + 1).map_or(NULL_AGBNO, |&s| s as u32));
                let first_key;
                if level == 0 {
                    for (j, r) in recs[at..at + n].iter().enumerate() {
                        b[hdr + j * kind.rec..hdr + (j + 1) * kind.rec].copy_from_slice(r);
                    }
                    first_key = if kind.overlapping {
                        super::rmap::leaf_key(&recs[at..at + n])
                    } else {
                        recs.get(at).map_or_else(|| vec![0u8; kind.key], |r| r[..kind.key].to_vec())
                    };
                } else {
                    for (j, (key, ptr)) in children[at..at + n].iter().enumerate() {
                        b[hdr + j * kind.key..hdr + (j + 1) * kind.key].copy_from_slice(key);
                        set32(&mut b, hdr + node * kind.key + j * 4, *ptr as u32);
                    }
                    first_key = if kind.overlapping {
                        super::rmap::node_key(&children[at..at + n].iter().map(|(k, _)| &k[..]).collect::<Vec<_>>())
                    } else {
                        children[at].0.clone()
                    };
                }
                at += n;
                if self.sb.v5 {
                    set64(&mut b, 16, self.daddr(ag, bno));
                    set64(&mut b, 24, lsn);
                    b[32..48].copy_from_slice(&self.sb.meta_uuid);
                    set32(&mut b, 48, ag as u32);
                    set_crc(&mut b, CRC_V5);
                }
                self.write_fsb(&b, (ag << self.sb.agblklog) | bno, kind.name)?;
                next.push((first_key, bno));
            }
            if nblocks == 1 {
                return Ok((mine[0], level + 1));
            }
            children = next;
            level += 1;
        }
    }
}
