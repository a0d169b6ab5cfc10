//! Free-space allocation in one AG: the bnobt (free extents by block) and cntbt (by size)
//! are read whole into memory and cross-checked, extents are taken and given back there, and
//! on commit both trees are written again from the new free-extent set (any height), with
//! their blocks taken from and returned to the AGFL, the AGFL refilled from free space to the
//! kernel's minimum (`xfs_alloc_min_freelist`: one more block than each tree's height), and
//! the AGF's roots, levels, free-list indexes, `freeblks`, `longest` and `btreeblks`
//! rewritten (v5: CRC kept, LSN of the AGF reused for the new blocks, owner = the AG).
//!
//! Rebuilding the two trees on commit instead of splitting and merging single blocks gives
//! the same on-disk result a sequence of kernel inserts and deletes may give (valid trees,
//! blocks from the AGFL), and keeps one code path for every height.
//!
//! On filesystems with the reverse-mapping B+tree every allocation and free names its owner
//! ([`Owner`]) and updates the AG's in-memory rmap records ([`super::rmap`]); the rmapbt is
//! rebuilt on commit like the free-space trees, from the same pool of AGFL and tree blocks,
//! its `OWN_AG` records being that pool (so the AGFL refill, the trees' growth and the
//! rmapbt's own size settle together), its height in the AGFL minimum, its blocks in
//! `agf_rmap_blocks` and `agf_btreeblks`. On reflink filesystems new extents are unshared;
//! data-fork frees go through the AG's refcountbt ([`super::refcount`]), loaded into the
//! same [`AgSpace`] and rebuilt on commit (its blocks `OWN_REFC`) before the free-space
//! trees are planned.

use super::btree::{BNOBT, CNTBT, RMAPBT};
use super::bytes::{be32, be64, set32, set64, set_crc};
use super::rmap::{run_count, Bad, Owner, Rmaps};
use super::superblock::{RO_REFLINK, RO_RMAPBT, SB_CRC};
use super::ag::{AGFL_CRC, AGF_CRC};
use super::refcount::Refc;
use super::Xfs;
use crate::fs::FsError;
use std::collections::BTreeMap;

/// The largest extent a bmbt record holds (21-bit length).
pub const MAX_EXTLEN: u64 = (1 << 21) - 1;
const NULL_AGBNO: u32 = u32::MAX;
/// Blocks an allocation leaves free in its AG, so the trees can grow and the AGFL refill
/// on commit cannot run out.
const RESERVE: u64 = 24;

// AGF fields.
const AGF_ROOTS: usize = 16;
const AGF_LEVELS: usize = 28;
const AGF_FLFIRST: usize = 40;
const AGF_FLLAST: usize = 44;
const AGF_FLCOUNT: usize = 48;
const AGF_FREEBLKS: usize = 52;
const AGF_LONGEST: usize = 56;
const AGF_BTREEBLKS: usize = 60;
const AGF_RMAP_BLOCKS: usize = 80;
const AGF_LSN: usize = 208;
/// Superblock free data block count.
const SB_FDBLOCKS: usize = 144;

/// One AG's free space, loaded and being changed.
pub(super) struct AgSpace {
    pub ag: u64,
    pub(super) agf: Vec<u8>,
    agfl: Vec<u8>,
    /// Free extents: start -> length.
    free: BTreeMap<u64, u64>,
    /// Blocks of the bnobt, cntbt (and rmapbt) as read or last written.
    tree_blocks: Vec<u64>,
    /// The AGFL's blocks, first to last.
    fl: Vec<u64>,
    /// freeblks + flcount + btreeblks as loaded: this AG's share of `sb_fdblocks`.
    old_total: u64,
    /// Set by [`Xfs::space_prepare`]: blocks for the bnobt, the cntbt and the rmapbt.
    plan: Option<(usize, usize, usize)>,
    /// The AG's reverse mappings (rmapbt filesystems), `OWN_AG` ones left out.
    rmap: Option<Rmaps>,
    /// The first mapping an allocation could not record (checked before anything is written).
    bad: Option<String>,
    /// The AG's refcountbt, once a data-fork free on a reflink filesystem loaded it.
    pub(super) refc: Option<Refc>,
}

impl AgSpace {
    /// Free blocks in the AG (outside the AGFL).
    pub fn free_blocks(&self) -> u64 {
        self.free.values().sum()
    }

    /// Whether any block of `[start, start+len)` is free.
    pub fn overlaps_free(&self, start: u64, len: u64) -> bool {
        self.free.range(..start + len).next_back().is_some_and(|(&s, &l)| s + l > start)
    }

    /// Takes up to `want` blocks: at `near` if an extent starts or runs there, else the
    /// smallest extent that holds `want` (ties nearest to `near`), else the largest. The
    /// AG keeps [`RESERVE`] blocks back; the blocks are mapped to `owner`. Returns (start,
    /// length).
    pub fn alloc(&mut self, want: u64, near: u64, owner: Owner) -> Option<(u64, u64)> {
        let spare = self.free_blocks().saturating_sub(RESERVE);
        let want = want.min(spare).min(MAX_EXTLEN);
        if want == 0 {
            return None;
        }
        if let Some((&s, &l)) = self.free.range(..=near).next_back() {
            if near < s + l {
                let got = want.min(s + l - near);
                self.take(s, l, near, got);
                self.map(near, got, owner);
                return Some((near, got));
            }
        }
        let dist = |s: u64| s.abs_diff(near);
        let fit = self.free.iter().filter(|(_, &l)| l >= want).min_by_key(|(&s, &l)| (l, dist(s))).map(|(&s, &l)| (s, l));
        let (s, l) = fit.or_else(|| self.free.iter().max_by_key(|(&s, &l)| (l, std::cmp::Reverse(dist(s)))).map(|(&s, &l)| (s, l)))?;
        let got = want.min(l);
        self.take(s, l, s, got);
        self.map(s, got, owner);
        Some((s, got))
    }

    /// Records that `[start, start+len)` (just taken from free space) belongs to `owner`.
    fn map(&mut self, start: u64, len: u64, owner: Owner) {
        if let Some(r) = self.rmap.as_mut() {
            if let Err(why) = r.map(start, len, owner) {
                self.bad.get_or_insert_with(|| format!("AG {} rmap of {start}+{len} for owner {:#x}: {why}", self.ag, owner.owner));
            }
        }
    }

    /// Takes exactly `len` blocks starting at a multiple of `align` (first fit), keeping
    /// [`RESERVE`] back, mapped to `owner`; `None` if no free extent holds such a run.
    pub fn alloc_aligned(&mut self, len: u64, align: u64, owner: Owner) -> Option<u64> {
        if self.free_blocks() < len + RESERVE {
            return None;
        }
        let align = align.max(1);
        let (s, l, at) = self.free.iter().find_map(|(&s, &l)| {
            let at = s.div_ceil(align) * align;
            (at + len <= s + l).then_some((s, l, at))
        })?;
        self.take(s, l, at, len);
        self.map(at, len, owner);
        Some(at)
    }

    /// Removes `[at, at+len)` from the free extent `(s, l)` that holds it.
    fn take(&mut self, s: u64, l: u64, at: u64, len: u64) {
        self.free.remove(&s);
        if at > s {
            self.free.insert(s, at - s);
        }
        if at + len < s + l {
            self.free.insert(at + len, s + l - at - len);
        }
    }

    /// Gives `[start, start+len)` back, merged with its neighbours; `None` if any of it is
    /// already free (the caller's map and the free-space trees disagree).
    fn give(&mut self, start: u64, len: u64) -> Option<()> {
        let (mut s, mut l) = (start, len);
        if let Some((&ps, &pl)) = self.free.range(..=start).next_back() {
            if ps + pl > start {
                return None;
            }
            if ps + pl == start {
                self.free.remove(&ps);
                s = ps;
                l += pl;
            }
        }
        if let Some((&ns, &nl)) = self.free.range(start..).next() {
            if ns < start + len {
                return None;
            }
            if ns == start + len {
                self.free.remove(&ns);
                l += nl;
            }
        }
        self.free.insert(s, l);
        Some(())
    }
}

impl Xfs<'_> {
    /// Refuses allocation where this writer would leave a structure stale (CoW staging
    /// leftovers in a refcountbt).
    pub(super) fn check_can_allocate(&self, _what: &str) -> Result<(), FsError> {
        self.check_no_cow_leftovers()
    }

    /// Loads AG `ag`'s free space: both trees read and compared, the AGFL, the AGF counts,
    /// and on rmapbt filesystems the reverse mappings (checked against all of those).
    pub(super) fn space_load(&self, ag: u64) -> Result<AgSpace, FsError> {
        let agf = self.ag_header(ag, 1)?;
        let agfl = self.ag_header(ag, 3)?;
        let ag_len = self.sb.ag_len(ag);
        let f = |n: &str| format!("AG {ag} AGF {n}");
        let bno = self.bt_read(ag, BNOBT, u64::from(be32(&agf, AGF_ROOTS)), be32(&agf, AGF_LEVELS))?;
        let cnt = self.bt_read(ag, CNTBT, u64::from(be32(&agf, AGF_ROOTS + 4)), be32(&agf, AGF_LEVELS + 4))?;
        let rec = |r: &[u8]| (u64::from(be32(r, 0)), u64::from(be32(r, 4)));
        let mut free = BTreeMap::new();
        let mut end = 0u64;
        let mut total = 0u64;
        for r in &bno.recs {
            let (s, l) = rec(r);
            if l == 0 || s < end || s + l > ag_len {
                return Err(self.invalid(&format!("AG {ag} bnobt record"), format!("{s}+{l}"), "empty, out of order or outside the AG"));
            }
            end = s + l;
            total += l;
            free.insert(s, l);
        }
        let mut by_size: Vec<(u64, u64)> = bno.recs.iter().map(|r| rec(r)).map(|(s, l)| (l, s)).collect();
        by_size.sort_unstable();
        let cnt_recs: Vec<(u64, u64)> = cnt.recs.iter().map(|r| rec(r)).map(|(s, l)| (l, s)).collect();
        if cnt_recs != by_size {
            return Err(self.invalid(&format!("AG {ag} cntbt"), cnt_recs.len(), format!("does not hold the bnobt's {} free extents in size order", by_size.len())));
        }
        if u64::from(be32(&agf, AGF_FREEBLKS)) != total {
            return Err(self.invalid(&f("freeblks"), be32(&agf, AGF_FREEBLKS), format!("the bnobt holds {total} free blocks")));
        }
        let size = self.agfl_size();
        let (first, last, count) = (be32(&agf, AGF_FLFIRST) as usize, be32(&agf, AGF_FLLAST) as usize, be32(&agf, AGF_FLCOUNT) as usize);
        let mut fl = Vec::with_capacity(count.min(size));
        if count > 0 {
            if count > size || first >= size || last >= size || (first + count - 1) % size != last {
                return Err(self.invalid(&f("flfirst/fllast/flcount"), format!("{first}/{last}/{count}"), format!("not a run of the {size}-entry AGFL")));
            }
            let base = if self.sb.v5 { 36 } else { 0 };
            for k in 0..count {
                let b = u64::from(be32(&agfl, base + 4 * ((first + k) % size)));
                if b == 0 || b >= ag_len || free.range(..=b).next_back().is_some_and(|(&s, &l)| b < s + l) {
                    return Err(self.invalid(&format!("AG {ag} AGFL entry"), b, "outside the AG or also free"));
                }
                fl.push(b);
            }
        }
        let mut tree_blocks = bno.blocks;
        tree_blocks.extend(cnt.blocks);
        let mut rmap = None;
        if self.sb.ro_compat & RO_RMAPBT != 0 {
            let t = self.bt_read(ag, RMAPBT, u64::from(be32(&agf, AGF_ROOTS + 8)), be32(&agf, AGF_LEVELS + 8))?;
            if u64::from(be32(&agf, AGF_RMAP_BLOCKS)) != t.blocks.len() as u64 {
                return Err(self.invalid(&f("rmap_blocks"), be32(&agf, AGF_RMAP_BLOCKS), format!("the rmapbt has {} blocks", t.blocks.len())));
            }
            tree_blocks.extend(&t.blocks);
            let mut pool = tree_blocks.clone();
            pool.extend(&fl);
            let reflink = self.sb.ro_compat & RO_REFLINK != 0;
            rmap = Some(Rmaps::from_records(&t.recs, ag_len, &free, &pool, reflink).map_err(|e| match e {
                Bad::Record(k, why) => self.invalid(&format!("AG {ag} rmapbt record {k}"), hex(t.recs.get(k).map_or(&[][..], |r| &r[..])), why),
                Bad::OwnAg => self.invalid(&format!("AG {ag} rmapbt"), "OWN_AG", "the records are not the free-space trees, rmapbt and AGFL blocks"),
            })?);
        }
        let old_total = total + count as u64 + u64::from(be32(&agf, AGF_BTREEBLKS));
        Ok(AgSpace { ag, agf, agfl, free, tree_blocks, fl, old_total, plan: None, rmap, bad: None, refc: None })
    }

    /// Entries the AGFL sector holds.
    fn agfl_size(&self) -> usize {
        let hdr = if self.sb.v5 { 36 } else { 0 };
        (self.sb.sectsize as usize - hdr) / 4
    }

    /// Returns `[start, start+len)` of AG `sp.ag`, owned by `owner`, to free space.
    pub(super) fn space_free(&self, sp: &mut AgSpace, start: u64, len: u64, owner: Owner) -> Result<(), FsError> {
        if len == 0 || start + len > self.sb.ag_len(sp.ag) {
            return Err(self.invalid(&format!("AG {} extent", sp.ag), format!("{start}+{len}"), "outside the AG"));
        }
        self.rmap_unmap(sp, start, len, owner)?;
        self.space_give(sp, start, len)
    }

    /// Returns `[start, start+len)` of AG `sp.ag` to free space whose owner's reverse mapping
    /// is already gone ([`Xfs::rmap_unmap`]): the unshared part of a released reflink extent.
    pub(super) fn space_give(&self, sp: &mut AgSpace, start: u64, len: u64) -> Result<(), FsError> {
        let ag = sp.ag;
        let field = || format!("AG {ag} extent");
        if len == 0 || start + len > self.sb.ag_len(sp.ag) {
            return Err(self.invalid(&field(), format!("{start}+{len}"), "outside the AG"));
        }
        sp.give(start, len).ok_or_else(|| self.invalid(&field(), format!("{start}+{len}"), "freed but already free"))
    }

    /// Removes `owner`'s reverse mapping of `[start, start+len)` (nothing without rmapbt),
    /// leaving the blocks allocated: the step a free of a shared (reflinked) extent would
    /// stop at while other owners keep it, the refcountbt dropping one count instead of
    /// [`Xfs::space_free`] giving the blocks back.
    pub(super) fn rmap_unmap(&self, sp: &mut AgSpace, start: u64, len: u64, owner: Owner) -> Result<(), FsError> {
        let ag = sp.ag;
        match sp.rmap.as_mut() {
            Some(r) => r.unmap(start, len, owner).map_err(|why| self.invalid(&format!("AG {ag} rmapbt (owner {:#x})", owner.owner), format!("{start}+{len}"), why)),
            None => Ok(()),
        }
    }

    /// Works out, in memory, the blocks both trees need for the new free-extent set and the
    /// AGFL's fill (taking blocks from free space or giving excess back until they agree).
    /// Fails, without writing, when the AG cannot hold its own trees.
    pub(super) fn space_prepare(&self, sp: &mut AgSpace) -> Result<(), FsError> {
        if let Some(why) = sp.bad.take() {
            return Err(self.invalid(&format!("AG {} rmapbt", sp.ag), "", why));
        }
        self.refc_prepare(sp)?;
        if let Some(why) = sp.bad.take() {
            return Err(self.invalid(&format!("AG {} rmapbt", sp.ag), "", why));
        }
        let maxlv = self.bt_maxlevels(BNOBT, self.sb.ag_len(sp.ag).div_ceil(2));
        let rmaxlv = self.bt_maxlevels(RMAPBT, self.sb.ag_len(sp.ag));
        for _ in 0..32 {
            let (nb, lb) = self.bt_blocks_for(BNOBT, sp.free.len());
            let (nc, lc) = self.bt_blocks_for(CNTBT, sp.free.len());
            // The rmapbt holds the other owners' records and one per run of pool blocks.
            let (nr, lr) = match &sp.rmap {
                Some(r) => {
                    let pool: Vec<u64> = sp.tree_blocks.iter().chain(&sp.fl).copied().collect();
                    let (n, l) = self.bt_blocks_for(RMAPBT, r.len() + run_count(&pool));
                    (n, (l + 1).min(rmaxlv) as usize)
                }
                None => (0, 0),
            };
            let min_fl = ((lb + 1).min(maxlv) + (lc + 1).min(maxlv)) as usize + lr;
            let target = nb + nc + nr + min_fl;
            let pool = sp.tree_blocks.len() + sp.fl.len();
            if pool < target {
                let mut need = (target - pool) as u64;
                while need > 0 {
                    // Refill takes single blocks from wherever (smallest extents first), as
                    // the kernel's freelist fix-up does by size.
                    let Some((&s, &l)) = sp.free.iter().min_by_key(|(&s, &l)| (l, s)) else {
                        return Err(FsError::NoSpace { fs: self.name.clone(), what: format!("AG {}'s free-space B+trees", sp.ag) });
                    };
                    let got = need.min(l);
                    sp.take(s, l, s, got);
                    sp.fl.extend(s..s + got);
                    need -= got;
                }
            } else if pool > nb + nc + nr + self.agfl_size() {
                // Only what the AGFL cannot hold goes back to free space: trimming it to the
                // minimum could add free extents, grow a tree, and take blocks again. (Pool
                // blocks are `OWN_AG`: leaving the pool is their unmapping.)
                for _ in 0..pool - (nb + nc + nr + self.agfl_size()) {
                    let Some(b) = sp.fl.pop().or_else(|| sp.tree_blocks.pop()) else { break };
                    sp.give(b, 1).ok_or_else(|| self.invalid(&format!("AG {} AGFL entry", sp.ag), b, "freed but already free"))?;
                }
            } else {
                if min_fl > self.agfl_size() {
                    return Err(self.unsupported(format!("AG {}: an AGFL of {} entries (needs {min_fl})", sp.ag, self.agfl_size())));
                }
                sp.plan = Some((nb, nc, nr));
                return Ok(());
            }
        }
        Err(self.invalid(&format!("AG {} free space", sp.ag), sp.free.len(), "the B+tree sizes did not settle"))
    }

    /// Writes what [`Xfs::space_prepare`] planned: both trees, the AGFL, the AGF. Returns
    /// the change in this AG's share of `sb_fdblocks`.
    pub(super) fn space_write(&self, sp: &mut AgSpace) -> Result<i64, FsError> {
        let Some((nb, nc, nr)) = sp.plan else {
            return Err(self.invalid(&format!("AG {} free space", sp.ag), "", "written before it was prepared"));
        };
        let mut pool = std::mem::take(&mut sp.tree_blocks);
        pool.append(&mut sp.fl);
        let rmap_recs = sp.rmap.as_ref().map(|r| r.encode(&pool));
        let fl = pool.split_off(nb + nc + nr);
        let enc = |s: u64, l: u64| {
            let mut r = vec![0u8; 8];
            set32(&mut r, 0, s as u32);
            set32(&mut r, 4, l as u32);
            r
        };
        let by_bno: Vec<Vec<u8>> = sp.free.iter().map(|(&s, &l)| enc(s, l)).collect();
        let mut sizes: Vec<(u64, u64)> = sp.free.iter().map(|(&s, &l)| (l, s)).collect();
        sizes.sort_unstable();
        let by_cnt: Vec<Vec<u8>> = sizes.iter().map(|&(l, s)| enc(s, l)).collect();
        let lsn = be64(&sp.agf, AGF_LSN);
        let (broot, blev) = self.bt_write(sp.ag, BNOBT, &by_bno, &pool[..nb], lsn)?;
        let (croot, clev) = self.bt_write(sp.ag, CNTBT, &by_cnt, &pool[nb..nb + nc], lsn)?;
        let rmap_tree = match &rmap_recs {
            Some(recs) => Some(self.bt_write(sp.ag, RMAPBT, recs, &pool[nb + nc..], lsn)?),
            None => None,
        };
        self.refc_write(sp, lsn)?;
        // AGFL: the list from entry 0, unused entries NULL.
        let base = if self.sb.v5 { 36 } else { 0 };
        for k in 0..self.agfl_size() {
            set32(&mut sp.agfl, base + 4 * k, fl.get(k).map_or(NULL_AGBNO, |&b| b as u32));
        }
        if self.sb.v5 {
            set_crc(&mut sp.agfl, AGFL_CRC);
        }
        self.vol.write(&sp.agfl, self.ag_sector(sp.ag, 3), &self.name)?;
        let freeblks = sp.free_blocks();
        let longest = sp.free.values().copied().max().unwrap_or(0);
        // Every tree block but the roots (the rmapbt's included when there is one).
        let btreeblks = (nb + nc + nr - 2 - usize::from(nr > 0)) as u64;
        let agf = &mut sp.agf;
        set32(agf, AGF_ROOTS, broot as u32);
        set32(agf, AGF_ROOTS + 4, croot as u32);
        set32(agf, AGF_LEVELS, blev);
        set32(agf, AGF_LEVELS + 4, clev);
        if let Some((rroot, rlev)) = rmap_tree {
            set32(agf, AGF_ROOTS + 8, rroot as u32);
            set32(agf, AGF_LEVELS + 8, rlev);
            set32(agf, AGF_RMAP_BLOCKS, nr as u32);
        }
        set32(agf, AGF_FLFIRST, 0);
        set32(agf, AGF_FLLAST, (fl.len().max(1) - 1) as u32);
        set32(agf, AGF_FLCOUNT, fl.len() as u32);
        set32(agf, AGF_FREEBLKS, freeblks as u32);
        set32(agf, AGF_LONGEST, longest as u32);
        set32(agf, AGF_BTREEBLKS, btreeblks as u32);
        if self.sb.v5 {
            set_crc(agf, AGF_CRC);
        }
        self.vol.write(agf, self.ag_sector(sp.ag, 1), &self.name)?;
        let new_total = freeblks + fl.len() as u64 + btreeblks;
        let delta = new_total as i64 - sp.old_total as i64;
        sp.tree_blocks = pool;
        sp.fl = fl;
        sp.old_total = new_total;
        sp.plan = None;
        Ok(delta)
    }

    /// Adds `delta` to the superblock's free block count (which lazy-count filesystems
    /// trust on a clean mount) and writes the primary superblock.
    pub(super) fn sb_add_free(&mut self, delta: i64) -> Result<(), FsError> {
        if delta == 0 {
            return Ok(());
        }
        let raw = &mut self.sb.raw;
        let v = be64(raw, SB_FDBLOCKS).saturating_add_signed(delta);
        set64(raw, SB_FDBLOCKS, v);
        self.write_sb()
    }

    /// Writes the primary superblock from `sb.raw` (v5: CRC over the sector).
    pub(super) fn write_sb(&mut self) -> Result<(), FsError> {
        if self.sb.v5 {
            let n = self.sb.sectsize as usize;
            if let Some(sector) = self.sb.raw.get_mut(..n) {
                set_crc(sector, SB_CRC);
            }
        }
        self.vol.write(&self.sb.raw, 0, &self.name)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
