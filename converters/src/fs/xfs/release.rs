//! Releasing one owner's mapping: every block an inode gives up (data and attribute extents,
//! bmbt blocks of either fork) goes through [`Xfs::release`], which knows who owned it. On
//! a reflink filesystem a data-fork extent may be shared: it loses one reference in the
//! refcountbt and only what no other mapping holds becomes free; everything else is freed.
//! On rmapbt filesystems the owner's reverse mapping goes here too, whether the blocks are
//! freed or stay with their other owners.

use super::alloc::AgSpace;
use super::rmap::Owner;
use super::Xfs;
use crate::fs::FsError;
use std::collections::BTreeMap;

/// Which fork of an inode a mapping belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Fork {
    Data,
    Attr,
}

/// One owner's mapping being released: `len` blocks at filesystem block `fsb`, mapped at
/// file block `off` of `ino`'s `fork` (`unwritten` as its extent is flagged), or (`off`
/// None) a block of that fork's bmbt.
#[derive(Clone, Copy, Debug)]
pub(super) struct Mapping {
    pub ino: u64,
    pub fork: Fork,
    pub off: Option<u64>,
    pub fsb: u64,
    pub len: u64,
    pub unwritten: bool,
}

impl Xfs<'_> {
    /// Releases `m` in memory (the AG's free space, and refcountbt where it may be shared,
    /// loaded into `spaces`).
    pub(super) fn release(&self, spaces: &mut BTreeMap<u64, AgSpace>, m: Mapping) -> Result<(), FsError> {
        let mask = (1u64 << self.sb.agblklog) - 1;
        let ag = m.fsb >> self.sb.agblklog;
        if m.len == 0 || ag >= self.sb.agcount || (m.fsb & mask) + m.len > self.sb.ag_len(ag) {
            let what = if m.off.is_some() { "extent" } else { "bmbt block" };
            return Err(self.invalid(&format!("inode {} {:?} fork {what}", m.ino, m.fork), format!("{}+{}", m.fsb, m.len), "empty or outside its AG"));
        }
        let sp = self.space_entry(spaces, ag)?;
        let attr = m.fork == Fork::Attr;
        let owner = match m.off {
            Some(off) => Owner::file(m.ino, off, attr, m.unwritten),
            None => Owner::bmbt(m.ino, attr),
        };
        if m.fork == Fork::Data && m.off.is_some() && self.reflink_fs() {
            self.rmap_unmap(sp, m.fsb & mask, m.len, owner)?;
            self.refc_release(sp, m.fsb & mask, m.len)
        } else {
            self.space_free(sp, m.fsb & mask, m.len, owner)
        }
    }
}
