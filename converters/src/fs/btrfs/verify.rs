//! Structural verification of what a commit wrote, re-read from the volume (not the crate's
//! block cache): every superblock copy inside the volume, then every tree whose root is of the
//! committed generation (the root tree, the chunk tree when it changed, and each tree whose
//! root item says it changed), descending only into blocks of the committed generation and
//! reading the header and first key of each older child they point at.
//!
//! Per block: checksum in the filesystem's type, header bytenr, fsid, level and generation as
//! the parent (or root item / superblock) says, owner (new blocks), nritems bound. Leaves:
//! keys strictly increasing, item data inside the data area and packed from its end in item
//! order, the first key equal to the parent's pointer key. Nodes: keys strictly increasing,
//! child generations not past the commit. It exists because `btrfs-transaction` 0.13 can
//! return a slot past a freshly split leaf's end to its own inserts (extent, csum and
//! free-space trees); with debug assertions off that would be written silently.

use super::dir::ROOT_ITEM;
use super::inode::{u32_at, u64_at};
use super::io::VolIo;
use super::Error;
use btrfs_disk::superblock::{read_superblock_at, read_superblock_bytes_at, super_mirror_offset, superblock_is_valid, ChecksumType};
use btrfs_transaction::buffer::ExtentBuffer;
use btrfs_transaction::Filesystem;
use std::collections::HashSet;
use std::io::{Seek, SeekFrom};

/// Size of a tree block header.
const HEADER: usize = 101;
/// `struct btrfs_item`.
const ITEM: usize = 25;
/// `struct btrfs_key_ptr`.
const KEY_PTR: usize = 33;
/// Root item: generation, bytenr and level offsets; the shortest root item that holds them.
const RI_GEN: usize = 160;
const RI_BYTENR: usize = 176;
const RI_LEVEL: usize = 238;
/// Most blocks one verification reads (bounds time and memory on a looping tree).
const MAX_BLOCKS: usize = 1 << 20;

type Key = (u64, u8, u64);

/// What one verification read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Trees walked (their roots are of the committed generation).
    pub trees: usize,
    /// Blocks of the committed generation checked in full.
    pub new_blocks: usize,
    /// Older blocks whose header and first key were checked.
    pub old_blocks: usize,
    /// Superblock copies checked.
    pub supers: usize,
}

struct Walk<'f, 'a> {
    fs: &'f mut Filesystem<VolIo<'a>>,
    csum: ChecksumType,
    fsid: [u8; 16],
    gen: u64,
    nodesize: usize,
    seen: HashSet<u64>,
    stats: Stats,
}

fn key_at(b: &[u8], o: usize) -> Key {
    (u64_at(b, o), b.get(o + 8).copied().unwrap_or(0), u64_at(b, o + 9))
}

fn show(k: Key) -> String {
    format!("({} {} {})", k.0, k.1, k.2)
}

/// What the parent says a block must be.
#[derive(Clone, Copy)]
struct Expect {
    tree: u64,
    bytenr: u64,
    level: u8,
    gen: u64,
    first: Option<Key>,
}

impl Walk<'_, '_> {
    fn bad(&self, e: &Expect, what: String) -> Error {
        Error::Corrupt(format!("verify after commit: tree {} block {}: {what}", e.tree, e.bytenr))
    }

    /// Reads and checks the block `e` names; returns it when it is of the committed
    /// generation (to descend into), `None` for an older one (checked, not descended).
    fn block(&mut self, e: &Expect) -> Result<Option<ExtentBuffer>, Error> {
        if self.stats.new_blocks + self.stats.old_blocks >= MAX_BLOCKS {
            return Err(self.bad(e, format!("more than {MAX_BLOCKS} blocks to verify")));
        }
        if e.gen > self.gen {
            return Err(self.bad(e, format!("pointer generation {} is past the committed generation {}", e.gen, self.gen)));
        }
        let fresh = e.gen == self.gen;
        if fresh && !self.seen.insert(e.bytenr) {
            return Err(self.bad(e, "referenced twice".into()));
        }
        let data = self.fs.reader_mut().read_block(e.bytenr).map_err(|err| self.bad(e, format!("unreadable: {err}")))?;
        if data.len() != self.nodesize {
            return Err(self.bad(e, format!("read {} bytes, not {}", data.len(), self.nodesize)));
        }
        let n = self.csum.size();
        let computed = self.csum.compute(&data[32..]);
        if computed.get(..n) != data.get(..n) {
            return Err(self.bad(e, format!("{:?} checksum does not match its contents", self.csum)));
        }
        let eb = ExtentBuffer::from_raw(data, e.bytenr);
        if eb.bytenr() != e.bytenr {
            return Err(self.bad(e, format!("header bytenr is {}", eb.bytenr())));
        }
        if *eb.fsid().as_bytes() != self.fsid {
            return Err(self.bad(e, format!("fsid {} is not this filesystem's", eb.fsid())));
        }
        if eb.level() != e.level {
            return Err(self.bad(e, format!("level {}, its parent expects {}", eb.level(), e.level)));
        }
        if eb.generation() != e.gen {
            return Err(self.bad(e, format!("generation {}, its parent's pointer says {}", eb.generation(), e.gen)));
        }
        if fresh && eb.owner() != e.tree {
            return Err(self.bad(e, format!("owner {}, not the tree it is in", eb.owner())));
        }
        let nr = eb.nritems() as usize;
        let max = (self.nodesize - HEADER) / if e.level == 0 { ITEM } else { KEY_PTR };
        if nr > max {
            return Err(self.bad(e, format!("nritems {nr} exceeds {max}")));
        }
        if nr == 0 && (e.level > 0 || e.first.is_some()) {
            return Err(self.bad(e, "no items in a non-root block".into()));
        }
        let b = eb.as_bytes();
        if let Some(first) = e.first {
            let got = key_at(b, HEADER);
            if got != first {
                return Err(self.bad(e, format!("first key {} differs from its parent's pointer key {}", show(got), show(first))));
            }
        }
        if fresh {
            self.stats.new_blocks += 1;
            Ok(Some(eb))
        } else {
            self.stats.old_blocks += 1;
            Ok(None)
        }
    }

    /// Checks a fresh leaf's items; calls `f` with each key and its data.
    fn leaf(&self, e: &Expect, eb: &ExtentBuffer, mut f: impl FnMut(Key, &[u8])) -> Result<(), Error> {
        let b = eb.as_bytes();
        let nr = eb.nritems() as usize;
        let area = self.nodesize - HEADER;
        let mut end = area;
        let mut prev: Option<Key> = None;
        for i in 0..nr {
            let p = HEADER + i * ITEM;
            let k = key_at(b, p);
            if let Some(pk) = prev.filter(|pk| *pk >= k) {
                return Err(self.bad(e, format!("item {i} key {} is not above item {} key {}", show(k), i - 1, show(pk))));
            }
            prev = Some(k);
            let (off, size) = (u32_at(b, p + 17) as usize, u32_at(b, p + 21) as usize);
            if off.checked_add(size).is_none_or(|x| x > area) {
                return Err(self.bad(e, format!("item {i} data {off}+{size} runs past the leaf's data area ({area} bytes)")));
            }
            if off + size != end {
                return Err(self.bad(e, format!("item {i} data {off}+{size} does not end at {end} (where the previous item's data starts)")));
            }
            end = off;
            f(k, &b[HEADER + off..HEADER + off + size]);
        }
        if nr * ITEM > end {
            return Err(self.bad(e, format!("item headers ({nr} x {ITEM} bytes) overlap item data at {end}")));
        }
        Ok(())
    }

    /// Verifies the subtree `e` names; collects (tree, bytenr, level, gen) of changed trees
    /// from root items when `roots` is given.
    fn tree(&mut self, e: Expect, roots: &mut Option<&mut Vec<Expect>>) -> Result<(), Error> {
        let Some(eb) = self.block(&e)? else { return Ok(()) };
        if e.level == 0 {
            let gen = self.gen;
            return self.leaf(&e, &eb, |k, d| {
                if let Some(r) = roots.as_mut() {
                    if k.1 == ROOT_ITEM && d.len() > RI_LEVEL && u64_at(d, RI_GEN) == gen {
                        r.push(Expect { tree: k.0, bytenr: u64_at(d, RI_BYTENR), level: d[RI_LEVEL], gen, first: None });
                    }
                }
            });
        }
        let b = eb.as_bytes();
        let nr = eb.nritems() as usize;
        let mut kids = Vec::with_capacity(nr);
        for i in 0..nr {
            let p = HEADER + i * KEY_PTR;
            let k = key_at(b, p);
            if let Some(pk) = kids.last().map(|x: &Expect| x.first.unwrap_or_default()).filter(|pk| *pk >= k) {
                return Err(self.bad(&e, format!("pointer {i} key {} is not above pointer {} key {}", show(k), i - 1, show(pk))));
            }
            kids.push(Expect { tree: e.tree, bytenr: u64_at(b, p + 17), level: e.level - 1, gen: u64_at(b, p + 25), first: Some(k) });
        }
        for kid in kids {
            self.tree(kid, roots)?;
        }
        Ok(())
    }
}

/// Verifies the committed filesystem under `fs` (after its transaction's commit).
pub fn verify(fs: &mut Filesystem<VolIo<'_>>) -> Result<Stats, Error> {
    let dev = fs.reader_mut().single_device_mut();
    let len = dev.seek(SeekFrom::End(0))?;
    let sb = read_superblock_at(dev, super_mirror_offset(0))?;
    let mut stats = Stats::default();
    for m in 0..3 {
        let at = super_mirror_offset(m);
        if at + 4096 > len {
            break;
        }
        let raw = read_superblock_bytes_at(dev, at)?;
        if !superblock_is_valid(&raw) {
            return Err(Error::Corrupt(format!("verify after commit: superblock copy {m} at {at}: bad magic or checksum")));
        }
        let s = read_superblock_at(dev, at)?;
        if (s.generation, s.root, s.root_level, s.chunk_root, s.chunk_root_level) != (sb.generation, sb.root, sb.root_level, sb.chunk_root, sb.chunk_root_level) {
            return Err(Error::Corrupt(format!("verify after commit: superblock copy {m} at {at}: generation {} root {} level {} differs from the primary's {} {} {}", s.generation, s.root, s.root_level, sb.generation, sb.root, sb.root_level)));
        }
        stats.supers += 1;
    }
    let fsid = if sb.has_metadata_uuid() { sb.metadata_uuid } else { sb.fsid };
    let nodesize = sb.nodesize as usize;
    if !(4096..=65536).contains(&nodesize) {
        return Err(Error::Corrupt(format!("verify after commit: nodesize {nodesize}")));
    }
    let mut w = Walk { fs, csum: sb.csum_type, fsid: *fsid.as_bytes(), gen: sb.generation, nodesize, seen: HashSet::new(), stats };
    let mut changed = Vec::new();
    w.tree(Expect { tree: 1, bytenr: sb.root, level: sb.root_level, gen: sb.generation, first: None }, &mut Some(&mut changed))?;
    w.stats.trees = 1;
    if sb.chunk_root_generation == sb.generation {
        changed.push(Expect { tree: 3, bytenr: sb.chunk_root, level: sb.chunk_root_level, gen: sb.generation, first: None });
    }
    for e in changed {
        w.tree(e, &mut None)?;
        w.stats.trees += 1;
    }
    Ok(w.stats)
}
