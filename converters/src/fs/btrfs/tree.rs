//! Item access on one tree through `btrfs-transaction`: point reads, ranges, in-place
//! patches, inserts and deletes (with the parent keys fixed when a leaf's first key changes).

use super::{Core, Error};
use btrfs_disk::tree::{DiskKey, KeyType};
use btrfs_transaction::buffer::key_cmp;
use btrfs_transaction::path::BtrfsPath;
use btrfs_transaction::search::{self, SearchIntent};
use btrfs_transaction::{items, Transaction};
use std::cmp::Ordering;

/// `struct btrfs_item`'s size in a leaf.
pub const ITEM_SIZE: usize = 25;
/// Searches one insert makes before giving up on the crate's split (see [`Core::insert`]).
const MAX_INSERT_SEARCHES: usize = 8;
/// Most items one range read returns (a bound on memory from a corrupt tree).
pub const MAX_RANGE_ITEMS: usize = 1 << 20;

pub fn key(objectid: u64, ty: u8, offset: u64) -> DiskKey {
    DiskKey { objectid, key_type: KeyType::from_raw(ty), offset }
}

impl<'a> Core<'a> {
    /// Starts the transaction on the first edit.
    pub(super) fn begin(&mut self) -> Result<(), Error> {
        if self.tx.is_none() {
            self.tx = Some(Transaction::start(&mut self.fs)?);
        }
        Ok(())
    }

    pub(super) fn transid(&mut self) -> Result<u64, Error> {
        self.begin()?;
        Ok(self.tx.as_ref().map_or(0, |t| t.transid))
    }

    fn search(&mut self, tree: u64, k: &DiskKey, path: &mut BtrfsPath, intent: SearchIntent, cow: bool) -> Result<bool, Error> {
        if self.fs.root_bytenr(tree).is_none_or(|b| b == 0) {
            return Err(Error::Corrupt(format!("tree {tree} has no root")));
        }
        let tx = if cow { self.tx.as_mut() } else { None };
        Ok(search::search_slot(tx, &mut self.fs, tree, k, path, intent, cow)?)
    }

    /// The item at exactly `k`.
    pub(super) fn get(&mut self, tree: u64, k: DiskKey) -> Result<Option<Vec<u8>>, Error> {
        let mut path = BtrfsPath::new();
        if !self.search(tree, &k, &mut path, SearchIntent::ReadOnly, false)? {
            return Ok(None);
        }
        Ok(path.nodes[0].as_ref().map(|l| l.item_data(path.slots[0]).to_vec()))
    }

    /// Every item with `min <= key <= max`, in key order.
    pub(super) fn range(&mut self, tree: u64, min: DiskKey, max: DiskKey) -> Result<Vec<(DiskKey, Vec<u8>)>, Error> {
        let mut out = Vec::new();
        let mut path = BtrfsPath::new();
        self.search(tree, &min, &mut path, SearchIntent::ReadOnly, false)?;
        while let Some(leaf) = path.nodes[0].as_ref() {
            let slot = path.slots[0];
            if slot >= leaf.nritems() as usize {
                if !search::next_leaf(&mut self.fs, &mut path)? {
                    break;
                }
                continue;
            }
            let k = leaf.item_key(slot);
            if key_cmp(&k, &max) == Ordering::Greater {
                break;
            }
            if key_cmp(&k, &min) != Ordering::Less {
                if out.len() >= MAX_RANGE_ITEMS {
                    return Err(Error::Corrupt(format!("more than {MAX_RANGE_ITEMS} items in one range of tree {tree}")));
                }
                out.push((k, leaf.item_data(slot).to_vec()));
            }
            path.slots[0] = slot + 1;
        }
        Ok(out)
    }

    /// The largest key `<= k` whose objectid and type match `k`'s (same objectid and type).
    pub(super) fn last_of(&mut self, tree: u64, k: DiskKey) -> Result<Option<DiskKey>, Error> {
        let mut path = BtrfsPath::new();
        let found = self.search(tree, &k, &mut path, SearchIntent::ReadOnly, false)?;
        let Some(leaf) = path.nodes[0].as_ref() else { return Ok(None) };
        let cand = if found {
            Some(leaf.item_key(path.slots[0]))
        } else if path.slots[0] > 0 {
            Some(leaf.item_key(path.slots[0] - 1))
        } else if search::prev_leaf(&mut self.fs, &mut path)? {
            path.nodes[0].as_ref().and_then(|l| l.nritems().checked_sub(1).map(|s| l.item_key(s as usize)))
        } else {
            None
        };
        Ok(cand.filter(|c| c.objectid == k.objectid && c.key_type == k.key_type))
    }

    /// The largest key `<= k` of the whole tree.
    pub(super) fn last_key(&mut self, tree: u64, k: DiskKey) -> Result<Option<DiskKey>, Error> {
        let mut path = BtrfsPath::new();
        let found = self.search(tree, &k, &mut path, SearchIntent::ReadOnly, false)?;
        let Some(leaf) = path.nodes[0].as_ref() else { return Ok(None) };
        if found {
            return Ok(Some(leaf.item_key(path.slots[0])));
        }
        if path.slots[0] > 0 {
            return Ok(Some(leaf.item_key(path.slots[0] - 1)));
        }
        if search::prev_leaf(&mut self.fs, &mut path)? {
            return Ok(path.nodes[0].as_ref().and_then(|l| l.nritems().checked_sub(1).map(|s| l.item_key(s as usize))));
        }
        Ok(None)
    }

    /// Patches the item at `k` in place (its tree path copied on write first).
    pub(super) fn update<T>(&mut self, tree: u64, k: DiskKey, f: impl FnOnce(&mut [u8]) -> T) -> Result<Option<T>, Error> {
        self.begin()?;
        let mut path = BtrfsPath::new();
        if !self.search(tree, &k, &mut path, SearchIntent::ReadOnly, true)? {
            return Ok(None);
        }
        let slot = path.slots[0];
        let Some(leaf) = path.nodes[0].as_mut() else { return Ok(None) };
        let r = f(leaf.item_data_mut(slot));
        self.fs.mark_dirty(leaf);
        Ok(Some(r))
    }

    /// Inserts a new item; an existing item at `k` is an error.
    pub(super) fn insert(&mut self, tree: u64, k: DiskKey, data: &[u8]) -> Result<(), Error> {
        self.begin()?;
        let max = self.fs.nodesize as usize / 2;
        if data.len() + ITEM_SIZE > max {
            return Err(Error::Unsupported(format!("an item of {} bytes (more than half a {}-byte tree block)", data.len(), self.fs.nodesize)));
        }
        let need = u32::try_from(ITEM_SIZE + data.len()).unwrap_or(u32::MAX);
        // btrfs-transaction 0.13's search can return, right after it split the leaf, a slot
        // past the end of the leaf it returns: search again (each split made room; the
        // search that needs none returns the right slot).
        let mut path = BtrfsPath::new();
        for attempt in 0..MAX_INSERT_SEARCHES {
            path = BtrfsPath::new();
            if self.search(tree, &k, &mut path, SearchIntent::Insert(need), true)? {
                return Err(Error::Corrupt(format!("item {}/{}/{} already in tree {tree}", k.objectid, k.key_type.to_raw(), k.offset)));
            }
            let fits = path.nodes[0].as_ref().is_some_and(|l| {
                let (slot, n) = (path.slots[0], l.nritems() as usize);
                slot <= n && l.leaf_free_space() >= need && (slot == 0 || key_cmp(&l.item_key(slot - 1), &k) == Ordering::Less) && (slot == n || key_cmp(&l.item_key(slot), &k) == Ordering::Greater)
            });
            if fits {
                break;
            }
            if attempt + 1 == MAX_INSERT_SEARCHES {
                return Err(Error::Corrupt(format!("no leaf slot for item {}/{}/{} in tree {tree}", k.objectid, k.key_type.to_raw(), k.offset)));
            }
        }
        let slot = path.slots[0];
        let Some(leaf) = path.nodes[0].as_mut() else { return Err(Error::Corrupt("no leaf on the search path".into())) };
        items::insert_item(leaf, slot, &k, data)?;
        self.fs.mark_dirty(leaf);
        if slot == 0 {
            self.fixup_low_keys(&mut path)?;
        }
        Ok(())
    }

    /// Deletes the item at `k`; false if there was none.
    pub(super) fn delete(&mut self, tree: u64, k: DiskKey) -> Result<bool, Error> {
        self.begin()?;
        let mut path = BtrfsPath::new();
        if !self.search(tree, &k, &mut path, SearchIntent::Delete, true)? {
            return Ok(false);
        }
        let slot = path.slots[0];
        let Some(leaf) = path.nodes[0].as_mut() else { return Ok(false) };
        items::del_items(leaf, slot, 1);
        self.fs.mark_dirty(leaf);
        if slot == 0 && leaf.nritems() > 0 {
            self.fixup_low_keys(&mut path)?;
        }
        Ok(true)
    }

    /// Replaces the item at `k` with `data` (delete + insert: sizes may differ).
    pub(super) fn replace(&mut self, tree: u64, k: DiskKey, data: &[u8]) -> Result<(), Error> {
        self.delete(tree, k)?;
        self.insert(tree, k, data)
    }

    /// After the first item of the path's leaf changed, the key pointers above it that
    /// named the old first key name the new one (the kernel's `fixup_low_keys`).
    fn fixup_low_keys(&mut self, path: &mut BtrfsPath) -> Result<(), Error> {
        let Some(first) = path.nodes[0].as_ref().filter(|l| l.nritems() > 0).map(|l| l.item_key(0)) else { return Ok(()) };
        for level in 1..path.nodes.len() {
            let slot = path.slots[level];
            let Some(node) = path.nodes[level].as_mut() else { break };
            node.set_key_ptr_key(slot, &first);
            self.fs.mark_dirty(node);
            if slot != 0 {
                break;
            }
        }
        Ok(())
    }
}
