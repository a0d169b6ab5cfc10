//! Adding and removing names in leaf and node directories where the entry fits the blocks
//! the directory already has: the entry goes into the first data block whose best free
//! region holds it (its best-free table recomputed), the (hash, address) pair into the leaf
//! block the da B+tree leads to for that hash (stale entries dropped, the array kept sorted,
//! the keys on the path above kept equal to each leaf's highest hash), and the data block's
//! best free length into the leaf's bests table (leaf form) or the free-index block (node
//! form). When the blocks have no room, or a data or leaf block would be left empty, the
//! whole directory is written again in the smallest form that holds it (shortform, block,
//! leaf, or node form under a da B+tree of any height, with a bmbt block map when its
//! extents outgrow the inode) on newly allocated blocks, the old ones freed.

use super::bmap::Extent;
use super::bytes::{be16, be32, be64, byte, crc_ok, set16, set32, set_crc};
use super::create::Txn;
use super::file::Blocks;
use super::dir::entry_size;
use super::dir_block::name_hash;
use super::inode::Inode;
use super::Xfs;
use crate::fs::FsError;

const LEAF_OFFSET: u64 = 32 << 30;
const FREE_OFFSET: u64 = 64 << 30;
const FREE_TAG: u16 = 0xffff;
/// Deepest da B+tree followed.
const MAX_DA_LEVELS: usize = 5;
/// Most LEAFN blocks read after a removal to see whether a node directory fits leaf form.
const SHRINK_LEAVES: usize = 16;

/// One directory block read through the directory's block map.
struct DBlock {
    /// Byte offset in the directory's address space.
    at: u64,
    b: Vec<u8>,
}

impl Xfs<'_> {
    fn dirblk(&self) -> u64 {
        self.sb.dirblock()
    }

    /// The data blocks `dir`'s block map holds below its size (mapped ones only, so a
    /// corrupt size cannot make the walk long), at most 2^20.
    fn data_blocks(&self, dir: &Inode, ext: &[Extent]) -> Result<Vec<u64>, FsError> {
        let per = self.dirblk() / self.sb.block;
        let limit = dir.size().min(LEAF_OFFSET) / self.dirblk();
        let mut out: Vec<u64> = Vec::new();
        for e in ext {
            let first = e.off / per;
            let end = (e.off + e.len).div_ceil(per).min(limit);
            for db in first..end {
                if out.len() >= 1 << 20 {
                    return Err(self.invalid(&format!("directory inode {} block map", dir.ino), out.len(), "more directory blocks than any directory has"));
                }
                out.push(db);
            }
            if first >= limit {
                break;
            }
        }
        out.dedup();
        Ok(out)
    }

    /// Reads the directory block at byte `at` of `dir`'s address space, or `None` if unmapped.
    fn dir_block_read(&self, t: &Txn, dir: u64, ext: &[Extent], at: u64) -> Result<Option<DBlock>, FsError> {
        let bs = self.sb.block;
        let first = at / bs;
        let n = self.dirblk() / bs;
        let mut b = vec![0u8; self.dirblk() as usize];
        for k in 0..n {
            let lb = first + k;
            let Some(e) = ext.iter().find(|e| e.off <= lb && lb < e.off + e.len) else {
                return Ok(None);
            };
            if e.unwritten {
                return Ok(None);
            }
            let part = &mut b[(k * bs) as usize..((k + 1) * bs) as usize];
            self.read_fsb(part, e.fsb + (lb - e.off), &format!("directory inode {dir} block"))?;
            t.overlay(part, e.fsb + (lb - e.off), bs as usize);
        }
        Ok(Some(DBlock { at, b }))
    }

    /// Queues a changed directory block (v5: CRC at `crc`).
    fn dir_block_queue(&self, t: &mut Txn, ext: &[Extent], d: &mut DBlock, crc: usize) {
        if self.sb.v5 {
            set_crc(&mut d.b, crc);
        }
        let bs = self.sb.block;
        let first = d.at / bs;
        for k in 0..self.dirblk() / bs {
            let lb = first + k;
            if let Some(e) = ext.iter().find(|e| e.off <= lb && lb < e.off + e.len) {
                t.data.push((e.fsb + (lb - e.off), d.b[(k * bs) as usize..((k + 1) * bs) as usize].to_vec()));
            }
        }
    }

    fn data_hdr(&self) -> usize {
        if self.sb.v5 {
            64
        } else {
            16
        }
    }

    /// The free regions (offset, length) of data block `b`, checked (the CRC only when
    /// `as_read`: a block being edited has it stale until it is queued).
    fn data_free(&self, dir: u64, b: &[u8], as_read: bool) -> Result<Vec<(usize, usize)>, FsError> {
        let field = format!("directory inode {dir} data block");
        let magic: &[u8] = if self.sb.v5 { b"XDD3" } else { b"XD2D" };
        if b.get(0..4) != Some(magic) || (self.sb.v5 && ((as_read && !crc_ok(b, 4)) || be64(b, 40) != dir)) {
            return Err(self.invalid(&format!("{field} magic/crc/owner"), format!("{:#010x}", be32(b, 0)), "not this directory's data block"));
        }
        let mut at = self.data_hdr();
        let mut free = Vec::new();
        while at < b.len() {
            let len = if be16(b, at) == FREE_TAG {
                let l = usize::from(be16(b, at + 2));
                free.push((at, l));
                l
            } else {
                entry_size(usize::from(byte(b, at + 8)), self.sb.ftype)
            };
            if len == 0 || len % 8 != 0 || at + len > b.len() {
                return Err(self.invalid(&format!("{field} entry at {at}"), len, "runs past the block"));
            }
            at += len;
        }
        Ok(free)
    }

    /// Rewrites data block `b`'s free regions as one per run of free space and its
    /// best-free table (the three longest); returns the longest.
    fn data_refree(&self, dir: u64, b: &mut [u8]) -> Result<usize, FsError> {
        let free = self.data_free(dir, b, false)?;
        let mut merged: Vec<(usize, usize)> = Vec::new();
        for (o, l) in free {
            match merged.last_mut() {
                Some(m) if m.0 + m.1 == o => m.1 += l,
                _ => merged.push((o, l)),
            }
        }
        for &(o, l) in &merged {
            set16(b, o, FREE_TAG);
            set16(b, o + 2, l as u16);
            set16(b, o + l - 2, o as u16);
        }
        let mut best = merged.clone();
        best.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let bf = if self.sb.v5 { 48 } else { 4 };
        for k in 0..3 {
            let (o, l) = best.get(k).copied().unwrap_or((0, 0));
            set16(b, bf + 4 * k, o as u16);
            set16(b, bf + 4 * k + 2, l as u16);
        }
        Ok(best.first().map_or(0, |x| x.1))
    }

    /// (leaf block magic, da node magic, LEAFN magic) and the da header size.
    fn da_magics(&self) -> (u16, u16, u16, usize) {
        if self.sb.v5 {
            (0x3df1, 0x3ebe, 0x3dff, 64)
        } else {
            (0xd2f1, 0xfebe, 0xd2ff, 16)
        }
    }

    fn da_check(&self, dir: u64, d: &DBlock) -> Result<u16, FsError> {
        let magic = be16(&d.b, 8);
        if self.sb.v5 && (!crc_ok(&d.b, 12) || be64(&d.b, 48) != dir) {
            return Err(self.invalid(&format!("directory inode {dir} leaf/node block at {}", d.at), format!("{magic:#06x}"), "checksum mismatch or another inode's"));
        }
        Ok(magic)
    }

    /// Whether `dir` (extents or bmbt fork, several data blocks) is in leaf or node form.
    fn leaf_form(&self, t: &Txn, dir: &Inode, ext: &[Extent]) -> Result<Option<DBlock>, FsError> {
        let leaf_lb = LEAF_OFFSET / self.sb.block;
        if dir.size() < self.dirblk() || !ext.iter().any(|e| e.off <= leaf_lb && leaf_lb < e.off + e.len) {
            return Ok(None);
        }
        let Some(root) = self.dir_block_read(t, dir.ino, ext, LEAF_OFFSET)? else { return Ok(None) };
        let (leaf1, node, leafn, _) = self.da_magics();
        let m = self.da_check(dir.ino, &root)?;
        Ok((m == leaf1 || m == node || m == leafn).then_some(root))
    }

    /// Follows the da B+tree from `root` to the leaf for `hash`; returns the path of
    /// (node block, entry index) and the leaf.
    fn da_path(&self, t: &Txn, dir: u64, ext: &[Extent], root: DBlock, hash: u32) -> Result<(Vec<(DBlock, usize)>, DBlock), FsError> {
        let (_, node, _, hdr) = self.da_magics();
        let mut path = Vec::new();
        let mut cur = root;
        while self.da_check(dir, &cur)? == node {
            if path.len() >= MAX_DA_LEVELS {
                return Err(self.invalid(&format!("directory inode {dir} da tree"), path.len(), "deeper than any directory"));
            }
            let count = usize::from(be16(&cur.b, if self.sb.v5 { 56 } else { 12 }));
            let max = (cur.b.len() - hdr) / 8;
            if count == 0 || count > max {
                return Err(self.invalid(&format!("directory inode {dir} da node count"), count, format!("not 1..{max}")));
            }
            let k = (0..count).find(|&k| be32(&cur.b, hdr + 8 * k) >= hash).unwrap_or(count - 1);
            let child = u64::from(be32(&cur.b, hdr + 8 * k + 4)) * self.sb.block;
            let next = self
                .dir_block_read(t, dir, ext, child)?
                .ok_or_else(|| self.invalid(&format!("directory inode {dir} da node pointer"), child / self.sb.block, "unmapped"))?;
            path.push((cur, k));
            cur = next;
        }
        Ok((path, cur))
    }

    /// The live (hash, address) entries of a leaf block and where they start.
    fn leaf_entries(&self, dir: u64, l: &DBlock, end: usize) -> Result<Vec<(u32, u32)>, FsError> {
        let (_, _, _, hdr) = self.da_magics();
        let count_off = if self.sb.v5 { 56 } else { 12 };
        let count = usize::from(be16(&l.b, count_off));
        if hdr + 8 * count > end {
            return Err(self.invalid(&format!("directory inode {dir} leaf count"), count, "more than the block holds"));
        }
        Ok((0..count).map(|k| (be32(&l.b, hdr + 8 * k), be32(&l.b, hdr + 8 * k + 4))).filter(|&(_, a)| a != 0).collect())
    }

    /// Stores `ents` (sorted here) as the leaf's entries, stale count 0.
    fn leaf_store(&self, l: &mut DBlock, ents: &mut [(u32, u32)], end: usize) -> bool {
        let (_, _, _, hdr) = self.da_magics();
        if hdr + 8 * ents.len() > end {
            return false;
        }
        ents.sort_unstable();
        let count_off = if self.sb.v5 { 56 } else { 12 };
        set16(&mut l.b, count_off, ents.len() as u16);
        set16(&mut l.b, count_off + 2, 0);
        for k in hdr..end {
            l.b[k] = 0;
        }
        for (k, (h, a)) in ents.iter().enumerate() {
            set32(&mut l.b, hdr + 8 * k, *h);
            set32(&mut l.b, hdr + 8 * k + 4, *a);
        }
        true
    }

    /// Keeps the da node keys on `path` equal to the highest hash below them.
    fn da_fix_keys(&self, t: &mut Txn, ext: &[Extent], path: &mut [(DBlock, usize)], mut high: u32) {
        let (_, _, _, hdr) = self.da_magics();
        for (node, k) in path.iter_mut().rev() {
            let count = usize::from(be16(&node.b, if self.sb.v5 { 56 } else { 12 }));
            if be32(&node.b, hdr + 8 * *k) != high {
                set32(&mut node.b, hdr + 8 * *k, high);
                self.dir_block_queue(t, ext, node, 12);
            }
            if *k + 1 != count {
                break;
            }
            high = be32(&node.b, hdr + 8 * (count - 1));
        }
    }

    /// Sets data block `db`'s best free length in the leaf tail (leaf form) or the
    /// free-index block (node form).
    fn set_best(&self, t: &mut Txn, dir: u64, ext: &[Extent], leaf1: Option<&mut DBlock>, db: u64, best: usize) -> Result<(), FsError> {
        if let Some(l) = leaf1 {
            let n = be32(&l.b, l.b.len() - 4) as usize;
            let at = (l.b.len() - 4).checked_sub(2 * n).ok_or_else(|| self.invalid(&format!("directory inode {dir} leaf bestcount"), n, "too large"))?;
            if db as usize >= n {
                return Err(self.invalid(&format!("directory inode {dir} leaf bestcount"), n, format!("no entry for data block {db}")));
            }
            set16(&mut l.b, at + 2 * db as usize, best as u16);
            return Ok(());
        }
        let fhdr = if self.sb.v5 { 64 } else { 16 };
        let per = ((self.dirblk() as usize) - fhdr) / 2;
        let fat = FREE_OFFSET + (db / per as u64) * self.dirblk();
        let mut f = self
            .dir_block_read(t, dir, ext, fat)?
            .ok_or_else(|| self.invalid(&format!("directory inode {dir} free index"), fat, "unmapped"))?;
        let magic: &[u8] = if self.sb.v5 { b"XDF3" } else { b"XD2F" };
        if f.b.get(0..4) != Some(magic) || (self.sb.v5 && !crc_ok(&f.b, 4)) {
            return Err(self.invalid(&format!("directory inode {dir} free index magic/crc"), format!("{:#010x}", be32(&f.b, 0)), "not a free-index block"));
        }
        let (first, nvalid) = if self.sb.v5 { (be32(&f.b, 48), be32(&f.b, 52)) } else { (be32(&f.b, 4), be32(&f.b, 8)) };
        let idx = db.checked_sub(u64::from(first)).filter(|&i| i < u64::from(nvalid)).ok_or_else(|| self.invalid(&format!("directory inode {dir} free index"), first, format!("does not cover data block {db}")))?;
        set16(&mut f.b, fhdr + 2 * idx as usize, best as u16);
        self.dir_block_queue(t, ext, &mut f, 4);
        Ok(())
    }

    /// End of the entry array of a leaf block (the bests table starts there in leaf form).
    fn leaf_end(&self, l: &DBlock) -> usize {
        let (leaf1, _, _, _) = self.da_magics();
        if be16(&l.b, 8) == leaf1 {
            let n = be32(&l.b, l.b.len() - 4) as usize;
            (l.b.len() - 4).saturating_sub(2 * n)
        } else {
            l.b.len()
        }
    }

    /// Adds `name` to leaf/node directory `dir` in its existing blocks; `Ok(false)` if
    /// `dir` is in another format or its blocks have no room (nothing changed then).
    pub(super) fn leaf_add(&self, t: &mut Txn, dir: &Inode, name: &[u8], ino: u64, ftype: u8) -> Result<bool, FsError> {
        let ext = self.extents(dir)?;
        let Some(root) = self.leaf_form(t, dir, &ext)? else { return Ok(false) };
        let need = entry_size(name.len(), self.sb.ftype);
        let hash = name_hash(name);
        // A data block with room.
        let mut target = None;
        for db in self.data_blocks(dir, &ext)? {
            let Some(d) = self.dir_block_read(t, dir.ino, &ext, db * self.dirblk())? else { continue };
            let free = self.data_free(dir.ino, &d.b, true)?;
            if let Some(&(o, l)) = free.iter().find(|&&(_, l)| l >= need) {
                target = Some((db, d, o, l));
                break;
            }
        }
        let Some((db, mut d, o, l)) = target else { return Ok(false) };
        let (path, mut leaf) = self.da_path(t, dir.ino, &ext, root, hash)?;
        let end = self.leaf_end(&leaf);
        let mut ents = self.leaf_entries(dir.ino, &leaf, end)?;
        let addr = ((d.at + o as u64) >> 3) as u32;
        ents.push((hash, addr));
        if !self.leaf_store(&mut leaf, &mut ents, end) {
            return Ok(false);
        }
        // The entry, and what is left of the free region after it.
        let b = &mut d.b;
        set32(b, o, (ino >> 32) as u32);
        set32(b, o + 4, ino as u32);
        b[o + 8] = name.len() as u8;
        b[o + 9..o + 9 + name.len()].copy_from_slice(name);
        if self.sb.ftype {
            b[o + 9 + name.len()] = ftype;
        }
        for k in o + 9 + name.len() + usize::from(self.sb.ftype)..o + need - 2 {
            b[k] = 0;
        }
        set16(b, o + need - 2, o as u16);
        if l > need {
            set16(b, o + need, FREE_TAG);
            set16(b, o + need + 2, (l - need) as u16);
            set16(b, o + l - 2, (o + need) as u16);
        }
        let best = self.data_refree(dir.ino, &mut d.b)?;
        self.dir_block_queue(t, &ext, &mut d, 4);
        self.finish_leaf(t, dir.ino, &ext, path, leaf, ents.last().map_or(0, |e| e.0), db, best)?;
        Ok(true)
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_leaf(&self, t: &mut Txn, dir: u64, ext: &[Extent], mut path: Vec<(DBlock, usize)>, mut leaf: DBlock, high: u32, db: u64, best: usize) -> Result<(), FsError> {
        let (leaf1, _, _, _) = self.da_magics();
        if be16(&leaf.b, 8) == leaf1 {
            self.set_best(t, dir, ext, Some(&mut leaf), db, best)?;
        } else {
            self.set_best(t, dir, ext, None, db, best)?;
        }
        self.dir_block_queue(t, ext, &mut leaf, 12);
        self.da_fix_keys(t, ext, &mut path, high);
        Ok(())
    }

    /// Removes `name` from leaf/node directory `dir`; `Ok(None)` if `dir` is in another
    /// format.
    pub(super) fn leaf_remove(&self, t: &mut Txn, dir: &mut Inode, name: &[u8], what: &str) -> Result<Option<u64>, FsError> {
        let ext = self.extents(dir)?;
        let Some(root) = self.leaf_form(t, dir, &ext)? else { return Ok(None) };
        let hash = name_hash(name);
        let mut found = None;
        'blocks: for db in self.data_blocks(dir, &ext)? {
            let Some(d) = self.dir_block_read(t, dir.ino, &ext, db * self.dirblk())? else { continue };
            self.data_free(dir.ino, &d.b, true)?;
            let mut at = self.data_hdr();
            while at < d.b.len() {
                if be16(&d.b, at) == FREE_TAG {
                    at += usize::from(be16(&d.b, at + 2)).max(8);
                    continue;
                }
                let n = usize::from(byte(&d.b, at + 8));
                if d.b.get(at + 9..at + 9 + n) == Some(name) {
                    found = Some((db, d, at));
                    break 'blocks;
                }
                at += entry_size(n, self.sb.ftype);
            }
        }
        let Some((db, mut d, at)) = found else {
            return Err(self.invalid(what, "", "name not in the directory"));
        };
        let ino = be64(&d.b, at);
        let len = entry_size(name.len(), self.sb.ftype);
        let addr = ((d.at + at as u64) >> 3) as u32;
        let (path, mut leaf) = self.da_path(t, dir.ino, &ext, root, hash)?;
        let end = self.leaf_end(&leaf);
        let mut ents = self.leaf_entries(dir.ino, &leaf, end)?;
        let before = ents.len();
        ents.retain(|&e| e != (hash, addr));
        if ents.len() + 1 != before {
            return Err(self.invalid(&format!("directory inode {} leaf", dir.ino), format!("{hash:#x}/{addr}"), "no leaf entry for the name"));
        }
        let mut emptied = ents.is_empty();
        self.leaf_store(&mut leaf, &mut ents, end);
        // The entry becomes free space, merged with its neighbours.
        set16(&mut d.b, at, FREE_TAG);
        set16(&mut d.b, at + 2, len as u16);
        set16(&mut d.b, at + len - 2, at as u16);
        let best = self.data_refree(dir.ino, &mut d.b)?;
        emptied |= best + self.data_hdr() == self.dirblk() as usize;
        if emptied {
            // A data or leaf block would be left empty: the directory is written again
            // without it.
            if !self.is_leaf1(t, dir)? {
                return Err(self.unsupported(format!("{what}: emptying a block of directory inode {}", dir.ino)));
            }
            let parent = self.leaf_parent(t, dir)?;
            let mut entries = self.leaf_entries_txn(t, dir)?;
            entries.retain(|e| e.0 != name);
            self.leaf_rebuild(t, dir, parent, &entries, what)?;
            return Ok(Some(ino));
        }
        self.dir_block_queue(t, &ext, &mut d, 4);
        self.finish_leaf(t, dir.ino, &ext, path, leaf, ents.last().map_or(0, |e| e.0), db, best)?;
        if self.leaf_shrinks(t, dir, &ext)? {
            // Small enough for a smaller form (node → leaf, leaf → block), as the kernel
            // converts a directory back when its names fit.
            let parent = self.leaf_parent(t, dir)?;
            let entries = self.leaf_entries_txn(t, dir)?;
            self.leaf_rebuild(t, dir, parent, &entries, what)?;
        }
        Ok(Some(ino))
    }

    /// Whether leaf/node directory `dir` (as this operation left it) fits a smaller form: a
    /// leaf directory of one data block whose names fit a block directory, or a node
    /// directory whose da root points at a few LEAFN blocks (at most [`SHRINK_LEAVES`], all
    /// read) whose live entries fit one leaf block with the bests of its data blocks.
    fn leaf_shrinks(&self, t: &Txn, dir: &Inode, ext: &[Extent]) -> Result<bool, FsError> {
        let Some(root) = self.leaf_form(t, dir, ext)? else { return Ok(false) };
        let (leaf1, node, _, lhdr) = self.da_magics();
        let ndata = self.data_blocks(dir, ext)?.len();
        let magic = self.da_check(dir.ino, &root)?;
        if magic == leaf1 {
            if ndata != 1 {
                return Ok(false);
            }
            let parent = self.leaf_parent(t, dir)?;
            let entries = self.leaf_entries_txn(t, dir)?;
            return Ok(self.block_build(dir.ino, parent, &entries, 0).is_some());
        }
        let (count_off, level_off) = if self.sb.v5 { (56, 58) } else { (12, 14) };
        let count = usize::from(be16(&root.b, count_off));
        if magic != node || be16(&root.b, level_off) != 1 || count == 0 || count > SHRINK_LEAVES {
            return Ok(false);
        }
        let mut live = 0;
        for k in 0..count {
            let child = u64::from(be32(&root.b, lhdr + 8 * k + 4)) * self.sb.block;
            let l = self
                .dir_block_read(t, dir.ino, ext, child)?
                .ok_or_else(|| self.invalid(&format!("directory inode {} da node pointer", dir.ino), child / self.sb.block, "unmapped"))?;
            self.da_check(dir.ino, &l)?;
            live += self.leaf_entries(dir.ino, &l, l.b.len())?.len();
        }
        Ok(lhdr + 8 * live + 4 + 2 * ndata <= self.dirblk() as usize)
    }

    /// Points the ".." entry (data block 0) of leaf/node directory `dir` at `parent`;
    /// `Ok(false)` if `dir` is in another format.
    pub(super) fn leaf_set_parent(&self, t: &mut Txn, dir: &Inode, parent: u64) -> Result<bool, FsError> {
        let ext = self.extents(dir)?;
        if self.leaf_form(t, dir, &ext)?.is_none() {
            return Ok(false);
        }
        let mut d = self.dir_block_read(t, dir.ino, &ext, 0)?.ok_or_else(|| self.invalid(&format!("directory inode {} block 0", dir.ino), 0, "unmapped"))?;
        self.data_free(dir.ino, &d.b, true)?;
        let dot = self.data_hdr();
        let dotdot = dot + entry_size(1, self.sb.ftype);
        if d.b.get(dot + 9) != Some(&b'.') || d.b.get(dotdot + 8..dotdot + 11) != Some(&[2, b'.', b'.'][..]) {
            return Err(self.invalid(&format!("directory inode {} block 0", dir.ino), "", "does not start with \".\" and \"..\""));
        }
        set32(&mut d.b, dotdot, (parent >> 32) as u32);
        set32(&mut d.b, dotdot + 4, parent as u32);
        self.dir_block_queue(t, &ext, &mut d, 4);
        Ok(true)
    }

    /// Writes `dir` again holding `entries`, its old blocks (and bmbt blocks) freed: as a
    /// shortform directory when they fit the inode, else a block directory when they fit one
    /// block, else packed data blocks ("." and ".." first), then one leaf block
    /// (hash-sorted entries, bests table) when the hashes fit it, else node form: half-full
    /// hash-ordered LEAFN blocks (room for names added later) under a da B+tree of the height
    /// they need (full node levels up to one root), free-index blocks with the bests. New
    /// blocks are allocated near the directory; an extent list too long for the inode goes
    /// in a bmbt. For a full block directory, or a leaf/node directory whose blocks have no
    /// room or would be left empty.
    pub(super) fn leaf_rebuild(&self, t: &mut Txn, dir: &mut Inode, parent: u64, entries: &[(Vec<u8>, u64, u8)], what: &str) -> Result<(), FsError> {
        self.check_can_allocate(what)?;
        let (old, old_bmbt) = if dir.format() == super::inode::FMT_LOCAL { (Vec::new(), Vec::new()) } else { self.data_map(dir)? };
        let old_blocks: u64 = old.iter().map(|e| e.len).sum::<u64>() + old_bmbt.len() as u64;
        // Everything the directory had goes back to free space first.
        self.plan_file_blocks(dir.ino, &old, 0, Blocks::Data(0), &mut Vec::new(), &mut t.spaces)?;
        for &fsb in &old_bmbt {
            self.release(&mut t.spaces, super::release::Mapping { ino: dir.ino, fork: super::release::Fork::Data, off: None, fsb, len: 1, unwritten: false })?;
        }
        let fsbs = self.dirblk() / self.sb.block;
        if self.sf_rebuild(dir, parent, entries, what)? {
            dir.set_nblocks(dir.nblocks().saturating_sub(old_blocks));
            return Ok(());
        }
        let entries_vec = entries.to_vec();
        if self.block_build(dir.ino, parent, &entries_vec, 0).is_some() {
            let mut ext = Vec::new();
            self.plan_file_blocks(dir.ino, &[], fsbs, Blocks::Data(0), &mut ext, &mut t.spaces)?;
            if ext.len() > dir.data_fork_slots() {
                return Err(self.unsupported(format!("{what}: directory inode {}: its block takes {} extents", dir.ino, ext.len())));
            }
            let b = self.block_build(dir.ino, parent, &entries_vec, self.dir_daddr(&ext)).ok_or_else(|| self.invalid(what, "", "block form"))?;
            self.queue_dir_block(t, &ext, &b);
            dir.set_data_extents(&ext);
            dir.set_size(self.dirblk());
            dir.set_nblocks((dir.nblocks() + fsbs).saturating_sub(old_blocks));
            return Ok(());
        }
        let dbs = self.dirblk() as usize;
        let hdr = self.data_hdr();
        // Data blocks.
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        let mut leaf: Vec<(u32, u32)> = Vec::new();
        let mut best: Vec<usize> = Vec::new();
        let all = [(b".".to_vec(), dir.ino, 2u8), (b"..".to_vec(), parent, 2u8)];
        let mut at = dbs;
        for (name, ino, ft) in all.iter().chain(entries.iter()) {
            let len = entry_size(name.len(), self.sb.ftype);
            if at + len > dbs {
                let mut b = vec![0u8; dbs];
                b[0..4].copy_from_slice(if self.sb.v5 { b"XDD3" } else { b"XD2D" });
                blocks.push(b);
                best.push(0);
                at = hdr;
            }
            let db = blocks.len() - 1;
            let b = &mut blocks[db];
            set32(b, at, (ino >> 32) as u32);
            set32(b, at + 4, *ino as u32);
            b[at + 8] = name.len() as u8;
            b[at + 9..at + 9 + name.len()].copy_from_slice(name);
            if self.sb.ftype {
                b[at + 9 + name.len()] = *ft;
            }
            set16(b, at + len - 2, at as u16);
            leaf.push((name_hash(name), ((db * dbs + at) >> 3) as u32));
            at += len;
            if at < dbs {
                let free = dbs - at;
                set16(b, at, FREE_TAG);
                set16(b, at + 2, free as u16);
                set16(b, dbs - 2, at as u16);
                best[db] = free;
            } else {
                best[db] = 0;
            }
        }
        let n = blocks.len();
        let (leaf1, node_magic, leafn, lhdr) = self.da_magics();
        let tail = 4 + 2 * n;
        let node = lhdr + 8 * leaf.len() + tail > dbs;
        // Node form: LEAFN blocks half full, then da node levels (full) up to one root.
        let per_node = (dbs - lhdr) / 8;
        let nleaves = if node { leaf.len().div_ceil((per_node / 2).max(1)) } else { 1 };
        let mut inner = 0usize;
        let mut count = nleaves;
        while node && count > per_node {
            count = count.div_ceil(per_node);
            inner += count;
            if inner + nleaves > (FREE_OFFSET - LEAF_OFFSET) as usize / dbs {
                return Err(self.unsupported(format!("{what}: directory inode {}: {} entries", dir.ino, leaf.len())));
            }
        }
        let fhdr = if self.sb.v5 { 64 } else { 16 };
        let per_free = (dbs - fhdr) / 2;
        let nfree = if node { n.div_ceil(per_free) } else { 0 };
        let mut ext = Vec::new();
        self.plan_file_blocks(dir.ino, &[], n as u64 * fsbs, Blocks::Data(0), &mut ext, &mut t.spaces)?;
        let leafspace = if node { 1 + nleaves as u64 + inner as u64 } else { 1 };
        for (base, count) in [(LEAF_OFFSET, leafspace), (FREE_OFFSET, nfree as u64)] {
            if count == 0 {
                continue;
            }
            let mut more = Vec::new();
            self.plan_file_blocks(dir.ino, &[], count * fsbs, Blocks::Data(base / self.sb.block), &mut more, &mut t.spaces)?;
            ext.extend(more);
        }
        for (db, b) in blocks.into_iter().enumerate() {
            let mut d = DBlock { at: db as u64 * self.dirblk(), b };
            let daddr = self.dir_fsb(&ext, d.at);
            if self.sb.v5 {
                super::bytes::set64(&mut d.b, 8, daddr);
                d.b[24..40].copy_from_slice(&self.sb.meta_uuid);
                super::bytes::set64(&mut d.b, 40, dir.ino);
            }
            self.data_refree(dir.ino, &mut d.b)?;
            self.dir_block_queue(t, &ext, &mut d, 4);
        }
        let da_block = |this: &Self, at: u64, magic: u16| {
            let mut l = DBlock { at, b: vec![0u8; dbs] };
            set16(&mut l.b, 8, magic);
            if this.sb.v5 {
                let daddr = this.dir_fsb(&ext, at);
                super::bytes::set64(&mut l.b, 16, daddr);
                l.b[32..48].copy_from_slice(&this.sb.meta_uuid);
                super::bytes::set64(&mut l.b, 48, dir.ino);
            }
            l
        };
        if !node {
            let mut l = da_block(self, LEAF_OFFSET, leaf1);
            let end = dbs - tail;
            self.leaf_store(&mut l, &mut leaf, end);
            for (k, bl) in best.iter().enumerate() {
                set16(&mut l.b, end + 2 * k, *bl as u16);
            }
            set32(&mut l.b, dbs - 4, n as u32);
            self.dir_block_queue(t, &ext, &mut l, 12);
        } else {
            leaf.sort_unstable();
            // Da block `k` of the leaf space (0: the root, then the leaves, then the nodes
            // below the root, level by level) as a directory block number and byte offset.
            let dablk = |k: usize| (LEAF_OFFSET + k as u64 * self.dirblk()) / self.sb.block;
            let da_at = |k: usize| LEAF_OFFSET + k as u64 * self.dirblk();
            // (highest hash, da block) of each block of the level just built.
            let mut row: Vec<(u32, u32)> = Vec::with_capacity(nleaves);
            let mut at = 0;
            for k in 0..nleaves {
                let take = leaf.len() / nleaves + usize::from(k < leaf.len() % nleaves);
                let mut part = leaf[at..at + take].to_vec();
                at += take;
                let mut l = da_block(self, da_at(1 + k), leafn);
                if k > 0 {
                    set32(&mut l.b, 4, dablk(k) as u32);
                }
                if k + 1 < nleaves {
                    set32(&mut l.b, 0, dablk(k + 2) as u32);
                }
                self.leaf_store(&mut l, &mut part, dbs);
                row.push((part.last().map_or(0, |e| e.0), dablk(1 + k) as u32));
                self.dir_block_queue(t, &ext, &mut l, 12);
            }
            let (count_off, level_off) = if self.sb.v5 { (56, 58) } else { (12, 14) };
            let mut next_k = 1 + nleaves;
            let mut level = 1u16;
            loop {
                let root = row.len() <= per_node;
                let nb = if root { 1 } else { row.len().div_ceil(per_node) };
                let first = next_k;
                let mut up = Vec::with_capacity(nb);
                let mut at = 0;
                for j in 0..nb {
                    let take = row.len() / nb + usize::from(j < row.len() % nb);
                    let k = if root { 0 } else { first + j };
                    let mut b = da_block(self, da_at(k), node_magic);
                    if !root && j > 0 {
                        set32(&mut b.b, 4, dablk(first + j - 1) as u32);
                    }
                    if !root && j + 1 < nb {
                        set32(&mut b.b, 0, dablk(first + j + 1) as u32);
                    }
                    set16(&mut b.b, count_off, take as u16);
                    set16(&mut b.b, level_off, level);
                    for (e, &(h, p)) in row[at..at + take].iter().enumerate() {
                        set32(&mut b.b, lhdr + 8 * e, h);
                        set32(&mut b.b, lhdr + 8 * e + 4, p);
                    }
                    up.push((row[at + take - 1].0, dablk(k) as u32));
                    at += take;
                    self.dir_block_queue(t, &ext, &mut b, 12);
                }
                if root {
                    break;
                }
                next_k += nb;
                level += 1;
                row = up;
            }
            for f in 0..nfree {
                let mut b = DBlock { at: FREE_OFFSET + f as u64 * self.dirblk(), b: vec![0u8; dbs] };
                let first = f * per_free;
                let valid = (n - first).min(per_free);
                b.b[0..4].copy_from_slice(if self.sb.v5 { b"XDF3" } else { b"XD2F" });
                let h = if self.sb.v5 {
                    let daddr = self.dir_fsb(&ext, b.at);
                    super::bytes::set64(&mut b.b, 8, daddr);
                    b.b[24..40].copy_from_slice(&self.sb.meta_uuid);
                    super::bytes::set64(&mut b.b, 40, dir.ino);
                    48
                } else {
                    4
                };
                set32(&mut b.b, h, first as u32);
                set32(&mut b.b, h + 4, valid as u32);
                set32(&mut b.b, h + 8, valid as u32);
                for k in 0..valid {
                    set16(&mut b.b, fhdr + 2 * k, best[first + k] as u16);
                }
                self.dir_block_queue(t, &ext, &mut b, 4);
            }
        }
        let bmbt = self.plan_data_fork(dir, &ext, &[], &mut t.spaces, what)?;
        dir.set_size(n as u64 * self.dirblk());
        let new_blocks: u64 = ext.iter().map(|e| e.len).sum::<u64>() + bmbt.len() as u64;
        dir.set_nblocks((dir.nblocks() + new_blocks).saturating_sub(old_blocks));
        t.data.extend(bmbt);
        Ok(())
    }

    /// The 512-byte address of the directory block at byte `at` (v5 headers record it).
    fn dir_fsb(&self, ext: &[Extent], at: u64) -> u64 {
        let lb = at / self.sb.block;
        let fsb = ext.iter().find(|e| e.off <= lb && lb < e.off + e.len).map_or(0, |e| e.fsb + (lb - e.off));
        self.daddr(fsb >> self.sb.agblklog, fsb & ((1 << self.sb.agblklog) - 1))
    }

    /// Whether `dir` is a leaf or node directory this writer can write again whole.
    pub(super) fn is_leaf1(&self, t: &Txn, dir: &Inode) -> Result<bool, FsError> {
        let ext = self.extents(dir)?;
        Ok(self.leaf_form(t, dir, &ext)?.is_some())
    }

    /// The entries of leaf/node directory `dir` as this operation left them so far.
    pub(super) fn leaf_entries_txn(&self, t: &Txn, dir: &Inode) -> Result<Vec<(Vec<u8>, u64, u8)>, FsError> {
        let ext = self.extents(dir)?;
        let mut out = Vec::new();
        for db in self.data_blocks(dir, &ext)? {
            if let Some(d) = self.dir_block_read(t, dir.ino, &ext, db * self.dirblk())? {
                self.data_block(dir.ino, &d.b, false, &mut out)?;
            }
        }
        Ok(out.into_iter().map(|e| (e.name, e.ino, e.ftype)).collect())
    }

    /// ".." of leaf/node directory `dir` (data block 0's second entry).
    pub(super) fn leaf_parent(&self, t: &Txn, dir: &Inode) -> Result<u64, FsError> {
        let ext = self.extents(dir)?;
        let d = self.dir_block_read(t, dir.ino, &ext, 0)?.ok_or_else(|| self.invalid(&format!("directory inode {} block 0", dir.ino), 0, "unmapped"))?;
        let dotdot = self.data_hdr() + entry_size(1, self.sb.ftype);
        if d.b.get(dotdot + 8..dotdot + 11) != Some(&[2, b'.', b'.'][..]) {
            return Err(self.invalid(&format!("directory inode {} block 0", dir.ino), "", "no \"..\" entry"));
        }
        Ok(be64(&d.b, dotdot))
    }
}
