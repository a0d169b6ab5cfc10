//! ext2/ext3 block maps: 12 direct pointers, then single, double and triple indirect blocks.

use super::bytes::{le32, set32};
use super::filemap::{Mapping, Run};
use super::inode::Inode;
use super::{Ext4, FsError};

impl Ext4<'_> {
    fn ptrs_per_block(&self) -> u64 {
        self.sb.block_size / 4
    }

    /// Maps a block-mapped inode; blocks mapped at or past `limit` (the file's size in blocks)
    /// are refused, which also bounds the walk.
    pub(super) fn blockmap_mapping(&self, inode: &Inode, limit: u64) -> Result<Mapping, FsError> {
        let mut map = Mapping::default();
        let mut budget = self.sb.blocks_count;
        let p = self.ptrs_per_block();
        let ib = inode.i_block();
        let mut base = 0u64;
        for slot in 0..15usize {
            let ptr = u64::from(le32(ib, slot * 4));
            let (level, span) = match slot {
                0..=11 => (0, 1),
                12 => (1, p),
                13 => (2, p * p),
                _ => (3, p * p * p),
            };
            if ptr != 0 {
                self.map_ptr(inode.ino, ptr, level, base, limit, &mut map, &mut budget)?;
            }
            base += span;
        }
        Ok(map)
    }

    #[allow(clippy::too_many_arguments)]
    fn map_ptr(
        &self,
        ino: u32,
        ptr: u64,
        level: u32,
        base: u64,
        limit: u64,
        map: &mut Mapping,
        budget: &mut u64,
    ) -> Result<(), FsError> {
        if base >= limit {
            return Err(self.invalid(&format!("inode {ino} block map"), base, "block mapped past the end of the file"));
        }
        self.check_block(ptr, 1)?;
        *budget = budget
            .checked_sub(1)
            .ok_or_else(|| self.invalid(&format!("inode {ino} block map"), ptr, "more blocks than the filesystem"))?;
        if level == 0 {
            match map.runs.last_mut() {
                Some(r) if r.lblk + r.len == base && r.pblk + r.len == ptr => r.len += 1,
                _ => map.runs.push(Run { lblk: base, pblk: ptr, len: 1, uninit: false }),
            }
            return Ok(());
        }
        map.meta.push(ptr);
        let block = self.read_block(ptr)?;
        let p = self.ptrs_per_block();
        let span = p.pow(level - 1);
        for j in 0..p {
            let child = u64::from(le32(&block, (j * 4) as usize));
            if child != 0 {
                self.map_ptr(ino, child, level - 1, base + j * span, limit, map, budget)?;
            }
        }
        Ok(())
    }

    /// Writes block pointers for `runs` into `inode`, allocating indirect blocks near `goal`.
    /// Returns how many indirect blocks it used.
    pub(super) fn build_blockmap(&mut self, inode: &mut Inode, runs: &[Run], goal: u64) -> Result<u64, FsError> {
        let p = self.ptrs_per_block();
        let mut pairs: Vec<(u64, u32)> = Vec::new();
        for r in runs {
            if r.uninit {
                return Err(self.unsupported("uninitialised extents in a block-mapped file"));
            }
            for k in 0..r.len {
                let pb = u32::try_from(r.pblk + k)
                    .map_err(|_| self.invalid("block number", r.pblk + k, "above 2^32 in a block-mapped file"))?;
                pairs.push((r.lblk + k, pb));
            }
        }
        if pairs.last().is_some_and(|&(l, _)| l >= 12 + p + p * p + p * p * p) {
            return Err(self.invalid("file size in blocks", pairs.len(), "too large for a block map"));
        }
        let mut iblock = [0u32; 15];
        let mut meta = 0u64;
        let mut rest: &[(u64, u32)] = &pairs;
        while let Some(&(l, pb)) = rest.first() {
            if l >= 12 {
                break;
            }
            iblock[l as usize] = pb;
            rest = &rest[1..];
        }
        let mut base = 12u64;
        for (slot, level) in [(12usize, 1u32), (13, 2), (14, 3)] {
            let span = p.pow(level);
            let n = rest.iter().take_while(|&&(l, _)| l < base + span).count();
            let (mine, after) = rest.split_at(n);
            if !mine.is_empty() {
                iblock[slot] = self.build_indirect(mine, level, base, goal, &mut meta)?;
            }
            rest = after;
            base += span;
        }
        let ib = inode.i_block_mut();
        for (i, v) in iblock.iter().enumerate() {
            set32(ib, i * 4, *v);
        }
        Ok(meta)
    }

    fn build_indirect(
        &mut self,
        pairs: &[(u64, u32)],
        level: u32,
        base: u64,
        goal: u64,
        meta: &mut u64,
    ) -> Result<u32, FsError> {
        let p = self.ptrs_per_block();
        let span = p.pow(level - 1);
        let mut block = vec![0u8; self.sb.block_size as usize];
        let mut rest = pairs;
        while let Some(&(l, pb)) = rest.first() {
            let j = (l - base) / span;
            if level == 1 {
                set32(&mut block, (j * 4) as usize, pb);
                rest = &rest[1..];
            } else {
                let n = rest.iter().take_while(|&&(l2, _)| (l2 - base) / span == j).count();
                let (mine, after) = rest.split_at(n);
                let child = self.build_indirect(mine, level - 1, base + j * span, goal, meta)?;
                set32(&mut block, (j * 4) as usize, child);
                rest = after;
            }
        }
        let Some(&(b, _)) = self.alloc_blocks(1, goal)?.first() else {
            return Err(FsError::NoSpace { fs: self.name.clone(), what: "an indirect block".into() });
        };
        let ptr =
            u32::try_from(b).map_err(|_| self.invalid("indirect block", b, "above 2^32 in a block-mapped file"))?;
        self.write_block(b, &block)?;
        *meta += 1;
        Ok(ptr)
    }
}
