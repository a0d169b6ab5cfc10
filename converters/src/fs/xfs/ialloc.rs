//! Inode allocation from the chunks an AG already has: the inobt (every chunk: first inode,
//! sparse hole mask, count, free count, free bitmap) and the finobt (the chunks with a free
//! inode) are read whole and cross-checked; taking or freeing an inode changes one record,
//! and both trees are written again on commit (the finobt drops a chunk that fills up and
//! gains one that gets a free inode; its blocks come from and go back to the AG's free space
//! like the kernel's), with the AGI's free count, roots, levels, `iblocks`/`fblocks`
//! (inobtcount) and the superblock's `sb_icount`/`sb_ifree` kept right. Holes of sparse
//! chunks are never handed out. When no chunk has a free inode, a new full chunk of 64 is
//! allocated at `sb_inoalignmt` alignment (preferring the parent's AG), its inodes written
//! free as the kernel's `xfs_ialloc_inode_init` writes them, and its record inserted.

use super::alloc::AgSpace;
use super::create::Txn;
use super::btree::Kind;
use super::bytes::{be16, be32, be64, byte, set16, set32, set64, set_crc};
use super::superblock::{IN_SPINODES, RO_FINOBT, RO_INOBTCNT};
use super::ag::AGI_CRC;
use super::rmap::Owner;
use super::Xfs;
use crate::fs::FsError;

pub const INOBT: Kind = Kind { name: "inobt", magic_v4: b"IABT", magic_v5: b"IAB3", rec: 16, key: 4, overlapping: false };
pub const FINOBT: Kind = Kind { name: "finobt", magic_v4: b"FIBT", magic_v5: b"FIB3", rec: 16, key: 4, overlapping: false };

const AGI_FREECOUNT: usize = 28;
const AGI_ROOT: usize = 20;
const AGI_LEVEL: usize = 24;
const AGI_LSN: usize = 320;
const AGI_FREE_ROOT: usize = 328;
const AGI_FREE_LEVEL: usize = 332;
const AGI_IBLOCKS: usize = 336;
const AGI_FBLOCKS: usize = 340;
const SB_IFREE: usize = 136;
const SB_ICOUNT: usize = 128;
const SB_INOALIGNMT: usize = 180;
const AGI_COUNT: usize = 16;
/// Inodes per chunk record.
const CHUNK: u32 = 64;

/// One inobt record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Chunk {
    start: u32,
    /// Sparse chunks: bit k set = inodes 4k..4k+3 are not allocated.
    holemask: u16,
    freecount: u32,
    free: u64,
}

impl Chunk {
    fn holes(&self) -> u64 {
        (0..16).filter(|k| self.holemask & (1 << k) != 0).fold(0u64, |m, k| m | (0xf << (4 * k)))
    }
}

/// One AG's inode index, loaded and being changed.
pub(super) struct AgInodes {
    pub ag: u64,
    agi: Vec<u8>,
    chunks: Vec<Chunk>,
    ino_blocks: Vec<u64>,
    fino_blocks: Vec<u64>,
    /// Change in free inodes since loading.
    free_delta: i64,
    /// Inodes added by new chunks.
    count_delta: i64,
}

impl Xfs<'_> {
    fn sparse(&self) -> bool {
        self.sb.incompat & IN_SPINODES != 0
    }

    fn decode_chunk(&self, r: &[u8]) -> Chunk {
        if self.sparse() {
            Chunk { start: be32(r, 0), holemask: be16(r, 4), freecount: u32::from(byte(r, 7)), free: be64(r, 8) }
        } else {
            Chunk { start: be32(r, 0), holemask: 0, freecount: be32(r, 4), free: be64(r, 8) }
        }
    }

    fn encode_chunk(&self, c: &Chunk) -> Vec<u8> {
        let mut r = vec![0u8; 16];
        set32(&mut r, 0, c.start);
        if self.sparse() {
            set16(&mut r, 4, c.holemask);
            r[6] = (CHUNK - 4 * c.holemask.count_ones()) as u8;
            r[7] = c.freecount as u8;
        } else {
            set32(&mut r, 4, c.freecount);
        }
        set64(&mut r, 8, c.free);
        r
    }

    /// Loads AG `ag`'s inobt (and finobt), checking every record against its bitmap and
    /// the trees and the AGI against each other.
    pub(super) fn inodes_load(&self, ag: u64) -> Result<AgInodes, FsError> {
        let agi = self.ag_header(ag, 2)?;
        let ino = self.bt_read(ag, INOBT, u64::from(be32(&agi, AGI_ROOT)), be32(&agi, AGI_LEVEL))?;
        let max_agino = self.sb.ag_len(ag) << self.sb.inopblog;
        let mut chunks = Vec::with_capacity(ino.recs.len());
        let mut next = 0u64;
        let mut free = 0u64;
        for r in &ino.recs {
            let c = self.decode_chunk(r);
            let field = format!("AG {ag} inobt record {}", c.start);
            if u64::from(c.start) < next || u64::from(c.start) % (1u64 << self.sb.inopblog) != 0 || u64::from(c.start) + u64::from(CHUNK) > max_agino {
                return Err(self.invalid(&field, c.start, "out of order, not at a block boundary or outside the AG"));
            }
            if c.holemask != 0 && !self.sparse() {
                return Err(self.invalid(&field, c.holemask, "a hole mask without sparse inodes"));
            }
            let real_free = (c.free & !c.holes()).count_ones();
            if real_free != c.freecount || c.free & c.holes() != c.holes() {
                return Err(self.invalid(&format!("{field} freecount"), c.freecount, format!("the free mask {:#018x} says {real_free}", c.free)));
            }
            next = u64::from(c.start) + u64::from(CHUNK);
            free += u64::from(c.freecount);
            chunks.push(c);
        }
        if u64::from(be32(&agi, AGI_FREECOUNT)) != free {
            return Err(self.invalid(&format!("AG {ag} AGI freecount"), be32(&agi, AGI_FREECOUNT), format!("the inobt has {free} free inodes")));
        }
        let mut fino_blocks = Vec::new();
        if self.sb.ro_compat & RO_FINOBT != 0 {
            let fino = self.bt_read(ag, FINOBT, u64::from(be32(&agi, AGI_FREE_ROOT)), be32(&agi, AGI_FREE_LEVEL))?;
            let want: Vec<Vec<u8>> = chunks.iter().filter(|c| c.freecount > 0).map(|c| self.encode_chunk(c)).collect();
            let have: Vec<Vec<u8>> = fino.recs.iter().map(|r| self.encode_chunk(&self.decode_chunk(r))).collect();
            if want != have {
                return Err(self.invalid(&format!("AG {ag} finobt"), have.len(), format!("does not hold the inobt's {} chunks with free inodes", want.len())));
            }
            fino_blocks = fino.blocks;
        }
        Ok(AgInodes { ag, agi, chunks, ino_blocks: ino.blocks, fino_blocks, free_delta: 0, count_delta: 0 })
    }

    /// Takes a free inode of AG `ai.ag` (the lowest one), or `None` if its chunks are full.
    pub(super) fn inode_take(&self, ai: &mut AgInodes) -> Option<u64> {
        let c = ai.chunks.iter_mut().find(|c| c.freecount > 0)?;
        let bit = (c.free & !c.holes()).trailing_zeros();
        c.free &= !(1u64 << bit);
        c.freecount -= 1;
        ai.free_delta -= 1;
        let agino = u64::from(c.start) + u64::from(bit);
        Some((ai.ag << (self.sb.agblklog + self.sb.inopblog)) | agino)
    }

    /// Marks inode `ino` (of AG `ai.ag`) free.
    pub(super) fn inode_give(&self, ai: &mut AgInodes, ino: u64) -> Result<(), FsError> {
        let agino = ino & ((1u64 << (self.sb.agblklog + self.sb.inopblog)) - 1);
        let c = ai
            .chunks
            .iter_mut()
            .find(|c| u64::from(c.start) <= agino && agino < u64::from(c.start) + u64::from(CHUNK))
            .ok_or_else(|| self.invalid("inode number", ino, "in no inode chunk of the inobt"))?;
        let bit = 1u64 << (agino - u64::from(c.start));
        if c.free & bit != 0 {
            return Err(self.invalid("inode number", ino, "freed but already free (or in a sparse hole)"));
        }
        c.free |= bit;
        c.freecount += 1;
        ai.free_delta += 1;
        Ok(())
    }

    /// Sizes the finobt for the new records, taking blocks from or giving them to `sp` (the
    /// same AG's free space).
    pub(super) fn inodes_prepare(&self, ai: &mut AgInodes, sp: &mut AgSpace) -> Result<(), FsError> {
        // The inobt keeps its records; a tree built packed never needs more blocks than
        // the kernel's, and the ones it no longer needs go back to free space.
        let (need, _) = self.bt_blocks_for(INOBT, ai.chunks.len());
        while ai.ino_blocks.len() > need {
            if let Some(b) = ai.ino_blocks.pop() {
                self.space_free(sp, b, 1, Owner::INOBT)?;
            }
        }
        let near = ai.ino_blocks.first().copied().unwrap_or(0);
        while ai.ino_blocks.len() < need {
            let (b, _) = sp.alloc(1, near, Owner::INOBT).ok_or_else(|| FsError::NoSpace { fs: self.name.clone(), what: format!("AG {}'s inobt", ai.ag) })?;
            ai.ino_blocks.push(b);
        }
        if self.sb.ro_compat & RO_FINOBT == 0 {
            return Ok(());
        }
        let n = ai.chunks.iter().filter(|c| c.freecount > 0).count();
        let (need, _) = self.bt_blocks_for(FINOBT, n);
        let near = ai.fino_blocks.first().copied().unwrap_or(0);
        while ai.fino_blocks.len() < need {
            let (b, _) = sp.alloc(1, near, Owner::INOBT).ok_or_else(|| FsError::NoSpace { fs: self.name.clone(), what: format!("AG {}'s finobt", ai.ag) })?;
            ai.fino_blocks.push(b);
        }
        while ai.fino_blocks.len() > need {
            if let Some(b) = ai.fino_blocks.pop() {
                self.space_free(sp, b, 1, Owner::INOBT)?;
            }
        }
        Ok(())
    }

    /// Writes both trees and the AGI; returns the change in free and in allocated inodes
    /// (for `sb_ifree` and `sb_icount`).
    pub(super) fn inodes_write(&self, ai: &mut AgInodes) -> Result<(i64, i64), FsError> {
        let lsn = be64(&ai.agi, AGI_LSN);
        let recs: Vec<Vec<u8>> = ai.chunks.iter().map(|c| self.encode_chunk(c)).collect();
        let (root, level) = self.bt_write(ai.ag, INOBT, &recs, &ai.ino_blocks, lsn)?;
        set32(&mut ai.agi, AGI_ROOT, root as u32);
        set32(&mut ai.agi, AGI_LEVEL, level);
        if self.sb.ro_compat & RO_FINOBT != 0 {
            let frecs: Vec<Vec<u8>> = ai.chunks.iter().filter(|c| c.freecount > 0).map(|c| self.encode_chunk(c)).collect();
            let (froot, flevel) = self.bt_write(ai.ag, FINOBT, &frecs, &ai.fino_blocks, lsn)?;
            set32(&mut ai.agi, AGI_FREE_ROOT, froot as u32);
            set32(&mut ai.agi, AGI_FREE_LEVEL, flevel);
        }
        let free: u32 = ai.chunks.iter().map(|c| c.freecount).sum();
        set32(&mut ai.agi, AGI_FREECOUNT, free);
        let count = i64::from(be32(&ai.agi, AGI_COUNT)) + ai.count_delta;
        set32(&mut ai.agi, AGI_COUNT, count.max(0) as u32);
        if self.sb.ro_compat & RO_INOBTCNT != 0 {
            set32(&mut ai.agi, AGI_IBLOCKS, ai.ino_blocks.len() as u32);
            set32(&mut ai.agi, AGI_FBLOCKS, ai.fino_blocks.len() as u32);
        }
        if self.sb.v5 {
            set_crc(&mut ai.agi, AGI_CRC);
        }
        self.vol.write(&ai.agi, self.ag_sector(ai.ag, 2), &self.name)?;
        Ok((std::mem::take(&mut ai.free_delta), std::mem::take(&mut ai.count_delta)))
    }

    /// Adds to the superblock's free and allocated inode counts and writes it.
    pub(super) fn sb_add_inodes(&mut self, free: i64, count: i64) -> Result<(), FsError> {
        if free == 0 && count == 0 {
            return Ok(());
        }
        let v = be64(&self.sb.raw, SB_IFREE).saturating_add_signed(free);
        set64(&mut self.sb.raw, SB_IFREE, v);
        let v = be64(&self.sb.raw, SB_ICOUNT).saturating_add_signed(count);
        set64(&mut self.sb.raw, SB_ICOUNT, v);
        self.write_sb()
    }

    /// Allocates a new chunk of 64 free inodes in AG `ag` (blocks aligned to
    /// `sb_inoalignmt`), queues its inodes, and adds its record; `false` if the AG has no
    /// room for one.
    fn chunk_alloc(&self, ag: u64, t: &mut Txn) -> Result<bool, FsError> {
        let per_block = 1u64 << self.sb.inopblog;
        if per_block > u64::from(CHUNK) {
            return Ok(false);
        }
        let blocks = u64::from(CHUNK) / per_block;
        let align = if self.sb.aligned_inodes() { u64::from(be32(&self.sb.raw, SB_INOALIGNMT)).max(1) } else { 1 };
        let sp = self.space_entry(&mut t.spaces, ag)?;
        let Some(bno) = sp.alloc_aligned(blocks, align, Owner::INODES) else { return Ok(false) };
        let start = bno << self.sb.inopblog;
        if start + u64::from(CHUNK) > u64::from(u32::MAX) {
            return Ok(false);
        }
        let bs = self.sb.block as usize;
        let isz = self.sb.inodesize as usize;
        for k in 0..blocks {
            let mut b = vec![0u8; bs];
            for (j, raw) in b.chunks_mut(isz).enumerate() {
                let agino = start + k * per_block + j as u64;
                let ino = (ag << (self.sb.agblklog + self.sb.inopblog)) | agino;
                raw[0..2].copy_from_slice(b"IN");
                raw[4] = if self.sb.v5 { 3 } else { 2 };
                set32(raw, 92, 1);
                set32(raw, 96, u32::MAX);
                if self.sb.v5 {
                    set64(raw, 152, ino);
                    raw[160..176].copy_from_slice(&self.sb.meta_uuid);
                    set_crc(raw, super::inode::INODE_CRC);
                }
            }
            t.data.push(((ag << self.sb.agblklog) | (bno + k), b));
        }
        if !t.inodes.contains_key(&ag) {
            let ai = self.inodes_load(ag)?;
            t.inodes.insert(ag, ai);
        }
        let ai = t.inodes.get_mut(&ag).ok_or_else(|| self.invalid("AG", ag, "not loaded"))?;
        let c = Chunk { start: start as u32, holemask: 0, freecount: CHUNK, free: u64::MAX };
        let at = ai.chunks.partition_point(|x| x.start < c.start);
        if ai.chunks.get(at).is_some_and(|x| x.start == c.start) {
            return Err(self.invalid(&format!("AG {ag} inobt"), start, "a new chunk's blocks were already an inode chunk"));
        }
        ai.chunks.insert(at, c);
        ai.free_delta += i64::from(CHUNK);
        ai.count_delta += i64::from(CHUNK);
        Ok(true)
    }

    /// Finds a free inode, preferring AG `ag`, allocating a new chunk when every chunk is
    /// full; what it changes is left in `t`.
    pub(super) fn inode_alloc(&self, ag: u64, t: &mut Txn) -> Result<u64, FsError> {
        for round in 0..2 {
            for k in 0..self.sb.agcount {
                let a = (ag + k) % self.sb.agcount;
                if round == 1 && !self.chunk_alloc(a, t)? {
                    continue;
                }
                if !t.inodes.contains_key(&a) {
                    let ai = self.inodes_load(a)?;
                    t.inodes.insert(a, ai);
                }
                if let Some(ai) = t.inodes.get_mut(&a) {
                    if let Some(ino) = self.inode_take(ai) {
                        return Ok(ino);
                    }
                }
            }
        }
        Err(FsError::NoSpace { fs: self.name.clone(), what: "a new inode chunk".into() })
    }
}
