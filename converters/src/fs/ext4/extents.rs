//! Extent trees: walking (with every field checked) and building a fresh tree for a file.

use super::bytes::{crc32c_raw, le16, le32, set16, set32};
use super::filemap::{Mapping, Run};
use super::inode::Inode;
use super::{Ext4, FsError};

const MAGIC: u16 = 0xF30A;
const MAX_DEPTH: u16 = 5;
/// Longest initialised extent; uninitialised ones hold one block less.
const MAX_LEN: u64 = 32768;

struct Walk {
    seed: u32,
    ino: u32,
    /// Logical block the next extent may start at (extents are sorted, non-overlapping).
    next: u64,
    /// Extents + tree blocks left before the tree is larger than the filesystem could hold.
    budget: u64,
}

impl Ext4<'_> {
    pub(super) fn extent_mapping(&self, inode: &Inode) -> Result<Mapping, FsError> {
        let mut map = Mapping::default();
        let mut w = Walk { seed: self.seed_of(inode), ino: inode.ino, next: 0, budget: self.sb.blocks_count };
        self.walk_node(inode.i_block(), None, &mut w, &mut map)?;
        Ok(map)
    }

    fn walk_node(&self, node: &[u8], want_depth: Option<u16>, w: &mut Walk, map: &mut Mapping) -> Result<(), FsError> {
        let ino = w.ino;
        let field = |f: &str| format!("inode {ino} extent {f}");
        if le16(node, 0) != MAGIC {
            return Err(self.invalid(&field("header magic"), format!("{:#x}", le16(node, 0)), "not an extent tree"));
        }
        let (entries, max, depth) = (le16(node, 2), le16(node, 4), le16(node, 6));
        if entries > max || 12 + 12 * usize::from(max) > node.len() {
            return Err(self.invalid(&field("header entries"), format!("{entries}/{max}"), "more than the node holds"));
        }
        if want_depth.is_some_and(|d| d != depth) || depth > MAX_DEPTH {
            return Err(self.invalid(&field("depth"), depth, "inconsistent tree depth"));
        }
        let mut last_index: Option<u64> = None;
        for i in 0..usize::from(entries) {
            let e = node.get(12 + 12 * i..24 + 12 * i).unwrap_or(&[]);
            w.budget = w
                .budget
                .checked_sub(1)
                .ok_or_else(|| self.invalid(&field("count"), "too many", "larger than the filesystem"))?;
            let lblk = u64::from(le32(e, 0));
            if depth == 0 {
                let raw_len = u64::from(le16(e, 4));
                let (len, uninit) = if raw_len > MAX_LEN { (raw_len - MAX_LEN, true) } else { (raw_len, false) };
                let pblk = u64::from(le32(e, 8)) | (u64::from(le16(e, 6)) << 32);
                if len == 0 || lblk < w.next || lblk + len > 1 << 32 {
                    return Err(self.invalid(
                        &field("at logical block"),
                        lblk,
                        "zero-length, overlapping or unsorted extent",
                    ));
                }
                self.check_block(pblk, len)?;
                w.next = lblk + len;
                map.runs.push(Run { lblk, pblk, len, uninit });
            } else {
                let child = u64::from(le32(e, 4)) | (u64::from(le16(e, 8)) << 32);
                if last_index.is_some_and(|l| lblk <= l) {
                    return Err(self.invalid(&field("index at logical block"), lblk, "unsorted index"));
                }
                last_index = Some(lblk);
                self.check_block(child, 1)?;
                let block = self.read_block(child)?;
                if self.sb.has_csum() {
                    let tail = 12 + 12 * usize::from(le16(&block, 4));
                    let have = le32(&block, tail);
                    if tail + 4 > block.len() || crc32c_raw(w.seed, block.get(..tail).unwrap_or(&[])) != have {
                        return Err(self.invalid(&field("block checksum"), child, "does not match"));
                    }
                }
                map.meta.push(child);
                self.walk_node(&block, Some(depth - 1), w, map)?;
            }
        }
        Ok(())
    }

    /// Writes a new extent tree for `runs` (sorted, non-overlapping) into `inode`, allocating
    /// tree blocks near `goal`. Returns how many tree blocks it used.
    pub(super) fn build_extent_tree(&mut self, inode: &mut Inode, runs: &[Run], goal: u64) -> Result<u64, FsError> {
        let mut pieces: Vec<Run> = Vec::new();
        for r in runs {
            let cap = if r.uninit { MAX_LEN - 1 } else { MAX_LEN };
            let mut done = 0;
            while done < r.len {
                let len = cap.min(r.len - done);
                pieces.push(Run { lblk: r.lblk + done, pblk: r.pblk + done, len, uninit: r.uninit });
                done += len;
            }
        }
        let per = ((self.sb.block_size - 12) / 12) as usize;
        // Node counts per level, leaves first, until the root (4 entries) can point at them.
        let mut levels: Vec<usize> = Vec::new();
        let mut n = pieces.len();
        while n > 4 {
            n = n.div_ceil(per);
            levels.push(n);
        }
        if levels.len() > usize::from(MAX_DEPTH) {
            return Err(self.invalid("extent count", pieces.len(), "too many extents for one file"));
        }
        let total: usize = levels.iter().sum();
        let mut blocks: Vec<u64> = Vec::with_capacity(total);
        for (s, l) in self.alloc_blocks(total as u64, goal)? {
            blocks.extend(s..s + l);
        }
        let seed = self.seed_of(inode);
        // Entries of the level being built: (first logical block, 12-byte entry).
        let mut entries: Vec<(u64, [u8; 12])> = pieces
            .iter()
            .map(|p| {
                let mut e = [0u8; 12];
                set32(&mut e, 0, p.lblk as u32);
                set16(&mut e, 4, (p.len + if p.uninit { MAX_LEN } else { 0 }) as u16);
                set16(&mut e, 6, (p.pblk >> 32) as u16);
                set32(&mut e, 8, p.pblk as u32);
                (p.lblk, e)
            })
            .collect();
        let mut next_block = blocks.into_iter();
        for depth in 0..levels.len() {
            let mut parents = Vec::new();
            for chunk in entries.chunks(per) {
                let Some(b) = next_block.next() else {
                    return Err(self.invalid("extent tree", depth, "block count miscomputed"));
                };
                let mut node = vec![0u8; self.sb.block_size as usize];
                write_header(&mut node, chunk.len(), per, depth);
                for (i, (_, e)) in chunk.iter().enumerate() {
                    node[12 + 12 * i..24 + 12 * i].copy_from_slice(e);
                }
                if self.sb.has_csum() {
                    let tail = 12 + 12 * per;
                    let c = crc32c_raw(seed, &node[..tail]);
                    set32(&mut node, tail, c);
                }
                self.write_block(b, &node)?;
                let mut ie = [0u8; 12];
                set32(&mut ie, 0, chunk[0].0 as u32);
                set32(&mut ie, 4, b as u32);
                set16(&mut ie, 8, (b >> 32) as u16);
                parents.push((chunk[0].0, ie));
            }
            entries = parents;
        }
        let root = inode.i_block_mut();
        root.fill(0);
        write_header(root, entries.len(), 4, levels.len());
        for (i, (_, e)) in entries.iter().enumerate() {
            if let Some(slot) = root.get_mut(12 + 12 * i..24 + 12 * i) {
                slot.copy_from_slice(e);
            }
        }
        Ok(total as u64)
    }
}

pub(super) fn write_header(node: &mut [u8], entries: usize, max: usize, depth: usize) {
    set16(node, 0, MAGIC);
    set16(node, 2, entries as u16);
    set16(node, 4, max as u16);
    set16(node, 6, depth as u16);
    set32(node, 8, 0);
}
