//! Adding entries to htree-indexed directories without losing the index, as the kernel's
//! `ext4_dx_add_entry` does: the leaf for a name is found through the index by its hash;
//! a full leaf is split by hash (the upper part moves to a new block, which gets an index
//! entry, bit 0 set when equal hashes straddle the split); a full index block is split, or
//! the tree grows a level when the root is full. Each change restarts the descent.

use super::dir::{name_room, Record};
use super::dxhash::dx_hash;
use super::dxnode::DxBlock;
use super::filemap::Run;
use super::inode::Inode;
use super::{Ext4, FsError};

/// The index blocks from the root down to the leaf's parent, each with the entry taken.
type Path = Vec<(DxBlock, usize)>;

/// Enough rounds for any insertion: one per index level split, one leaf split, the insert.
const MAX_ROUNDS: usize = 12;

impl Ext4<'_> {
    /// Adds `name` → `ino` to indexed directory `dir` (the caller writes the inode). Returns
    /// false, the entry not added and the tree valid, when the tree is at its deepest and
    /// every index block on the name's path is full: there the kernel refuses with ENOSPC.
    pub(super) fn dx_add_entry(&mut self, dir: &mut Inode, name: &[u8], ino: u32, ftype: u8) -> Result<bool, FsError> {
        for _ in 0..MAX_ROUNDS {
            let blocks = self.mapping(dir)?.runs;
            let root_p = self.dx_phys(dir, &blocks, 0)?;
            let (root, info) = self.load_dx_root(dir, root_p)?;
            let hash = dx_hash(name, info.version, self.sb.hash_seed()).0;
            let path = self.dx_probe(dir, &blocks, root, info.levels, hash)?;
            let Some((parent, _)) = path.last() else {
                return Err(self.invalid(&format!("directory {} htree", dir.ino), "path", "empty"));
            };
            let leaf_p = self.dx_leaf(dir, &blocks, &path)?;
            let mut leaf = self.read_block(leaf_p)?;
            if self.insert_record(&mut leaf, dir.ino, name, ino, ftype)? {
                self.write_dir_block(dir, leaf_p, &mut leaf)?;
                return Ok(true);
            }
            if parent.is_full() {
                if !self.dx_grow_index(dir, path)? {
                    return Ok(false);
                }
            } else {
                self.dx_split_leaf(dir, path, leaf_p, &leaf, info.version)?;
            }
        }
        Err(self.invalid(
            &format!("directory {} htree", dir.ino),
            String::from_utf8_lossy(name),
            "insertion did not converge",
        ))
    }

    /// Finds live entry `name` through the index: in the leaf its hash selects, then in the
    /// following leaves while their starting hash equals it (equal hashes split across
    /// blocks), as the kernel's lookup does. Returns the leaf's physical block and the record.
    pub(super) fn dx_find_entry(&self, dir: &Inode, name: &[u8]) -> Result<Option<(u64, Record)>, FsError> {
        let runs = self.mapping(dir)?.runs;
        let root_p = self.dx_phys(dir, &runs, 0)?;
        let (root, info) = self.load_dx_root(dir, root_p)?;
        let hash = dx_hash(name, info.version, self.sb.hash_seed()).0;
        let mut path = self.dx_probe(dir, &runs, root, info.levels, hash)?;
        loop {
            let p = self.dx_leaf(dir, &runs, &path)?;
            let block = self.read_block(p)?;
            if let Some(r) = self.parse_dir_block(&block, dir.ino)?.into_iter().find(|r| r.ino != 0 && r.name == name) {
                return Ok(Some((p, r)));
            }
            if !self.dx_next_leaf(dir, &runs, &mut path, hash)? {
                return Ok(None);
            }
        }
    }

    /// Moves `path` to the next leaf if that leaf starts with `hash`; false otherwise. Each
    /// call advances one entry at some level, so repeated calls end.
    fn dx_next_leaf(&self, dir: &Inode, runs: &[Run], path: &mut Path, hash: u32) -> Result<bool, FsError> {
        let Some(k) = path.iter().rposition(|(b, at)| at + 1 < b.count()) else {
            return Ok(false);
        };
        path[k].1 += 1;
        let (b, at) = &path[k];
        if b.hash(*at) & !1 != hash {
            return Ok(false);
        }
        for j in k + 1..path.len() {
            let child = path[j - 1].0.block(path[j - 1].1);
            if child == 0 || path[..j].iter().any(|(b, _)| b.lblk == child) {
                return Err(self.invalid(
                    &format!("directory {} htree node block", dir.ino),
                    child,
                    "points back into the tree",
                ));
            }
            let p = self.dx_phys(dir, runs, child)?;
            path[j] = (self.load_dx_node(dir, child, p)?, 0);
        }
        Ok(true)
    }

    /// The physical block of the leaf at the bottom of `path`, checked not to be an index block.
    fn dx_leaf(&self, dir: &Inode, runs: &[Run], path: &Path) -> Result<u64, FsError> {
        let leaf_l = path.last().map_or(0, |(b, at)| b.block(*at));
        if leaf_l == 0 || path.iter().any(|(b, _)| b.lblk == leaf_l) {
            return Err(self.invalid(&format!("directory {} htree leaf block", dir.ino), leaf_l, "is an index block"));
        }
        self.dx_phys(dir, runs, leaf_l)
    }

    /// The physical block of directory block `lblk` (below the directory's size).
    fn dx_phys(&self, dir: &Inode, runs: &[Run], lblk: u64) -> Result<u64, FsError> {
        let inside = lblk < dir.size() / self.sb.block_size;
        runs.iter()
            .find(|r| inside && !r.uninit && r.lblk <= lblk && lblk - r.lblk < r.len)
            .map(|r| r.pblk + (lblk - r.lblk))
            .ok_or_else(|| {
                self.invalid(&format!("directory {} htree entry block", dir.ino), lblk, "not a block of the directory")
            })
    }

    /// Descends from the root to the index block above the leaf that holds `hash`.
    fn dx_probe(&self, dir: &Inode, blocks: &[Run], root: DxBlock, levels: u8, hash: u32) -> Result<Path, FsError> {
        let mut path = Vec::new();
        let mut cur = root;
        for level in 0..=levels {
            let at = cur.find(hash);
            let child = cur.block(at);
            path.push((cur, at));
            if level == levels {
                break;
            }
            if child == 0 || path.iter().any(|(b, _)| b.lblk == child) {
                return Err(self.invalid(
                    &format!("directory {} htree node block", dir.ino),
                    child,
                    "points back into the tree",
                ));
            }
            let p = self.dx_phys(dir, blocks, child)?;
            cur = self.load_dx_node(dir, child, p)?;
        }
        Ok(path)
    }

    /// Splits the full leaf at the bottom of `path`: entries sorted by hash, the upper part
    /// (about half the bytes) moves to a new block indexed in the leaf's parent.
    fn dx_split_leaf(
        &mut self,
        dir: &mut Inode,
        mut path: Path,
        leaf_p: u64,
        leaf: &[u8],
        version: u8,
    ) -> Result<(), FsError> {
        let seed = self.sb.hash_seed();
        let mut map: Vec<(u32, Record)> = self
            .parse_dir_block(leaf, dir.ino)?
            .into_iter()
            .filter(|r| r.ino != 0)
            .map(|r| (dx_hash(&r.name, version, seed).0, r))
            .collect();
        map.sort_by_key(|(h, _)| *h);
        if map.len() < 2 {
            return Err(self.invalid(
                &format!("directory {} leaf block", dir.ino),
                leaf_p,
                "full with fewer than 2 entries",
            ));
        }
        // Move entries from the top while more than half of each lies in the upper half.
        let half = (self.sb.block_size as usize - self.tail_size()) / 2;
        let (mut size, mut moved) = (0, 0);
        let mut stopped_early = false;
        for (i, (_, r)) in map.iter().enumerate().rev() {
            let s = name_room(r.name.len());
            if size + s / 2 > half {
                stopped_early = i > 0;
                break;
            }
            size += s;
            moved += 1;
        }
        let split = if stopped_early { map.len() - moved } else { map.len() / 2 };
        let (lower, upper) = map.split_at(split);
        let (Some((low_top, _)), Some((hash2, _))) = (lower.last(), upper.first()) else {
            return Err(self.invalid(&format!("directory {} leaf block", dir.ino), leaf_p, "cannot be split"));
        };
        let continued = u32::from(low_top == hash2);
        let index_hash = hash2 | continued;
        let (new_l, new_p) = self.append_block(dir)?;
        let mut b1 = self.pack_leaf(lower.iter().map(|(_, r)| r));
        let mut b2 = self.pack_leaf(upper.iter().map(|(_, r)| r));
        self.write_dir_block(dir, leaf_p, &mut b1)?;
        self.write_dir_block(dir, new_p, &mut b2)?;
        let Some((parent, at)) = path.last_mut() else {
            return Ok(());
        };
        parent.insert_after(*at, index_hash, new_l);
        self.write_dx_block(dir, parent)
    }

    /// A leaf block holding `recs` packed from the start, the last one spanning the rest.
    fn pack_leaf<'r>(&self, recs: impl ExactSizeIterator<Item = &'r Record>) -> Vec<u8> {
        let mut b = self.empty_dir_block();
        let end = b.len() - self.tail_size();
        let n = recs.len();
        let mut off = 0;
        for (i, r) in recs.enumerate() {
            let len = if i + 1 == n { end - off } else { name_room(r.name.len()) };
            self.put_record(&mut b, off, r.ino, len, &r.name, r.ftype);
            off += len;
        }
        b
    }

    /// Makes room in the index above a full leaf: splits the highest full index node whose
    /// parent has room, or, when the root and every node below it on the path are full,
    /// moves the root's entries to a new node (one more level). False at the maximum depth.
    fn dx_grow_index(&mut self, dir: &mut Inode, mut path: Path) -> Result<bool, FsError> {
        let mut k = path.len() - 1;
        while k > 0 && path[k - 1].0.is_full() {
            k -= 1;
        }
        if k == 0 {
            if path.len() >= usize::from(self.sb.max_dx_levels()) {
                return Ok(false);
            }
            let (new_l, new_p) = self.append_block(dir)?;
            let mut node = self.new_dx_node(new_l, new_p);
            let root = &mut path[0].0;
            let entries = root.split_off(0);
            node.set_entries(&entries);
            root.set_entries(&[(0, new_l)]);
            if let Some(levels) = root.data.get_mut(30) {
                *levels += 1;
            }
            self.write_dx_block(dir, &mut node)?;
            return self.write_dx_block(dir, &mut path[0].0).map(|()| true);
        }
        let (new_l, new_p) = self.append_block(dir)?;
        let mut node2 = self.new_dx_node(new_l, new_p);
        let full = &mut path[k].0;
        let moved = full.split_off(full.count() / 2);
        let Some(&(hash2, _)) = moved.first() else {
            return Err(self.invalid(&format!("directory {} htree node", dir.ino), full.lblk, "cannot be split"));
        };
        node2.set_entries(&moved);
        self.write_dx_block(dir, full)?;
        self.write_dx_block(dir, &mut node2)?;
        let (parent, at) = &mut path[k - 1];
        parent.insert_after(*at, hash2, new_l);
        self.write_dx_block(dir, parent).map(|()| true)
    }
}
