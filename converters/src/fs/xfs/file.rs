//! Replacing a regular file's contents: the written extents from block 0 that the new
//! contents need are kept and rewritten (never those of a reflinked file, which may be
//! shared: its contents go to new blocks and the old mappings are released), what lies past the new end (and any hole or
//! unwritten extent after them) is freed, and the rest is allocated near the file's last
//! block (or its inode), contiguous where the AG allows. The extent list goes in the inode
//! when it fits, else in a bmbt of the height it needs (root in the inode, leaves and nodes
//! in new blocks; the old tree's blocks are freed), so trees grow and collapse back to
//! extents format with the file.

use super::alloc::{AgSpace, MAX_EXTLEN};
use super::bmap::Extent;
use super::rmap::Owner;
use super::inode::{FileKind, FMT_BTREE, FMT_EXTENTS, MTIME};
use super::release::{Fork, Mapping};
use super::Xfs;
use crate::fs::{FsError, PathProblem};
use std::collections::BTreeMap;

/// What [`Xfs::plan_file_blocks`] allocates: data fork blocks (the first at file block
/// `from` when the extent list is empty), or blocks of the data fork's bmbt.
#[derive(Clone, Copy)]
pub(super) enum Blocks {
    Data(u64),
    Bmbt,
}

impl Xfs<'_> {
    /// Replaces the contents of an existing regular file. Growth allocates blocks and
    /// shrinking frees them (extents-format files); a file whose block map is a bmbt B+tree
    /// is rewritten only within its blocks. A reflinked file (blocks possibly shared) gets
    /// all-new blocks and loses its REFLINK flag. Everything is worked out before the first write, so a refusal writes nothing.
    pub fn write_file(&mut self, path: &str, data: &[u8]) -> Result<(), FsError> {
        self.check_no_cow_leftovers()?;
        let mut i = self.resolve(path, true)?;
        if i.kind() != FileKind::Regular {
            return Err(self.path_err(path, PathProblem::IsDirectory));
        }
        // A reflinked file's blocks may be shared: none is rewritten, the new contents all
        // go to new blocks and every old mapping is released (shared ones lose a reference).
        let fresh = i.reflinked();
        if fresh {
            self.check_can_allocate(path)?;
        }
        let bs = self.sb.block;
        let need = (data.len() as u64).div_ceil(bs);
        let (ext, old_bmbt) = self.data_map(&i)?;
        // The written extents from block 0 that the new contents reuse, and what is freed.
        let mut keep: Vec<Extent> = Vec::new();
        let mut drop: Vec<Extent> = Vec::new();
        let mut covered = 0u64;
        for e in &ext {
            if e.off == covered && !e.unwritten && covered < need && !fresh {
                let take = e.len.min(need - covered);
                keep.push(Extent { len: take, ..*e });
                if take < e.len {
                    drop.push(Extent { off: e.off + take, fsb: e.fsb + take, len: e.len - take, unwritten: e.unwritten });
                }
                covered += take;
            } else {
                drop.push(*e);
            }
        }
        let mut spaces: BTreeMap<u64, AgSpace> = BTreeMap::new();
        let mut new_ext = keep.clone();
        let can_free = i.format() == FMT_EXTENTS || i.format() == FMT_BTREE;
        if covered >= need && !can_free {
            // Blocks past the new end stay allocated (as XFS's speculative preallocation
            // leaves them) where the fork holds no block map to free them from.
            drop.clear();
        }
        let changes = covered < need || !drop.is_empty();
        let mut new_bmbt: Vec<(u64, Vec<u8>)> = Vec::new();
        if changes {
            self.check_can_allocate(path)?;
            self.plan_file_blocks(i.ino, &drop, need - covered, Blocks::Data(0), &mut new_ext, &mut spaces)?;
            // The old bmbt blocks go; a new tree of the height needed is built if the
            // extents outgrow the inode.
            new_bmbt = self.plan_data_fork(&mut i, &new_ext, &old_bmbt, &mut spaces, path)?;
        }
        for sp in spaces.values_mut() {
            self.space_prepare(sp)?;
        }
        // Everything checked: write.
        let mut delta = 0i64;
        for sp in spaces.values_mut() {
            delta += self.space_write(sp)?;
        }
        self.sb_add_free(delta)?;
        for e in &new_ext {
            let start = e.off * bs;
            let n = (e.len * bs) as usize;
            let mut buf = vec![0u8; n];
            let have = data.len().saturating_sub(start as usize).min(n);
            buf[..have].copy_from_slice(&data[start as usize..start as usize + have]);
            self.write_fsb(&buf, e.fsb, &format!("inode {} extent", i.ino))?;
        }
        for (fsb, b) in &new_bmbt {
            self.write_fsb(b, *fsb, &format!("inode {} bmbt block", i.ino))?;
        }
        if changes {
            let before: u64 = ext.iter().map(|e| e.len).sum::<u64>() + old_bmbt.len() as u64;
            let after: u64 = new_ext.iter().map(|e| e.len).sum::<u64>() + new_bmbt.len() as u64;
            i.set_nblocks((i.nblocks() + after).saturating_sub(before));
            if fresh {
                // Every extent is new: nothing of the file is shared any more.
                i.set_reflinked(false);
            }
        }
        i.set_size(data.len() as u64);
        let (s, ns) = super::now();
        i.set_time(MTIME, s, ns);
        i.touch_ctime();
        self.write_inode(&mut i)
    }

    /// Frees `drop` (data fork extents of `ino`) and allocates `more` blocks after `ext`
    /// (merged into its last extent where contiguous; from file block `Data(from)` when `ext`
    /// is empty), in memory: the AGs touched are left in `spaces`.
    pub(super) fn plan_file_blocks(
        &self,
        ino: u64,
        drop: &[Extent],
        more: u64,
        what: Blocks,
        ext: &mut Vec<Extent>,
        spaces: &mut BTreeMap<u64, AgSpace>,
    ) -> Result<(), FsError> {
        let mask = (1u64 << self.sb.agblklog) - 1;
        for e in drop {
            self.release(spaces, Mapping { ino, fork: Fork::Data, off: Some(e.off), fsb: e.fsb, len: e.len, unwritten: e.unwritten })?;
        }
        let (mut ag, mut near) = match ext.last() {
            Some(e) => ((e.fsb + e.len) >> self.sb.agblklog, (e.fsb + e.len) & mask),
            None => (ino >> (self.sb.agblklog + self.sb.inopblog), (ino >> self.sb.inopblog) & mask),
        };
        let mut left = more;
        let mut off = ext.last().map_or(match what { Blocks::Data(from) => from, Blocks::Bmbt => 0 }, |e| e.off + e.len);
        let mut tried = 0;
        while left > 0 {
            if tried >= self.sb.agcount {
                return Err(FsError::NoSpace { fs: self.name.clone(), what: format!("inode {ino}: {more} blocks") });
            }
            let sp = self.space_entry(spaces, ag)?;
            let owner = match what {
                Blocks::Data(_) => Owner::file(ino, off, false, false),
                Blocks::Bmbt => Owner::bmbt(ino, false),
            };
            match sp.alloc(left.min(MAX_EXTLEN), near, owner) {
                Some((bno, got)) => {
                    let fsb = (ag << self.sb.agblklog) | bno;
                    match ext.last_mut() {
                        Some(l) if l.fsb + l.len == fsb && l.off + l.len == off && l.len + got <= MAX_EXTLEN => l.len += got,
                        _ => ext.push(Extent { off, fsb, len: got, unwritten: false }),
                    }
                    off += got;
                    left -= got;
                    near = bno + got;
                }
                None => {
                    ag = (ag + 1) % self.sb.agcount;
                    near = 0;
                    tried += 1;
                }
            }
        }
        Ok(())
    }

    pub(super) fn space_entry<'s>(&self, spaces: &'s mut BTreeMap<u64, AgSpace>, ag: u64) -> Result<&'s mut AgSpace, FsError> {
        if !spaces.contains_key(&ag) {
            let sp = self.space_load(ag)?;
            spaces.insert(ag, sp);
        }
        spaces.get_mut(&ag).ok_or_else(|| self.invalid("AG", ag, "not loaded"))
    }
}
