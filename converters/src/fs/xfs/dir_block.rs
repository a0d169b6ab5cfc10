//! Editing directories in any format the writer handles: shortform (dir_write.rs) and block
//! directories (one directory block holding the data entries, a hash-sorted leaf array of
//! (hash, address) pairs and a tail with the leaf count). A block directory is edited by
//! writing its block again, entries packed after "." and "..", one free region after them
//! (the header's best-free table says where), the leaf array sorted by name hash; a full
//! shortform directory becomes a block directory the same way, in a newly allocated block,
//! and a block directory whose entries fit the inode again becomes shortform (its block
//! freed). Leaf and node directories are edited within their blocks (dir_leaf.rs); a full
//! block directory is written again in leaf form there.

use super::bmap::Extent;
use super::bytes::{be16, be32, be64, byte, crc_ok, set16, set32, set64, set_crc};
use super::create::Txn;
use super::file::Blocks;
use super::dir::entry_size;
use super::inode::{Inode, FMT_EXTENTS, FMT_LOCAL};
use super::Xfs;
use crate::fs::FsError;

const FREE_TAG: u16 = 0xffff;
const DIR_CRC: usize = 4;

/// `xfs_da_hashname`: the hash the leaf array is sorted by.
pub fn name_hash(name: &[u8]) -> u32 {
    let mut h: u32 = 0;
    let mut n = name;
    while n.len() >= 4 {
        h = (u32::from(n[0]) << 21) ^ (u32::from(n[1]) << 14) ^ (u32::from(n[2]) << 7) ^ u32::from(n[3]) ^ h.rotate_left(28);
        n = &n[4..];
    }
    match n.len() {
        3 => (u32::from(n[0]) << 14) ^ (u32::from(n[1]) << 7) ^ u32::from(n[2]) ^ h.rotate_left(21),
        2 => (u32::from(n[0]) << 7) ^ u32::from(n[1]) ^ h.rotate_left(14),
        1 => u32::from(n[0]) ^ h.rotate_left(7),
        _ => h,
    }
}

type Entries = Vec<(Vec<u8>, u64, u8)>;

impl Xfs<'_> {
    fn dir_hdr(&self) -> usize {
        if self.sb.v5 {
            64
        } else {
            16
        }
    }

    /// The extents and contents of block directory `dir`, or `None` if it is in another
    /// format (leaf, node, B+tree).
    fn block_dir(&self, t: &Txn, dir: &Inode) -> Result<Option<(Vec<Extent>, Vec<u8>)>, FsError> {
        let dbs = self.sb.dirblock();
        if dir.format() != FMT_EXTENTS || dir.size() != dbs {
            return Ok(None);
        }
        let ext = self.extents(dir)?;
        let fsbs = dbs / self.sb.block;
        let mapped: u64 = ext.iter().filter(|e| e.off < fsbs).map(|e| e.len.min(fsbs - e.off)).sum();
        if mapped != fsbs || ext.iter().any(|e| e.unwritten) {
            return Ok(None);
        }
        let mut raw = self.read_mapped(dir.ino, &ext, dbs)?;
        for e in &ext {
            let (from, to) = ((e.off * self.sb.block) as usize, (((e.off + e.len) * self.sb.block).min(dbs)) as usize);
            if from < to {
                t.overlay(&mut raw[from..to], e.fsb, self.sb.block as usize);
            }
        }
        let magic: &[u8] = if self.sb.v5 { b"XDB3" } else { b"XD2B" };
        if raw.get(0..4) != Some(magic) {
            return Ok(None);
        }
        Ok(Some((ext, raw)))
    }

    /// (parent, entries) of a block directory's block, checked.
    fn block_parse(&self, ino: u64, b: &[u8]) -> Result<(u64, Entries), FsError> {
        let field = format!("directory inode {ino} block");
        if self.sb.v5 && (!crc_ok(b, DIR_CRC) || be64(b, 40) != ino) {
            return Err(self.invalid(&format!("{field} crc/owner"), format!("{:#010x}", be32(b, DIR_CRC)), "checksum mismatch or another inode's"));
        }
        let count = be32(b, b.len() - 8) as usize;
        let end = (b.len() - 8)
            .checked_sub(count.saturating_mul(8))
            .filter(|&e| e >= self.dir_hdr())
            .ok_or_else(|| self.invalid(&format!("{field} leaf count"), count, "more than the block holds"))?;
        let mut at = self.dir_hdr();
        let mut parent = None;
        let mut out = Vec::new();
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
            let name = b[at + 9..at + 9 + namelen].to_vec();
            let ft = if self.sb.ftype { byte(b, at + 9 + namelen) } else { 0 };
            match name.as_slice() {
                b"." => {}
                b".." => parent = Some(be64(b, at)),
                _ => out.push((name, be64(b, at), ft)),
            }
            at += len;
        }
        let parent = parent.ok_or_else(|| self.invalid(&field, "", "no \"..\" entry"))?;
        Ok((parent, out))
    }

    /// A block directory's block holding `entries`, or `None` if they do not fit.
    pub(super) fn block_build(&self, ino: u64, parent: u64, entries: &Entries, daddr: u64) -> Option<Vec<u8>> {
        let dbs = self.sb.dirblock() as usize;
        let mut b = vec![0u8; dbs];
        b[0..4].copy_from_slice(if self.sb.v5 { b"XDB3" } else { b"XD2B" });
        let mut at = self.dir_hdr();
        let mut leaf: Vec<(u32, u32)> = Vec::with_capacity(entries.len() + 2);
        let all = [(b".".to_vec(), ino, 2u8), (b"..".to_vec(), parent, 2u8)];
        let leaf_bytes = 8 * (entries.len() + 2) + 8;
        for (name, i, ft) in all.iter().chain(entries.iter()) {
            let len = entry_size(name.len(), self.sb.ftype);
            if at + len + leaf_bytes > dbs {
                return None;
            }
            set64(&mut b, at, *i);
            b[at + 8] = name.len() as u8;
            b[at + 9..at + 9 + name.len()].copy_from_slice(name);
            if self.sb.ftype {
                b[at + 9 + name.len()] = *ft;
            }
            set16(&mut b, at + len - 2, at as u16);
            leaf.push((name_hash(name), (at / 8) as u32));
            at += len;
        }
        let leaf_at = dbs - leaf_bytes;
        let free = leaf_at - at;
        let bf = if self.sb.v5 { 48 } else { 4 };
        if free > 0 {
            set16(&mut b, at, FREE_TAG);
            set16(&mut b, at + 2, free as u16);
            set16(&mut b, at + free - 2, at as u16);
            set16(&mut b, bf, at as u16);
            set16(&mut b, bf + 2, free as u16);
        }
        leaf.sort_by_key(|&(h, a)| (h, a));
        for (k, (h, a)) in leaf.iter().enumerate() {
            set32(&mut b, leaf_at + 8 * k, *h);
            set32(&mut b, leaf_at + 8 * k + 4, *a);
        }
        set32(&mut b, dbs - 8, leaf.len() as u32);
        if self.sb.v5 {
            set64(&mut b, 8, daddr);
            b[24..40].copy_from_slice(&self.sb.meta_uuid);
            set64(&mut b, 40, ino);
            set_crc(&mut b, DIR_CRC);
        }
        Some(b)
    }

    /// Queues the directory block `b` over the fs blocks `ext` maps.
    pub(super) fn queue_dir_block(&self, t: &mut Txn, ext: &[Extent], b: &[u8]) {
        let bs = self.sb.block as usize;
        for e in ext {
            for j in 0..e.len {
                let k = (e.off + j) as usize;
                if let Some(part) = b.get(k * bs..(k + 1) * bs) {
                    t.data.push((e.fsb + j, part.to_vec()));
                }
            }
        }
    }

    pub(super) fn dir_daddr(&self, ext: &[Extent]) -> u64 {
        let fsb = ext.first().map_or(0, |e| e.fsb);
        self.daddr(fsb >> self.sb.agblklog, fsb & ((1 << self.sb.agblklog) - 1))
    }

    /// Writes `entries` as block directory `dir` (already in block form: `ext`), or
    /// converts shortform `dir` to block form in a new directory block.
    fn block_store(&self, t: &mut Txn, dir: &mut Inode, ext: Option<Vec<Extent>>, parent: u64, entries: &Entries, what: &str) -> Result<(), FsError> {
        let dino = dir.ino;
        let full = || {
            self.unsupported(format!(
                "{what}: the directory (inode {dino}) outgrows one directory block (converting it to leaf form is not written)"
            ))
        };
        if let Some(e) = &ext {
            // Shrunk small enough for the inode: back to shortform, the block freed (where
            // the allocator may free: no CoW leftovers).
            let mut sf = Inode { ino: dir.ino, raw: dir.raw.clone() };
            if self.check_can_allocate(what).is_ok() && self.sf_rebuild(&mut sf, parent, entries, what)? {
                self.plan_file_blocks(dir.ino, e, 0, Blocks::Data(0), &mut Vec::new(), &mut t.spaces)?;
                let freed: u64 = e.iter().map(|x| x.len).sum();
                sf.set_nblocks(sf.nblocks().saturating_sub(freed));
                *dir = sf;
                return Ok(());
            }
        }
        let ext = match ext {
            Some(e) => e,
            None => {
                let fsbs = self.sb.dirblock() / self.sb.block;
                let mut ext = Vec::new();
                self.plan_file_blocks(dir.ino, &[], fsbs, Blocks::Data(0), &mut ext, &mut t.spaces)?;
                if ext.len() > dir.data_fork_slots() {
                    return Err(full());
                }
                dir.set_data_extents(&ext);
                dir.set_size(self.sb.dirblock());
                dir.set_nblocks(dir.nblocks() + fsbs);
                ext
            }
        };
        match self.block_build(dir.ino, parent, entries, self.dir_daddr(&ext)) {
            Some(b) => {
                self.queue_dir_block(t, &ext, &b);
                Ok(())
            }
            // A full block directory becomes a leaf directory.
            None => self.leaf_rebuild(t, dir, parent, entries, what),
        }
    }

    /// The entries of shortform or block directory `dir` and its block map (`None` for
    /// shortform); other formats are refused.
    fn dir_load(&self, t: &Txn, dir: &Inode, what: &str) -> Result<(u64, Entries, Option<Vec<Extent>>), FsError> {
        if dir.format() == FMT_LOCAL {
            let (p, e) = self.sf_list(dir, what)?;
            return Ok((p, e, None));
        }
        match self.block_dir(t, dir)? {
            Some((ext, raw)) => {
                let (p, e) = self.block_parse(dir.ino, &raw)?;
                Ok((p, e, Some(ext)))
            }
            None => Err(self.unsupported(format!(
                "{what}: editing a leaf, node or B+tree directory (inode {}; shortform and block directories are written)",
                dir.ino
            ))),
        }
    }

    /// Adds `name` -> `ino` to directory `dir`.
    pub(super) fn dir_add(&self, t: &mut Txn, dir: &mut Inode, name: &[u8], ino: u64, ftype: u8, what: &str) -> Result<(), FsError> {
        if dir.format() == FMT_LOCAL && self.sf_add(dir, name, ino, ftype, what)? {
            return Ok(());
        }
        if dir.format() != FMT_LOCAL && self.block_dir(t, dir)?.is_none() {
            if self.leaf_add(t, dir, name, ino, ftype)? {
                return Ok(());
            }
            if self.is_leaf1(t, dir)? {
                // No room in its blocks: written again in leaf form, one data block more.
                let parent = self.leaf_parent(t, dir)?;
                let mut entries = self.leaf_entries_txn(t, dir)?;
                entries.push((name.to_vec(), ino, ftype));
                return self.leaf_rebuild(t, dir, parent, &entries, what);
            }
        }
        let (parent, mut entries, ext) = self.dir_load(t, dir, what)?;
        entries.push((name.to_vec(), ino, ftype));
        self.block_store(t, dir, ext, parent, &entries, what)
    }

    /// Removes `name` from directory `dir`; returns its inode.
    pub(super) fn dir_remove(&self, t: &mut Txn, dir: &mut Inode, name: &[u8], what: &str) -> Result<u64, FsError> {
        if dir.format() == FMT_LOCAL {
            return self.sf_remove(dir, name, what);
        }
        if self.block_dir(t, dir)?.is_none() {
            if let Some(ino) = self.leaf_remove(t, dir, name, what)? {
                return Ok(ino);
            }
        }
        let (parent, mut entries, ext) = self.dir_load(t, dir, what)?;
        let k = entries.iter().position(|e| e.0 == name).ok_or_else(|| self.invalid(what, "", "name not in the directory"))?;
        let ino = entries.remove(k).1;
        self.block_store(t, dir, ext, parent, &entries, what)?;
        Ok(ino)
    }

    /// Points directory `dir`'s ".." at `parent`.
    pub(super) fn dir_set_parent(&self, t: &mut Txn, dir: &mut Inode, parent: u64, what: &str) -> Result<(), FsError> {
        if dir.format() == FMT_LOCAL {
            return self.sf_set_parent(dir, parent, what);
        }
        if self.block_dir(t, dir)?.is_none() && self.leaf_set_parent(t, dir, parent)? {
            return Ok(());
        }
        let (_, entries, ext) = self.dir_load(t, dir, what)?;
        self.block_store(t, dir, ext, parent, &entries, what)
    }
}
