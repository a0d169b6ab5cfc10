//! Replacing a regular file's contents: the written extents from block 0 that the new
//! contents need are kept and rewritten, what lies past the new end (and any hole or
//! unwritten extent after them) is freed, and the rest is allocated near the file's last
//! block (or its inode), contiguous where the AG allows. The extent list goes in the inode
//! when it fits, else in a two-level bmbt (root in the inode, leaves in new blocks; the old
//! tree's blocks are freed). On rmapbt filesystems each extent is mapped to (or unmapped
//! from) the inode at its file offset, bmbt blocks as the fork's bmbt blocks.

use super::alloc::{AgSpace, MAX_EXTLEN};
use super::bmap::Extent;
use super::rmap::Owner;
use super::inode::{FileKind, FMT_BTREE, FMT_EXTENTS, MTIME};
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
    /// is rewritten only within its blocks. Reflinked files (blocks possibly shared) are
    /// refused. Everything is worked out before the first write, so a refusal writes nothing.
    pub fn write_file(&mut self, path: &str, data: &[u8]) -> Result<(), FsError> {
        let mut i = self.resolve(path, true)?;
        if i.kind() != FileKind::Regular {
            return Err(self.path_err(path, PathProblem::IsDirectory));
        }
        if i.reflinked() {
            return Err(self.unsupported(format!("{path}: rewriting a reflinked file (its blocks may be shared)")));
        }
        let bs = self.sb.block;
        let need = (data.len() as u64).div_ceil(bs);
        let (ext, old_bmbt) = self.data_map(&i)?;
        // The written extents from block 0 that the new contents reuse, and what is freed.
        let mut keep: Vec<Extent> = Vec::new();
        let mut drop: Vec<Extent> = Vec::new();
        let mut covered = 0u64;
        for e in &ext {
            if e.off == covered && !e.unwritten && covered < need {
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
            self.plan_file_blocks(i.ino, &drop, need - covered, Blocks::Data(0), &mut new_ext, &mut spaces)?;
            // The old bmbt blocks go; a new tree is built if the extents outgrow the inode.
            let mask = (1u64 << self.sb.agblklog) - 1;
            for &b in &old_bmbt {
                let sp = self.space_entry(&mut spaces, b >> self.sb.agblklog)?;
                self.space_free(sp, b & mask, 1, Owner::bmbt(i.ino, false))?;
            }
            if new_ext.len() > i.data_fork_slots() {
                let hdr = if self.sb.v5 { 72 } else { 24 };
                let per = (self.sb.block as usize - hdr) / 16;
                let nleaves = new_ext.len().div_ceil(per) as u64;
                let mut lext = Vec::new();
                self.plan_file_blocks(i.ino, &[], nleaves, Blocks::Bmbt, &mut lext, &mut spaces)?;
                let leaves: Vec<u64> = lext.iter().flat_map(|e| e.fsb..e.fsb + e.len).collect();
                new_bmbt = self.bmbt_build(&mut i, &new_ext, &leaves).ok_or_else(|| {
                    self.unsupported(format!("{path}: {} extents need a bmbt deeper than two levels (not written)", new_ext.len()))
                })?;
            }
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
            if new_bmbt.is_empty() {
                i.set_data_extents(&new_ext);
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
            let ag = e.fsb >> self.sb.agblklog;
            let sp = self.space_entry(spaces, ag)?;
            self.space_free(sp, e.fsb & mask, e.len, Owner::file(ino, e.off, false, e.unwritten))?;
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
