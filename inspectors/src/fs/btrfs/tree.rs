//! Tree blocks (checksummed, owned by this filesystem, at the address they claim) and
//! B-tree range searches over them.

use super::chunk::{ChunkMap, CHUNK_ITEM};
use super::sb::{Super, SUPER_OFFSET, SUPER_SIZE};
use crate::bytes::{array, u32le, u64le};
use crate::device::Device;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Size of a tree block header.
const HEADER: usize = 101;
/// Size of a leaf's item descriptor (key, data offset, data size).
const ITEM: usize = 25;
/// Size of a node's key pointer (key, block pointer, generation).
const KEY_PTR: usize = 33;
/// Tree blocks kept in the cache.
const CACHE_BLOCKS: usize = 2048;
/// Most items one search collects (bounds memory on corrupt or huge trees).
pub const MAX_ITEMS: usize = 1 << 20;
/// Most item bytes one search collects.
const MAX_BYTES: usize = 64 << 20;
/// Most tree blocks one walk visits (a corrupt tree can point at one block many times).
const MAX_VISITS: usize = 1 << 16;

/// What a tree walk calls on each item: false stops the walk.
pub type Visit<'a> = dyn FnMut(Key, &[u8]) -> Result<bool, String> + 'a;

/// A B-tree key: (objectid, type, offset), ordered in that order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub objectid: u64,
    pub ty: u8,
    pub offset: u64,
}

impl Key {
    pub const fn new(objectid: u64, ty: u8, offset: u64) -> Self {
        Key { objectid, ty, offset }
    }

    fn read(b: &[u8], off: usize) -> Self {
        Key { objectid: u64le(b, off), ty: *b.get(off + 8).unwrap_or(&0), offset: u64le(b, off + 9) }
    }
}

/// The root of one tree: block address and level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Root {
    pub bytenr: u64,
    pub level: u8,
}

/// The opened filesystem: superblock, chunk map, block cache.
pub struct Core {
    pub dev: Device,
    pub sb: Super,
    pub chunks: ChunkMap,
    cache: RefCell<HashMap<u64, Rc<Vec<u8>>>>,
}

impl Core {
    /// Reads the superblock and the chunk tree. Errors name the field and its value.
    pub fn open(dev: &Device) -> Result<Self, String> {
        let b = dev.read(SUPER_OFFSET, SUPER_SIZE).map_err(|e| e.to_string())?;
        let sb = Super::parse(&b)?;
        if sb.num_devices != 1 {
            return Err(format!(
                "superblock num_devices {}: multi-device btrfs is not supported (single device only)",
                sb.num_devices
            ));
        }
        let mut chunks = ChunkMap::default();
        chunks.add_sys_array(&sb.sys_chunks, sb.devid)?;
        let mut core = Core { dev: dev.clone(), sb, chunks, cache: RefCell::new(HashMap::new()) };
        let chunk_root = Root { bytenr: core.sb.chunk_root, level: core.sb.chunk_root_level };
        let mut items = Vec::new();
        core.search(chunk_root, Key::new(256, CHUNK_ITEM, 0), Key::new(256, CHUNK_ITEM, u64::MAX), &mut items)?;
        for (k, d) in items {
            core.chunks.add(k.offset, &d, core.sb.devid)?;
        }
        core.cache.borrow_mut().clear();
        Ok(core)
    }

    /// Reads `len` bytes at logical address `logical` (crossing chunks if it must).
    pub fn read_logical(&self, logical: u64, len: usize) -> Result<Vec<u8>, String> {
        let mut out = vec![0u8; len];
        let mut done = 0usize;
        while done < len {
            let at = logical.saturating_add(done as u64);
            let (phys, avail) = self.chunks.map(at).ok_or_else(|| format!("logical address {at} is in no chunk"))?;
            let n = (len - done).min(usize::try_from(avail).unwrap_or(usize::MAX));
            let dst = out.get_mut(done..done + n).unwrap_or_default();
            if phys.checked_add(n as u64).is_none_or(|e| e > self.dev.size()) {
                return Err(format!("logical address {at} maps to {phys}, past the device's end"));
            }
            self.dev.dev.read_at(dst, phys).map_err(|e| e.to_string())?;
            done += n;
        }
        Ok(out)
    }

    /// The tree block at `bytenr`, checked: checksum, address, filesystem UUID, level.
    pub fn block(&self, bytenr: u64, level: u8) -> Result<Rc<Vec<u8>>, String> {
        if let Some(b) = self.cache.borrow().get(&bytenr) {
            if b.get(0x64) == Some(&level) {
                return Ok(b.clone());
            }
        }
        let ns = self.sb.nodesize as usize;
        let b = self.read_logical(bytenr, ns)?;
        if let Err((stored, computed)) = self.sb.csum.verify(&b) {
            return Err(format!("tree block {bytenr}: {} checksum {stored} does not match {computed}", self.sb.csum.name()));
        }
        let claimed = u64le(&b, 0x30);
        if claimed != bytenr {
            return Err(format!("tree block {bytenr}: header bytenr is {claimed}"));
        }
        if array::<16>(&b, 0x20) != self.sb.meta_uuid {
            return Err(format!("tree block {bytenr}: fsid is not this filesystem's"));
        }
        let got = b.get(0x64).copied().unwrap_or(0);
        if got != level {
            return Err(format!("tree block {bytenr}: level {got}, expected {level}"));
        }
        let n = u32le(&b, 0x60) as usize;
        let max = (ns - HEADER) / if level == 0 { ITEM } else { KEY_PTR };
        if n > max {
            return Err(format!("tree block {bytenr}: nritems {n} exceeds {max}"));
        }
        let b = Rc::new(b);
        let mut cache = self.cache.borrow_mut();
        if cache.len() >= CACHE_BLOCKS {
            cache.clear();
        }
        cache.insert(bytenr, b.clone());
        Ok(b)
    }

    /// Appends to `out` every item with `min <= key <= max` in the tree at `root`, in key
    /// order; fails past [`MAX_ITEMS`].
    pub fn search(&self, root: Root, min: Key, max: Key, out: &mut Vec<(Key, Vec<u8>)>) -> Result<(), String> {
        let mut bytes = 0;
        self.walk(root.bytenr, root.level, min, max, &mut |k, d| {
            bytes += d.len();
            if out.len() >= MAX_ITEMS || bytes > MAX_BYTES {
                return Err(format!("more than {MAX_ITEMS} items or {MAX_BYTES} bytes in one search"));
            }
            out.push((k, d.to_vec()));
            Ok(true)
        })
    }

    /// The item with key exactly `key`, if any.
    pub fn get(&self, root: Root, key: Key) -> Result<Option<Vec<u8>>, String> {
        let mut out = Vec::new();
        self.search(root, key, key, &mut out)?;
        Ok(out.pop().map(|(_, d)| d))
    }

    /// Calls `f` on each item with `min <= key <= max`, in order, until it returns false.
    pub fn walk(
        &self,
        bytenr: u64,
        level: u8,
        min: Key,
        max: Key,
        f: &mut Visit,
    ) -> Result<(), String> {
        self.walk_inner(bytenr, level, min, max, f, &mut 0).map(|_| ())
    }

    fn walk_inner(
        &self,
        bytenr: u64,
        level: u8,
        min: Key,
        max: Key,
        f: &mut Visit,
        visits: &mut usize,
    ) -> Result<bool, String> {
        *visits += 1;
        if *visits > MAX_VISITS {
            return Err(format!("more than {MAX_VISITS} tree blocks visited in one search"));
        }
        let b = self.block(bytenr, level)?;
        let n = u32le(&b, 0x60) as usize;
        if level == 0 {
            let data_area = b.len() - HEADER;
            for i in 0..n {
                let p = HEADER + i * ITEM;
                let k = Key::read(&b, p);
                if k < min {
                    continue;
                }
                if k > max {
                    return Ok(false);
                }
                let (off, size) = (u32le(&b, p + 17) as usize, u32le(&b, p + 21) as usize);
                if off.checked_add(size).is_none_or(|e| e > data_area) {
                    return Err(format!("tree block {bytenr}: item {i} data {off}+{size} is outside the leaf"));
                }
                if !f(k, &b[HEADER + off..HEADER + off + size])? {
                    return Ok(false);
                }
            }
            return Ok(true);
        }
        for i in 0..n {
            let p = HEADER + i * KEY_PTR;
            let k = Key::read(&b, p);
            if k > max {
                return Ok(false);
            }
            if i + 1 < n {
                let next = Key::read(&b, p + KEY_PTR);
                if next <= k {
                    return Err(format!("tree block {bytenr}: keys out of order at pointer {i}"));
                }
                if next <= min {
                    continue;
                }
            }
            if !self.walk_inner(u64le(&b, p + 17), level - 1, min, max, f, visits)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
