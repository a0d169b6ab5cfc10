//! `$I30` directory indexes: a B-tree whose root lives in the directory's `$INDEX_ROOT`
//! and whose other nodes are INDX blocks of `$INDEX_ALLOCATION`, in use as its `$BITMAP`
//! says. Entries (a `$FILE_NAME` value as key) are ordered by the `$UpCase` collation.
//! Inserts go down to a leaf and split full nodes on the way back up (the median moves
//! up); a root that no longer fits in its MFT record moves into a new block. Removals
//! rebuild the tree from its ordered entries, packing full nodes bottom-up.

use super::bytes::*;
use super::name::{collate, same};
use super::record::*;
use super::runs::{self, Run};
use super::Ntfs;
use crate::fs::FsError;
use std::cmp::Ordering;
use std::collections::HashMap;

const MAX_DEPTH: usize = 32;
const LARGE_INDEX: u32 = 1;
/// Directory indexes kept in memory (a path's ancestors and the directories written).
const INDEX_CACHE: usize = 16;

/// One index entry: the file it names, its `$FILE_NAME` key, its left subtree.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub file_ref: u64,
    pub key: Vec<u8>,
    pub child: Option<u64>,
}

impl Entry {
    pub fn name(&self) -> Vec<u16> {
        let n = self.key[0x40] as usize;
        (0..n).map(|i| u16_at(&self.key, 0x42 + 2 * i).unwrap_or(0)).collect()
    }
    pub fn namespace(&self) -> u8 {
        self.key[0x41]
    }
    fn size(&self) -> usize {
        align8(16 + self.key.len()) + if self.child.is_some() { 8 } else { 0 }
    }
}

#[derive(Clone, Debug, Default)]
pub(super) struct Node {
    pub entries: Vec<Entry>,
    pub end_child: Option<u64>,
}

impl Node {
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for e in &self.entries {
            let len = e.size();
            let at = out.len();
            out.resize(at + len, 0);
            put64(&mut out, at, e.file_ref);
            put16(&mut out, at + 8, len as u16);
            put16(&mut out, at + 10, e.key.len() as u16);
            put32(&mut out, at + 12, e.child.is_some() as u32);
            out[at + 16..at + 16 + e.key.len()].copy_from_slice(&e.key);
            if let Some(c) = e.child {
                put64(&mut out, at + len - 8, c);
            }
        }
        let at = out.len();
        let len = if self.end_child.is_some() { 24 } else { 16 };
        out.resize(at + len, 0);
        put16(&mut out, at + 8, len as u16);
        put32(&mut out, at + 12, 2 | self.end_child.is_some() as u32);
        if let Some(c) = self.end_child {
            put64(&mut out, at + 16, c);
        }
        out
    }
}

/// Parses the node whose header is at `h` in `b`.
fn parse_node(b: &[u8], h: usize) -> Result<Node, String> {
    let eo = u32_at(b, h).ok_or("node header past the end")? as usize;
    let il = u32_at(b, h + 4).ok_or("node header past the end")? as usize;
    let end = h.checked_add(il).filter(|e| *e <= b.len()).ok_or(format!("index length {il} past the node"))?;
    let mut p = h.checked_add(eo).ok_or("entries offset")?;
    let mut node = Node::default();
    loop {
        let len = u16_at(b, p + 8).ok_or(format!("entry at {p} past the node"))? as usize;
        let klen = u16_at(b, p + 10).unwrap_or(0) as usize;
        let flags = u16_at(b, p + 12).unwrap_or(0);
        if len < 16 || !len.is_multiple_of(8) || p + len > end {
            return Err(format!("entry at {p} of length {len} (node ends at {end})"));
        }
        let child = if flags & 1 != 0 {
            if len < 24 {
                return Err(format!("entry at {p} of length {len} with a subnode"));
            }
            u64_at(b, p + len - 8)
        } else {
            None
        };
        if flags & 2 != 0 {
            node.end_child = child;
            break;
        }
        let room = len - 16 - if child.is_some() { 8 } else { 0 };
        if klen < 0x42 || klen > room || 0x42 + 2 * b[p + 16 + 0x40] as usize > klen {
            return Err(format!("entry at {p}: key length {klen} for a {len}-byte entry"));
        }
        if child.is_some() != node.entries.first().map_or(child.is_some(), |e: &Entry| e.child.is_some()) {
            return Err(format!("entry at {p}: subnode flags differ within a node"));
        }
        node.entries.push(Entry { file_ref: u64_at(b, p).unwrap_or(0), key: b[p + 16..p + 16 + klen].to_vec(), child });
        p += len;
    }
    if node.entries.first().is_some_and(|e| e.child.is_some() != node.end_child.is_some()) {
        return Err("subnode flags differ within a node".into());
    }
    Ok(node)
}

#[derive(Clone, Copy, Debug)]
enum Loc {
    Root,
    Block(u64),
}

/// A directory's index, its nodes read as needed and kept.
pub(super) struct Index {
    pub dir: u64,
    block: usize,
    cpb: u8,
    vcn_unit: u64,
    root: Node,
    blocks: HashMap<u64, Node>,
    alloc_runs: Vec<Run>,
    alloc_bytes: u64,
    bitmap: Vec<u8>,
    /// Whether the directory's entries carry DOS names (computed once).
    pub uses_dos: Option<bool>,
}

impl<'a> Ntfs<'a> {
    /// Loads the `$I30` index of directory record `dir`.
    pub(super) fn load_index(&self, dir: u64) -> Result<Index, FsError> {
        let rec = self.read_record(dir)?;
        let i30 = i30();
        let v = |what: &str| format!("directory record {dir} {what}");
        let ra = rec.find(AT_INDEX_ROOT, &i30).filter(|a| !a.nonres).ok_or_else(|| self.bad("$INDEX_ROOT", v("$I30"), "missing"))?;
        let rv = rec.value(&ra);
        let (ty, coll, block) = (u32_at(rv, 0).unwrap_or(0), u32_at(rv, 4).unwrap_or(0), u32_at(rv, 8).unwrap_or(0) as usize);
        if ty != AT_FILE_NAME || coll != 1 || !(512..=65536).contains(&block) || !block.is_power_of_two() {
            return Err(self.bad("$INDEX_ROOT", format!("{}: type {ty:#x}, collation {coll}, block {block}", v("")), "not a file name index"));
        }
        let root = parse_node(rv, 0x10).map_err(|e| self.bad("$INDEX_ROOT", v("root"), e))?;
        let vcn_unit = if block as u64 >= self.geo.cluster { self.geo.cluster } else { 512 };
        let mut ix = Index { dir, block, cpb: rv[12], vcn_unit, root, blocks: HashMap::new(), alloc_runs: Vec::new(), alloc_bytes: 0, bitmap: Vec::new(), uses_dos: None };
        if let Some(aa) = rec.find(AT_INDEX_ALLOCATION, &i30) {
            if !aa.nonres {
                return Err(self.bad("$INDEX_ALLOCATION", v(""), "resident"));
            }
            let (r, s) = self.attr_runs(&rec, &aa)?;
            ix.alloc_runs = r;
            ix.alloc_bytes = s.size;
            let ba = rec.find(AT_BITMAP, &i30).ok_or_else(|| self.bad("$BITMAP", v("$I30"), "missing"))?;
            ix.bitmap = self.attr_value(&rec, &ba, 1 << 20)?;
        } else if ix.root.end_child.is_some() {
            return Err(self.bad("$INDEX_ROOT", v(""), "has subnodes but no $INDEX_ALLOCATION"));
        }
        Ok(ix)
    }

    /// The cached index of `dir`, loaded if needed (taken out of the cache: put it back
    /// with `put_index` when the operation succeeded).
    pub(super) fn take_index(&mut self, dir: u64) -> Result<Index, FsError> {
        match self.cache.iter().position(|ix| ix.dir == dir) {
            Some(i) => Ok(self.cache.remove(i)),
            None => self.load_index(dir),
        }
    }

    pub(super) fn put_index(&mut self, ix: Index) {
        if self.cache.len() >= INDEX_CACHE {
            self.cache.remove(0);
        }
        self.cache.push(ix);
    }


    fn node(&self, ix: &mut Index, loc: Loc) -> Result<Node, FsError> {
        let vcn = match loc {
            Loc::Root => return Ok(ix.root.clone()),
            Loc::Block(v) => v,
        };
        if let Some(n) = ix.blocks.get(&vcn) {
            return Ok(n.clone());
        }
        let what = || format!("directory record {} INDX block at VCN {vcn}", ix.dir);
        let off = vcn.checked_mul(ix.vcn_unit).filter(|o| o.saturating_add(ix.block as u64) <= ix.alloc_bytes);
        let Some(off) = off else { return Err(self.bad("index VCN", what(), format!("past $INDEX_ALLOCATION ({} bytes)", ix.alloc_bytes))) };
        let bit = off / ix.block as u64;
        if ix.bitmap.get((bit / 8) as usize).is_none_or(|b| b & (1 << (bit % 8)) == 0) {
            return Err(self.bad("index VCN", what(), "not in use in the index bitmap"));
        }
        let mut b = vec![0u8; ix.block];
        self.read_runs(&ix.alloc_runs, off, &mut b)?;
        unfixup(&mut b, b"INDX").map_err(|e| self.bad("INDX block", what(), e))?;
        if u64_at(&b, 0x10) != Some(vcn) {
            return Err(self.bad("INDX block VCN", format!("{} ({:?})", what(), u64_at(&b, 0x10)), "does not match its position"));
        }
        let n = parse_node(&b, 0x18).map_err(|e| self.bad("INDX block", what(), e))?;
        ix.blocks.insert(vcn, n.clone());
        Ok(n)
    }

    /// Finds the entry named `name` (case-insensitive).
    pub(super) fn index_find(&self, ix: &mut Index, name: &[u16]) -> Result<Option<Entry>, FsError> {
        let mut loc = Loc::Root;
        for _ in 0..MAX_DEPTH {
            let node = self.node(ix, loc)?;
            let mut next = node.end_child;
            for e in &node.entries {
                let en = e.name();
                if same(&self.upcase, name, &en) {
                    return Ok(Some(e.clone()));
                }
                if collate(&self.upcase, name, &en) == Ordering::Less {
                    next = e.child;
                    break;
                }
            }
            match next {
                Some(c) => loc = Loc::Block(c),
                None => return Ok(None),
            }
        }
        Err(self.bad("index depth", format!("directory record {}", ix.dir), format!("more than {MAX_DEPTH} levels")))
    }

    /// Every entry in collation order.
    pub(super) fn index_all(&self, ix: &mut Index) -> Result<Vec<Entry>, FsError> {
        let mut out = Vec::new();
        let mut seen = 0usize;
        self.walk(ix, Loc::Root, 0, &mut out, &mut seen)?;
        Ok(out)
    }

    fn walk(&self, ix: &mut Index, loc: Loc, depth: usize, out: &mut Vec<Entry>, seen: &mut usize) -> Result<(), FsError> {
        *seen += 1;
        if depth > MAX_DEPTH || *seen > 1 << 22 {
            return Err(self.bad("index depth", format!("directory record {}", ix.dir), "a loop or too many nodes"));
        }
        let node = self.node(ix, loc)?;
        for e in node.entries {
            if let Some(c) = e.child {
                self.walk(ix, Loc::Block(c), depth + 1, out, seen)?;
            }
            out.push(Entry { child: None, ..e });
        }
        if let Some(c) = node.end_child {
            self.walk(ix, Loc::Block(c), depth + 1, out, seen)?;
        }
        Ok(())
    }

    /// Inserts `e` (a leaf entry; its name must not be present).
    pub(super) fn index_insert(&mut self, ix: &mut Index, e: Entry) -> Result<(), FsError> {
        self.insert_at(ix, Loc::Root, e, 0).map(|_| ())
    }

    fn insert_at(&mut self, ix: &mut Index, loc: Loc, e: Entry, depth: usize) -> Result<Option<(Entry, u64)>, FsError> {
        if depth > MAX_DEPTH {
            return Err(self.bad("index depth", format!("directory record {}", ix.dir), format!("more than {MAX_DEPTH} levels")));
        }
        let mut node = self.node(ix, loc)?;
        let name = e.name();
        let pos = node.entries.iter().position(|x| collate(&self.upcase, &name, &x.name()) == Ordering::Less).unwrap_or(node.entries.len());
        let child = node.entries.get(pos).map_or(node.end_child, |x| x.child);
        match child {
            Some(c) => match self.insert_at(ix, Loc::Block(c), e, depth + 1)? {
                None => return Ok(None),
                Some((mut m, left)) => {
                    m.child = Some(left);
                    node.entries.insert(pos, m);
                }
            },
            None => node.entries.insert(pos, e),
        }
        self.store(ix, loc, node)
    }

    fn block_cap(&self, ix: &Index) -> usize {
        ix.block - 0x18 - self.block_eo(ix)
    }

    fn block_eo(&self, ix: &Index) -> usize {
        align8(0x28 + 2 * (ix.block / STRIDE + 1)) - 0x18
    }

    /// Writes `node` at `loc`; a block that overflows is split (returned: the median and
    /// the new left block), a root that does not fit moves down into a block.
    fn store(&mut self, ix: &mut Index, loc: Loc, node: Node) -> Result<Option<(Entry, u64)>, FsError> {
        match loc {
            Loc::Root => {
                if self.write_root(ix, &node)? {
                    return Ok(None);
                }
                // The root's entries move into a block: the root is emptied first so the
                // record has room for $INDEX_ALLOCATION and $BITMAP.
                if !self.write_root(ix, &Node::default())? {
                    return Err(self.unsupported(&format!("directory record {}", ix.dir), "an index root that needs an attribute list"));
                }
                let b = self.alloc_block(ix)?;
                let mut root = Node { entries: Vec::new(), end_child: Some(b) };
                if let Some((mut m, left)) = self.store(ix, Loc::Block(b), node)? {
                    m.child = Some(left);
                    root.entries.push(m);
                }
                if !self.write_root(ix, &root)? {
                    return Err(self.unsupported(&format!("directory record {}", ix.dir), "an index root that needs an attribute list"));
                }
                Ok(None)
            }
            Loc::Block(vcn) => {
                if node.bytes().len() <= self.block_cap(ix) {
                    self.write_block(ix, vcn, node)?;
                    return Ok(None);
                }
                if node.entries.len() < 2 {
                    return Err(self.bad("index entry", format!("directory record {} VCN {vcn}", ix.dir), format!("one entry larger than an index block ({} bytes)", ix.block)));
                }
                let total: usize = node.entries.iter().map(|e| e.size()).sum();
                let mut acc = 0;
                let mut m = 0;
                while m < node.entries.len() && acc + node.entries[m].size() <= total / 2 {
                    acc += node.entries[m].size();
                    m += 1;
                }
                let m = m.clamp(1, node.entries.len().saturating_sub(2).max(1));
                let mut entries = node.entries;
                let right: Vec<Entry> = entries.split_off(m + 1);
                let mut median = entries.pop().ok_or_else(|| self.bad("index node", format!("VCN {vcn}"), "too few entries to split"))?;
                let left = Node { entries, end_child: median.child.take() };
                let right = Node { entries: right, end_child: node.end_child };
                let lv = self.alloc_block(ix)?;
                self.write_block(ix, lv, left)?;
                self.write_block(ix, vcn, right)?;
                Ok(Some((median, lv)))
            }
        }
    }

    /// Writes `root` into the directory's record; `false` (nothing written) if it does
    /// not fit.
    fn write_root(&mut self, ix: &mut Index, root: &Node) -> Result<bool, FsError> {
        let entries = root.bytes();
        let mut v = vec![0u8; 0x20 + entries.len()];
        put32(&mut v, 0, AT_FILE_NAME);
        put32(&mut v, 4, 1);
        put32(&mut v, 8, ix.block as u32);
        v[12] = ix.cpb;
        put32(&mut v, 0x10, 0x10);
        put32(&mut v, 0x14, (0x10 + entries.len()) as u32);
        put32(&mut v, 0x18, (0x10 + entries.len()) as u32);
        put32(&mut v, 0x1c, if root.end_child.is_some() { LARGE_INDEX } else { 0 });
        v[0x20..].copy_from_slice(&entries);
        let mut rec = self.read_record(ix.dir)?;
        let a = rec.find(AT_INDEX_ROOT, &i30()).ok_or_else(|| self.bad("$INDEX_ROOT", format!("directory record {}", ix.dir), "missing"))?;
        if !rec.replace(&a, resident(AT_INDEX_ROOT, &i30(), &v, false)) {
            return Ok(false);
        }
        self.write_record(&rec)?;
        ix.root = root.clone();
        Ok(true)
    }

    fn write_block(&mut self, ix: &mut Index, vcn: u64, node: Node) -> Result<(), FsError> {
        let eo = self.block_eo(ix);
        let entries = node.bytes();
        let mut b = vec![0u8; ix.block];
        b[..4].copy_from_slice(b"INDX");
        put16(&mut b, 4, 0x28);
        put16(&mut b, 6, (ix.block / STRIDE + 1) as u16);
        put16(&mut b, 0x28, 1);
        put64(&mut b, 0x10, vcn);
        put32(&mut b, 0x18, eo as u32);
        put32(&mut b, 0x1c, (eo + entries.len()) as u32);
        put32(&mut b, 0x20, (ix.block - 0x18) as u32);
        put32(&mut b, 0x24, node.end_child.is_some() as u32);
        b[0x18 + eo..0x18 + eo + entries.len()].copy_from_slice(&entries);
        let off = vcn * ix.vcn_unit;
        let runs = ix.alloc_runs.clone();
        self.write_runs(&runs, off, &fixup(&b))?;
        ix.blocks.insert(vcn, node);
        Ok(())
    }

    /// A free INDX block (the allocation and its bitmap grown if needed): its VCN.
    fn alloc_block(&mut self, ix: &mut Index) -> Result<u64, FsError> {
        let bs = ix.block as u64;
        let n = ix.alloc_bytes / bs;
        let free = (0..n).find(|i| ix.bitmap.get((i / 8) as usize).is_none_or(|b| b & (1 << (i % 8)) == 0));
        let i = match free {
            Some(i) => i,
            None => {
                // Grown by a quarter (at least a block, at most 64): few extents.
                let c = self.geo.cluster;
                let blocks = (n / 4).clamp(1, 64);
                let add = (blocks * bs).max(c).div_ceil(c);
                let got = self.alloc_after(&ix.alloc_runs, add)?;
                runs::append(&mut ix.alloc_runs, &got);
                ix.alloc_bytes += add * c;
                n
            }
        };
        let need = ((ix.alloc_bytes / bs).div_ceil(64) * 8) as usize;
        if ix.bitmap.len() < need {
            ix.bitmap.resize(need, 0);
        }
        ix.bitmap[(i / 8) as usize] |= 1 << (i % 8);
        self.write_index_meta(ix)?;
        Ok(i * bs / ix.vcn_unit)
    }

    /// Writes `$INDEX_ALLOCATION`'s runs and sizes and the index `$BITMAP` into the
    /// directory's record (created there when missing).
    fn write_index_meta(&mut self, ix: &mut Index) -> Result<(), FsError> {
        let mut rec = self.read_record(ix.dir)?;
        let i30 = i30();
        let v = || format!("directory record {}", ix.dir);
        let pairs = runs::encode(&ix.alloc_runs);
        let vcns = runs::clusters(&ix.alloc_runs);
        let alloc = nonresident(AT_INDEX_ALLOCATION, &i30, &pairs, vcns, vcns * self.geo.cluster, ix.alloc_bytes, ix.alloc_bytes);
        let ok = match rec.find(AT_INDEX_ALLOCATION, &i30) {
            Some(a) => rec.replace(&a, alloc),
            None => rec.insert(alloc),
        };
        if !ok {
            return Err(self.unsupported(&v(), "an index allocation that needs an attribute list"));
        }
        let ok = match rec.find(AT_BITMAP, &i30) {
            Some(a) if a.nonres => {
                let (r, s) = self.attr_runs(&rec, &a)?;
                if (ix.bitmap.len() as u64) > s.init {
                    return Err(self.unsupported(&v(), "growing a non-resident index bitmap"));
                }
                self.write_runs(&r, 0, &ix.bitmap)?;
                true
            }
            Some(a) => rec.replace(&a, resident(AT_BITMAP, &i30, &ix.bitmap, false)),
            None => rec.insert(resident(AT_BITMAP, &i30, &ix.bitmap, false)),
        };
        if !ok {
            return Err(self.unsupported(&v(), "an index bitmap that needs an attribute list"));
        }
        self.write_record(&rec)
    }

    /// Rebuilds the whole index from `entries` (in collation order, leaf form).
    pub(super) fn index_rebuild(&mut self, ix: &mut Index, entries: Vec<Entry>) -> Result<(), FsError> {
        ix.bitmap.iter_mut().for_each(|b| *b = 0);
        ix.blocks.clear();
        if !ix.alloc_runs.is_empty() {
            self.write_index_meta(ix)?;
        }
        let leaf = Node { entries, end_child: None };
        if self.write_root(ix, &leaf)? {
            return Ok(());
        }
        if !self.write_root(ix, &Node::default())? {
            return Err(self.unsupported(&format!("directory record {}", ix.dir), "an index root that needs an attribute list"));
        }
        let cap = self.block_cap(ix);
        let (mut level, mut trailing) = (leaf.entries, None);
        for _ in 0..MAX_DEPTH {
            let (seps, t) = self.pack(ix, level, trailing, cap)?;
            let root = Node { entries: seps, end_child: Some(t) };
            if self.write_root(ix, &root)? {
                return Ok(());
            }
            (level, trailing) = (root.entries, root.end_child);
        }
        Err(self.bad("index depth", format!("directory record {}", ix.dir), "rebuild did not converge"))
    }

    /// Packs one level of entries (each with its left subtree; `trailing`: the subtree
    /// after the last) into full blocks; returns the separators and the last block.
    fn pack(&mut self, ix: &mut Index, items: Vec<Entry>, trailing: Option<u64>, cap: usize) -> Result<(Vec<Entry>, u64), FsError> {
        let end = if trailing.is_some() { 24 } else { 16 };
        let mut seps = Vec::new();
        let mut cur: Vec<Entry> = Vec::new();
        let mut size = end;
        let mut it = items.into_iter().peekable();
        while let Some(mut e) = it.next() {
            let sz = e.size();
            if !cur.is_empty() && size + sz > cap {
                if it.peek().is_none() && cur.len() > 1 {
                    let mut sep = cur.pop().unwrap_or_else(|| e.clone());
                    let vcn = self.alloc_block(ix)?;
                    self.write_block(ix, vcn, Node { entries: std::mem::take(&mut cur), end_child: sep.child })?;
                    sep.child = Some(vcn);
                    seps.push(sep);
                    size = end + sz;
                    cur.push(e);
                } else {
                    let vcn = self.alloc_block(ix)?;
                    self.write_block(ix, vcn, Node { entries: std::mem::take(&mut cur), end_child: e.child })?;
                    e.child = Some(vcn);
                    seps.push(e);
                    size = end;
                }
                continue;
            }
            size += sz;
            cur.push(e);
        }
        let vcn = self.alloc_block(ix)?;
        self.write_block(ix, vcn, Node { entries: cur, end_child: trailing })?;
        Ok((seps, vcn))
    }

    /// Rewrites the key of the entry named `name` (same length: sizes and times change).
    pub(super) fn index_update(&mut self, ix: &mut Index, name: &[u16], key: &[u8]) -> Result<bool, FsError> {
        let mut loc = Loc::Root;
        for _ in 0..MAX_DEPTH {
            let mut node = self.node(ix, loc)?;
            let mut next = node.end_child;
            for i in 0..node.entries.len() {
                let en = node.entries[i].name();
                if same(&self.upcase, name, &en) && en == name {
                    if node.entries[i].key.len() != key.len() {
                        return Ok(false);
                    }
                    node.entries[i].key = key.to_vec();
                    match loc {
                        Loc::Root => {
                            self.write_root(ix, &node)?;
                        }
                        Loc::Block(v) => self.write_block(ix, v, node)?,
                    }
                    return Ok(true);
                }
                if collate(&self.upcase, name, &en) == Ordering::Less {
                    next = node.entries[i].child;
                    break;
                }
            }
            match next {
                Some(c) => loc = Loc::Block(c),
                None => return Ok(false),
            }
        }
        Ok(false)
    }

    /// Removes the entry named exactly `name` where that is cheap: from a leaf that keeps
    /// an entry, from the root, or from an inner node by moving its predecessor up (when
    /// that leaf keeps an entry). `false`: nothing changed (rebuild instead).
    pub(super) fn index_remove_leaf(&mut self, ix: &mut Index, name: &[u16]) -> Result<bool, FsError> {
        let mut loc = Loc::Root;
        for _ in 0..MAX_DEPTH {
            let mut node = self.node(ix, loc)?;
            let mut next = node.end_child;
            for i in 0..node.entries.len() {
                let en = node.entries[i].name();
                if en == name {
                    let Some(left) = node.entries[i].child else {
                        return match loc {
                            Loc::Root => {
                                node.entries.remove(i);
                                self.write_root(ix, &node)
                            }
                            Loc::Block(v) if node.entries.len() > 1 => {
                                node.entries.remove(i);
                                self.write_block(ix, v, node)?;
                                Ok(true)
                            }
                            Loc::Block(_) => Ok(false),
                        };
                    };
                    // In an inner node: replaced by its predecessor, the last entry of the
                    // rightmost leaf under its left subtree, when that leaf keeps one.
                    let mut leaf = left;
                    let mut lnode = self.node(ix, Loc::Block(leaf))?;
                    for _ in 0..MAX_DEPTH {
                        match lnode.end_child {
                            Some(c) => {
                                leaf = c;
                                lnode = self.node(ix, Loc::Block(c))?;
                            }
                            None => break,
                        }
                    }
                    if lnode.end_child.is_some() || lnode.entries.len() < 2 {
                        return Ok(false);
                    }
                    let Some(mut pred) = lnode.entries.pop() else { return Ok(false) };
                    pred.child = Some(left);
                    node.entries[i] = pred;
                    let fits = match loc {
                        Loc::Root => self.write_root(ix, &node)?,
                        Loc::Block(v) => {
                            if node.bytes().len() > self.block_cap(ix) {
                                false
                            } else {
                                self.write_block(ix, v, node)?;
                                true
                            }
                        }
                    };
                    if !fits {
                        return Ok(false);
                    }
                    self.write_block(ix, leaf, lnode)?;
                    return Ok(true);
                }
                if collate(&self.upcase, name, &en) == Ordering::Less {
                    next = node.entries[i].child;
                    break;
                }
            }
            match next {
                Some(c) => loc = Loc::Block(c),
                None => return Ok(false),
            }
        }
        Ok(false)
    }

    /// Clusters of the index allocation (freed with the directory).
    pub(super) fn index_clusters(ix: &Index) -> Vec<Run> {
        ix.alloc_runs.clone()
    }
}
