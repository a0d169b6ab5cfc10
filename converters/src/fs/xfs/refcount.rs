//! The reference count B+tree (refcountbt, reflink filesystems): which AG blocks more than one
//! mapping shares. Records (12 bytes: start with the CoW-domain bit 31, length, count) hold
//! only ranges with a count of 2 or more (a block in no record and not free has one owner),
//! sorted and never overlapping, neighbours of equal count merged; keys are the start (4
//! bytes). The AGF keeps its root, height and block count (`agf_refcount_root`, `_level`,
//! `_blocks`); its blocks come from free space (owner OWN_REFC), not from the AGFL, and are
//! not counted in `agf_btreeblks` nor in `sb_fdblocks`.
//!
//! An AG's tree is loaded whole into its [`AgSpace`] on the first free there, cross-checked
//! against the free extents, changed in memory ([`Xfs::refc_release`]: one mapping's blocks
//! lose one reference, and what no other mapping holds is returned to free space), and on
//! commit written again whole onto blocks taken from free space, as the allocator rebuilds
//! the bnobt and cntbt. Records of the CoW domain (staging extents an unclean shutdown left:
//! the kernel frees them at the next mount) make every allocating write refused.

use super::alloc::AgSpace;
use super::btree::Kind;
use super::bytes::{be32, set32};
use super::superblock::RO_REFLINK;
use super::rmap::Owner;
use super::Xfs;
use crate::fs::FsError;
use std::collections::BTreeMap;

pub const REFCBT: Kind = Kind { name: "refcountbt", magic_v4: b"R3FC", magic_v5: b"R3FC", rec: 12, key: 4, overlapping: false };

/// AGF: blocks, root and height of the refcountbt.
const AGF_REFC_BLOCKS: usize = 84;
const AGF_REFC_ROOT: usize = 88;
const AGF_REFC_LEVEL: usize = 92;
/// Bit 31 of a record's start: the record stages a copy-on-write extent.
const COW_FLAG: u32 = 1 << 31;

/// One AG's reference counts, loaded and being changed.
pub(super) struct Refc {
    /// Shared ranges: start -> (length, count ≥ 2).
    recs: BTreeMap<u64, (u64, u32)>,
    /// The tree's blocks as read.
    blocks: Vec<u64>,
    /// Records changed since loading: the tree is written again on commit.
    dirty: bool,
    /// Set by [`Xfs::refc_prepare`]: the blocks the new tree goes onto.
    plan: Option<Vec<u64>>,
}

impl Refc {
    /// Splits the record that runs across `at` (if any) into two at `at`.
    fn split_at(&mut self, at: u64) {
        if let Some((&s, &(l, c))) = self.recs.range(..at).next_back() {
            if s + l > at {
                self.recs.insert(s, (at - s, c));
                self.recs.insert(at, (s + l - at, c));
            }
        }
    }

    /// Merges the record ending at `at` with the one starting there when their counts match.
    fn merge_at(&mut self, at: u64) {
        let Some(&(nl, nc)) = self.recs.get(&at) else { return };
        if let Some((&s, &(l, c))) = self.recs.range(..at).next_back() {
            if s + l == at && c == nc {
                self.recs.remove(&at);
                self.recs.insert(s, (l + nl, c));
            }
        }
    }

    /// Drops one reference to `[start, start+len)`; returns the parts no record held (their
    /// one owner was this mapping: they become free), in block order.
    fn decrement(&mut self, start: u64, len: u64) -> Vec<(u64, u64)> {
        let end = start + len;
        self.split_at(start);
        self.split_at(end);
        let inside: Vec<(u64, u64, u32)> = self.recs.range(start..end).map(|(&s, &(l, c))| (s, l, c)).collect();
        let mut freed = Vec::new();
        let mut at = start;
        for (s, l, c) in inside {
            if s > at {
                freed.push((at, s - at));
            }
            self.recs.remove(&s);
            if c > 2 {
                self.recs.insert(s, (l, c - 1));
            }
            at = s + l;
            self.dirty = true;
        }
        if at < end {
            freed.push((at, end - at));
        }
        self.merge_at(start);
        self.merge_at(end);
        freed
    }
}

impl Xfs<'_> {
    pub(super) fn reflink_fs(&self) -> bool {
        self.sb.v5 && self.sb.ro_compat & RO_REFLINK != 0
    }

    /// Reads AG `sp.ag`'s refcountbt into `sp` (once): records checked for order, range and
    /// count, none overlapping free space, the AGF's block count matching the tree; a CoW
    /// staging record is refused.
    fn refc_load<'s>(&self, sp: &'s mut AgSpace) -> Result<&'s mut Refc, FsError> {
        if sp.refc.is_none() {
            let ag = sp.ag;
            let root = u64::from(be32(&sp.agf, AGF_REFC_ROOT));
            let tree = self.bt_read(ag, REFCBT, root, be32(&sp.agf, AGF_REFC_LEVEL))?;
            if u64::from(be32(&sp.agf, AGF_REFC_BLOCKS)) != tree.blocks.len() as u64 {
                return Err(self.invalid(&format!("AG {ag} AGF refcount_blocks"), be32(&sp.agf, AGF_REFC_BLOCKS), format!("the refcountbt has {} blocks", tree.blocks.len())));
            }
            let ag_len = self.sb.ag_len(ag);
            let mut recs = BTreeMap::new();
            let mut end = 0u64;
            for r in &tree.recs {
                let (raw, l, c) = (be32(r, 0), u64::from(be32(r, 4)), be32(r, 8));
                let s = u64::from(raw & !COW_FLAG);
                if raw & COW_FLAG != 0 {
                    return Err(self.cow_leftovers(ag, s, l));
                }
                if l == 0 || c < 2 || s < end || s + l > ag_len {
                    return Err(self.invalid(&format!("AG {ag} refcountbt record"), format!("{s}+{l}x{c}"), "empty, a count under 2, out of order or outside the AG"));
                }
                if sp.overlaps_free(s, l) {
                    return Err(self.invalid(&format!("AG {ag} refcountbt record"), format!("{s}+{l}x{c}"), "shared blocks that are also free"));
                }
                end = s + l;
                recs.insert(s, (l, c));
            }
            sp.refc = Some(Refc { recs, blocks: tree.blocks, dirty: false, plan: None });
        }
        sp.refc.as_mut().ok_or_else(|| self.invalid("AG", sp.ag, "refcountbt not loaded"))
    }

    fn cow_leftovers(&self, ag: u64, s: u64, l: u64) -> FsError {
        self.unsupported(format!(
            "writes while AG {ag} holds copy-on-write staging extents (refcountbt CoW record {s}+{l}), leftovers of an unclean shutdown the kernel frees at the next mount: mount and unmount the filesystem once"
        ))
    }

    /// Refuses writes to a reflink filesystem whose refcountbt of any AG holds CoW staging
    /// records (checked once: nothing Ferry writes adds one).
    pub(super) fn check_no_cow_leftovers(&self) -> Result<(), FsError> {
        if !self.reflink_fs() || self.cow_checked.get() {
            return Ok(());
        }
        for ag in 0..self.sb.agcount {
            let agf = self.ag_header(ag, 1)?;
            let tree = self.bt_read(ag, REFCBT, u64::from(be32(&agf, AGF_REFC_ROOT)), be32(&agf, AGF_REFC_LEVEL))?;
            if let Some(r) = tree.recs.iter().find(|r| be32(r, 0) & COW_FLAG != 0) {
                return Err(self.cow_leftovers(ag, u64::from(be32(r, 0) & !COW_FLAG), u64::from(be32(r, 4))));
            }
        }
        self.cow_checked.set(true);
        Ok(())
    }

    /// Drops one reference to `[start, start+len)` of AG `sp.ag` (a data-fork mapping of a
    /// reflink filesystem): ranges shared three or more ways are decremented, two-way ones
    /// lose their record, and what no record held is freed.
    pub(super) fn refc_release(&self, sp: &mut AgSpace, start: u64, len: u64) -> Result<(), FsError> {
        if len == 0 || start + len > self.sb.ag_len(sp.ag) {
            return Err(self.invalid(&format!("AG {} extent", sp.ag), format!("{start}+{len}"), "outside the AG"));
        }
        let freed = self.refc_load(sp)?.decrement(start, len);
        for (s, l) in freed {
            // The owner's reverse mapping went first ([`Xfs::release`]).
            self.space_give(sp, s, l)?;
        }
        Ok(())
    }

    /// Before the free-space trees are planned: a changed refcountbt gives its blocks back
    /// and takes as many as the new record set needs from free space (near the old root).
    pub(super) fn refc_prepare(&self, sp: &mut AgSpace) -> Result<(), FsError> {
        let Some(mut rc) = sp.refc.take() else { return Ok(()) };
        if rc.dirty && rc.plan.is_none() {
            let near = rc.blocks.first().copied().unwrap_or(0);
            for b in std::mem::take(&mut rc.blocks) {
                self.space_free(sp, b, 1, Owner::REFC)?;
            }
            let (need, _) = self.bt_blocks_for(REFCBT, rc.recs.len());
            let mut got = Vec::with_capacity(need);
            while got.len() < need {
                let Some((s, l)) = sp.alloc((need - got.len()) as u64, near, Owner::REFC) else {
                    return Err(FsError::NoSpace { fs: self.name.clone(), what: format!("AG {}'s refcount B+tree", sp.ag) });
                };
                got.extend(s..s + l);
            }
            rc.plan = Some(got);
        }
        sp.refc = Some(rc);
        Ok(())
    }

    /// Writes the refcountbt [`Xfs::refc_prepare`] planned and sets its AGF fields in
    /// `sp.agf` (the caller writes the AGF).
    pub(super) fn refc_write(&self, sp: &mut AgSpace, lsn: u64) -> Result<(), FsError> {
        let Some(rc) = sp.refc.as_mut() else { return Ok(()) };
        let Some(blocks) = rc.plan.take() else { return Ok(()) };
        let recs: Vec<Vec<u8>> = rc
            .recs
            .iter()
            .map(|(&s, &(l, c))| {
                let mut r = vec![0u8; 12];
                set32(&mut r, 0, s as u32);
                set32(&mut r, 4, l as u32);
                set32(&mut r, 8, c);
                r
            })
            .collect();
        let (root, levels) = self.bt_write(sp.ag, REFCBT, &recs, &blocks, lsn)?;
        set32(&mut sp.agf, AGF_REFC_BLOCKS, blocks.len() as u32);
        set32(&mut sp.agf, AGF_REFC_ROOT, root as u32);
        set32(&mut sp.agf, AGF_REFC_LEVEL, levels);
        rc.blocks = blocks;
        rc.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refc(recs: &[(u64, u64, u32)]) -> Refc {
        Refc { recs: recs.iter().map(|&(s, l, c)| (s, (l, c))).collect(), blocks: Vec::new(), dirty: false, plan: None }
    }

    fn recs(r: &Refc) -> Vec<(u64, u64, u32)> {
        r.recs.iter().map(|(&s, &(l, c))| (s, l, c)).collect()
    }

    #[test]
    fn xfs_refc_decrement_splits_frees_and_merges() {
        // Unshared: all freed, nothing changes.
        let mut r = refc(&[(100, 10, 2)]);
        assert_eq!(r.decrement(0, 50), vec![(0, 50)]);
        assert!(!r.dirty);
        // Partly shared two ways: the shared middle loses its record, the edges are freed.
        assert_eq!(r.decrement(95, 20), vec![(95, 5), (110, 5)]);
        assert!(recs(&r).is_empty() && r.dirty);
        // Three ways in the middle of a range: split, decremented, edges kept.
        let mut r = refc(&[(100, 10, 3)]);
        assert_eq!(r.decrement(103, 4), vec![]);
        assert_eq!(recs(&r), vec![(100, 3, 3), (103, 4, 2), (107, 3, 3)]);
        // Back to 3 counts, the pieces merge again.
        let mut r = refc(&[(100, 5, 3), (105, 5, 4)]);
        assert_eq!(r.decrement(105, 5), vec![]);
        assert_eq!(recs(&r), vec![(100, 10, 3)]);
        // Across a gap and several records.
        let mut r = refc(&[(10, 5, 2), (20, 5, 5), (25, 5, 2)]);
        assert_eq!(r.decrement(12, 16), vec![(15, 5)]);
        assert_eq!(recs(&r), vec![(10, 2, 2), (20, 5, 4), (28, 2, 2)]);
    }
}
