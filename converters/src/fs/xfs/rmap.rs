//! The reverse-mapping B+tree (rmapbt, v5 `-m rmapbt=1`): for every used block of an AG, who
//! owns it. Records are (start, length, owner, offset word): the owner is an inode number or
//! a special owner (`OWN_FS` headers, `OWN_LOG`, `OWN_AG` free-space trees, rmapbt and AGFL,
//! `OWN_INOBT`, `OWN_INODES` chunks, `OWN_REFC`, `OWN_COW`); the offset word holds the file
//! offset (54 bits) and flags (attr fork, bmbt block, unwritten). Node keys are pairs: the
//! lowest key of a child and the highest key any record under it reaches (records may
//! overlap where reflink shares blocks).
//!
//! Like the free-space trees, an AG's rmapbt is read whole into memory with
//! [`Xfs::space_load`](super::Xfs::space_load) (records checked: ordered, inside the AG,
//! known owners and flags, none over free space, no overlap without reflink; the `OWN_AG`
//! records must be exactly the free-space trees, the rmapbt and the AGFL). The writer maps
//! and unmaps as it allocates and frees, merging neighbours as the kernel does, and on
//! commit the tree is rebuilt with the `OWN_AG` records worked out from the final
//! tree/AGFL pool. Records live per (owner, fork/bmbt class), start, so a free finds the
//! records it splits without a scan.
//!
//! Shared extents (reflink) are not freed by this writer: the callers refuse reflinked
//! files. Freeing one would call [`Xfs::rmap_unmap`](super::Xfs::rmap_unmap) for this owner
//! only and leave the space allocated while the refcountbt still counts other owners.
//! The writer never makes sparse inode chunks, so `OWN_INODES` records it adds are whole
//! chunks; mkfs's and the kernel's sparse ones are kept as read.

use super::bytes::{be32, be64, set32, set64};
use std::collections::BTreeMap;

pub const OWN_AG: u64 = -5i64 as u64;
pub const OWN_INOBT: u64 = -6i64 as u64;
pub const OWN_INODES: u64 = -7i64 as u64;
pub const OWN_REFC: u64 = -8i64 as u64;
/// The special owners run from -1 (`OWN_NULL`) to -9 (`OWN_COW`).
const OWN_LOWEST: u64 = -9i64 as u64;
pub const OFF_ATTR: u64 = 1 << 63;
pub const OFF_BMBT: u64 = 1 << 62;
pub const OFF_UNWRITTEN: u64 = 1 << 61;
pub const OFF_MASK: u64 = (1 << 54) - 1;
const CLASS: u64 = OFF_ATTR | OFF_BMBT;
/// Longest record (32-bit block count).
const LEN_MAX: u64 = u32::MAX as u64;

/// Who owns an extent: owner and offset word of its first block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub owner: u64,
    pub off: u64,
}

impl Owner {
    pub const INOBT: Owner = Owner { owner: OWN_INOBT, off: 0 };
    pub const INODES: Owner = Owner { owner: OWN_INODES, off: 0 };
    pub const REFC: Owner = Owner { owner: OWN_REFC, off: 0 };

    /// Blocks of inode `ino`'s data (or, `attr`, attribute) fork from file block `off`.
    pub fn file(ino: u64, off: u64, attr: bool, unwritten: bool) -> Owner {
        Owner { owner: ino, off: (off & OFF_MASK) | if attr { OFF_ATTR } else { 0 } | if unwritten { OFF_UNWRITTEN } else { 0 } }
    }

    /// Bmbt blocks of inode `ino`'s data (or attribute) fork.
    pub fn bmbt(ino: u64, attr: bool) -> Owner {
        Owner { owner: ino, off: OFF_BMBT | if attr { OFF_ATTR } else { 0 } }
    }

    /// The offset word means nothing for special owners and bmbt blocks.
    fn ignores_offset(off: u64, owner: u64) -> bool {
        owner & (1 << 63) != 0 || off & OFF_BMBT != 0
    }

    /// The owner of the block `k` blocks further on.
    pub fn at(self, k: u64) -> Owner {
        if Self::ignores_offset(self.off, self.owner) {
            self
        } else {
            Owner { owner: self.owner, off: (self.off & !OFF_MASK) | ((self.off & OFF_MASK) + k) }
        }
    }
}

/// One AG's reverse mappings, `OWN_AG` ones excepted: (owner, class, start) -> (length,
/// offset word).
#[derive(Default)]
pub struct Rmaps {
    recs: BTreeMap<(u64, u64, u64), (u64, u64)>,
}

/// What [`Rmaps::from_records`] found wrong.
pub enum Bad {
    /// A record (index, reason).
    Record(usize, &'static str),
    /// The `OWN_AG` records are not the blocks of the trees and the AGFL.
    OwnAg,
}

impl Rmaps {
    /// Records other than `OWN_AG`.
    pub fn len(&self) -> usize {
        self.recs.len()
    }

    /// Checks the on-disk records (in tree order) of an AG of `ag_len` blocks, `free` its
    /// free extents, `pool` the blocks owned by `OWN_AG` (free-space trees, rmapbt, AGFL).
    pub fn from_records(recs: &[Vec<u8>], ag_len: u64, free: &BTreeMap<u64, u64>, pool: &[u64], reflink: bool) -> Result<Rmaps, Bad> {
        let mut out = Rmaps::default();
        let mut prev: Option<(u64, u64, u64)> = None;
        let mut max_end = 0u64;
        let mut own_ag: Vec<(u64, u64)> = Vec::new();
        for (k, r) in recs.iter().enumerate() {
            let (start, len, owner, off) = decode(r);
            let bad = |why| Err(Bad::Record(k, why));
            if len == 0 || start + len > ag_len {
                return bad("empty or outside the AG");
            }
            let key = sort_key(start, owner, off);
            if prev.is_some_and(|p| p >= key) {
                return bad("out of order");
            }
            prev = Some(key);
            if owner & (1 << 63) != 0 {
                if owner < OWN_LOWEST || off != 0 {
                    return bad("unknown special owner, or one with an offset");
                }
            } else if off & !(OFF_MASK | OFF_ATTR | OFF_BMBT | OFF_UNWRITTEN) != 0
                || (off & OFF_BMBT != 0 && off & (OFF_MASK | OFF_UNWRITTEN) != 0)
                || (off & OFF_MASK) + len > OFF_MASK + 1
            {
                return bad("unknown flags, or a bmbt block with an offset");
            }
            if free.range(..start + len).next_back().is_some_and(|(&s, &l)| s + l > start) {
                return bad("maps free space");
            }
            if !reflink && start < max_end {
                return bad("overlaps another record without reflink");
            }
            max_end = max_end.max(start + len);
            if owner == OWN_AG {
                own_ag.push((start, len));
            } else if out.recs.insert((owner, off & CLASS, start), (len, off)).is_some() {
                return bad("duplicate");
            }
        }
        // Within one owner and class, records must not overlap (unmap relies on it).
        let mut last: Option<((u64, u64), u64)> = None;
        for (&(o, c, s), &(l, _)) in &out.recs {
            if last.is_some_and(|(oc, end)| oc == (o, c) && s < end) {
                return Err(Bad::Record(0, "overlaps a record of the same owner"));
            }
            last = Some(((o, c), s + l));
        }
        own_ag.sort_unstable();
        if runs(pool) != own_ag {
            return Err(Bad::OwnAg);
        }
        Ok(out)
    }

    /// Maps `[start, start+len)` to `o`, merged with a neighbour of the same owner, class
    /// and state that it continues (in blocks and file offset).
    pub fn map(&mut self, start: u64, len: u64, o: Owner) -> Result<(), &'static str> {
        let class = o.off & CLASS;
        let (mut s, mut l, mut off) = (start, len, o.off);
        let prev = self.recs.range(..(o.owner, class, start)).next_back().map(|(&k, &v)| (k, v));
        if let Some(((po, pc, ps), (pl, poff))) = prev {
            if (po, pc) == (o.owner, class) {
                if ps + pl > start {
                    return Err("mapped twice");
                }
                if ps + pl == start && mergeable(poff, pl, off, o.owner) && pl + l <= LEN_MAX {
                    self.recs.remove(&(po, pc, ps));
                    (s, l, off) = (ps, pl + l, poff);
                }
            }
        }
        let next = self.recs.range((o.owner, class, start)..).next().map(|(&k, &v)| (k, v));
        if let Some(((no, nc, ns), (nl, noff))) = next {
            if (no, nc) == (o.owner, class) {
                if ns < start + len {
                    return Err("mapped twice");
                }
                if ns == start + len && mergeable(off, l, noff, o.owner) && l + nl <= LEN_MAX {
                    self.recs.remove(&(no, nc, ns));
                    l += nl;
                }
            }
        }
        self.recs.insert((o.owner, class, s), (l, off));
        Ok(())
    }

    /// Removes `o`'s mapping of `[start, start+len)` (the pieces before and after stay),
    /// checking the records agree on offset and state. For a shared extent this removes
    /// only this owner's record: the hook a refcount-aware free would use.
    pub fn unmap(&mut self, start: u64, len: u64, o: Owner) -> Result<(), &'static str> {
        let class = o.off & CLASS;
        let end = start + len;
        let mut hit = Vec::new();
        for (&(_, _, rs), &(rl, roff)) in self.recs.range((o.owner, class, 0)..(o.owner, class, end)).rev() {
            if rs + rl <= start {
                break;
            }
            hit.push((rs, rl, roff));
        }
        // Checked whole before anything changes: a refused free leaves the records as they were.
        let mut covered = 0;
        for &(rs, rl, roff) in &hit {
            let (a, b) = (rs.max(start), (rs + rl).min(end));
            let want = o.at(a - start).off;
            let have = Owner { owner: o.owner, off: roff }.at(a - rs).off;
            if want != have {
                return Err("maps it at another offset or state");
            }
            covered += b - a;
        }
        if covered != len {
            return Err("does not map all of it to this owner");
        }
        for (rs, rl, roff) in hit {
            let (a, b) = (rs.max(start), (rs + rl).min(end));
            self.recs.remove(&(o.owner, class, rs));
            if a > rs {
                self.recs.insert((o.owner, class, rs), (a - rs, roff));
            }
            if b < rs + rl {
                let rest = Owner { owner: o.owner, off: roff }.at(b - rs).off;
                self.recs.insert((o.owner, class, b), (rs + rl - b, rest));
            }
        }
        Ok(())
    }

    /// Every record, `OWN_AG` ones made from `pool`, encoded in tree order.
    pub fn encode(&self, pool: &[u64]) -> Vec<Vec<u8>> {
        let mut all: Vec<(u64, u64, u64, u64)> = self.recs.iter().map(|(&(o, _, s), &(l, off))| (s, l, o, off)).collect();
        all.extend(runs(pool).into_iter().map(|(s, l)| (s, l, OWN_AG, 0)));
        all.sort_unstable_by_key(|&(s, _, o, off)| sort_key(s, o, off));
        all.into_iter()
            .map(|(s, l, o, off)| {
                let mut r = vec![0u8; 24];
                set32(&mut r, 0, s as u32);
                set32(&mut r, 4, l as u32);
                set64(&mut r, 8, o);
                set64(&mut r, 16, off);
                r
            })
            .collect()
    }
}

/// Whether a record (`loff`, `llen`) is continued by one at offset word `roff`.
fn mergeable(loff: u64, llen: u64, roff: u64, owner: u64) -> bool {
    if (loff ^ roff) & (CLASS | OFF_UNWRITTEN) != 0 {
        return false;
    }
    Owner::ignores_offset(loff, owner) || (loff & OFF_MASK) + llen == roff & OFF_MASK
}

/// The number of records `pool`'s blocks make (runs of consecutive blocks).
pub fn run_count(pool: &[u64]) -> usize {
    runs(pool).len()
}

/// Consecutive runs of `blocks` (any order): (start, length), sorted.
fn runs(blocks: &[u64]) -> Vec<(u64, u64)> {
    let mut b = blocks.to_vec();
    b.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for x in b {
        match out.last_mut() {
            Some((s, l)) if *s + *l == x => *l += 1,
            _ => out.push((x, 1)),
        }
    }
    out
}

fn decode(r: &[u8]) -> (u64, u64, u64, u64) {
    (u64::from(be32(r, 0)), u64::from(be32(r, 4)), be64(r, 8), be64(r, 16))
}

/// Tree order: start block, owner, offset word without the unwritten bit (as the kernel's
/// keys leave it out).
fn sort_key(start: u64, owner: u64, off: u64) -> (u64, u64, u64) {
    (start, owner, off & !OFF_UNWRITTEN)
}

fn key_bytes(k: (u64, u64, u64)) -> [u8; 20] {
    let mut b = [0u8; 20];
    set32(&mut b, 0, k.0 as u32);
    set64(&mut b, 4, k.1);
    set64(&mut b, 12, k.2);
    b
}

fn key_of(b: &[u8]) -> (u64, u64, u64) {
    (u64::from(be32(b, 0)), be64(b, 4), be64(b, 12))
}

/// The node key (low key, high key: 40 bytes) of a leaf holding `recs`.
pub fn leaf_key(recs: &[Vec<u8>]) -> Vec<u8> {
    let low = recs.first().map_or((0, 0, 0), |r| {
        let (s, _, o, off) = decode(r);
        sort_key(s, o, off)
    });
    let high = recs
        .iter()
        .map(|r| {
            let (s, l, o, off) = decode(r);
            let adj = l.saturating_sub(1);
            let off = if Owner::ignores_offset(off, o) { off } else { Owner { owner: o, off }.at(adj).off };
            sort_key(s + adj, o, off)
        })
        .max()
        .unwrap_or((0, 0, 0));
    let mut k = key_bytes(low).to_vec();
    k.extend_from_slice(&key_bytes(high));
    k
}

/// The node key of a node whose children have `keys` (40 bytes each).
pub fn node_key(keys: &[&[u8]]) -> Vec<u8> {
    let mut k = keys.first().map_or_else(|| vec![0u8; 20], |f| f[..20].to_vec());
    let high = keys.iter().map(|c| key_of(&c[20..40])).max().unwrap_or((0, 0, 0));
    k.extend_from_slice(&key_bytes(high));
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(r: &Rmaps) -> Vec<(u64, u64, u64, u64)> {
        r.recs.iter().map(|(&(o, _, s), &(l, off))| (s, l, o, off)).collect()
    }

    #[test]
    fn map_merges_continuations_and_unmap_splits() {
        let mut r = Rmaps::default();
        r.map(100, 4, Owner::file(131, 0, false, false)).unwrap();
        r.map(104, 2, Owner::file(131, 4, false, false)).unwrap();
        // Not a continuation: another offset, another fork, a bmbt block.
        r.map(106, 1, Owner::file(131, 9, false, false)).unwrap();
        r.map(107, 1, Owner::file(131, 0, true, false)).unwrap();
        r.map(108, 1, Owner::bmbt(131, false)).unwrap();
        r.map(109, 1, Owner::bmbt(131, false)).unwrap();
        r.map(50, 8, Owner::INODES).unwrap();
        r.map(40, 10, Owner::INODES).unwrap();
        assert_eq!(
            recs(&r),
            [(100, 6, 131, 0), (106, 1, 131, 9), (108, 2, 131, OFF_BMBT), (107, 1, 131, OFF_ATTR), (40, 18, OWN_INODES, 0)]
        );
        assert!(r.map(105, 1, Owner::file(131, 5, false, false)).is_err(), "mapped twice");
        r.unmap(102, 2, Owner::file(131, 2, false, false)).unwrap();
        assert_eq!(recs(&r)[..2], [(100, 2, 131, 0), (104, 2, 131, 4)]);
        assert!(r.unmap(104, 1, Owner::file(131, 7, false, false)).is_err(), "another offset");
        assert!(r.unmap(103, 2, Owner::file(131, 3, false, false)).is_err(), "block 103 is no longer mapped");
        // Mapping the hole back joins both neighbours.
        r.map(102, 2, Owner::file(131, 2, false, false)).unwrap();
        assert_eq!(recs(&r)[0], (100, 6, 131, 0));
        r.unmap(101, 4, Owner::file(131, 1, false, false)).unwrap();
        assert_eq!(recs(&r)[..2], [(100, 1, 131, 0), (105, 1, 131, 5)]);
        r.unmap(108, 2, Owner::bmbt(131, false)).unwrap();
        assert_eq!(recs(&r).len(), 5);
    }

    #[test]
    fn keys_reach_the_highest_block_and_offset() {
        let r = Rmaps::default();
        let enc = r.encode(&[9, 7, 8, 20]);
        assert_eq!(enc.len(), 2, "two runs of OWN_AG blocks");
        let mut leaf = enc.clone();
        let mut rec = vec![0u8; 24];
        set32(&mut rec, 0, 10);
        set32(&mut rec, 4, 30);
        set64(&mut rec, 8, 131);
        set64(&mut rec, 16, 5);
        leaf.insert(1, rec);
        let k = leaf_key(&leaf);
        assert_eq!(key_of(&k[..20]), (7, OWN_AG, 0));
        assert_eq!(key_of(&k[20..]), (39, 131, 34), "the long record ends last");
        let k2 = node_key(&[&k, &leaf_key(&enc[1..])]);
        assert_eq!(key_of(&k2[20..]), (39, 131, 34));
    }
}
