//! Refusing to edit a subvolume whose tree blocks are shared with a snapshot:
//! `btrfs-transaction` 0.13 copies a shared block on write without the kernel's
//! `update_ref_for_cow` (children's refs, FULL_BACKREF), which would corrupt the refcounts.
//! Every block of the tree is checked in the extent tree once, before the first edit.

use super::dir::ROOT_ITEM;
use super::inode::u64_at;
use super::tree::key;
use super::{Core, Error};

const EXTENT_ITEM: u8 = 168;
const METADATA_ITEM: u8 = 169;
const ROOT_BACKREF: u8 = 144;
const EXTENT_TREE: u64 = 2;
const ROOT_TREE: u64 = 1;
/// `BTRFS_BLOCK_FLAG_FULL_BACKREF`.
const FULL_BACKREF: u64 = 1 << 8;
/// Most tree blocks walked (a bound on a corrupt tree's loops).
const MAX_BLOCKS: usize = 1 << 22;

impl Core<'_> {
    /// Errors if a block of subvolume `tree`'s tree has more than one ref or a full backref.
    pub(super) fn check_unshared(&mut self, tree: u64) -> Result<(), Error> {
        if !self.unshared.insert(tree) {
            return Ok(());
        }
        let root = self.fs.root_bytenr(tree).ok_or_else(|| Error::Corrupt(format!("subvolume {tree} has no root")))?;
        let mut todo = vec![root];
        let mut seen = 0usize;
        while let Some(b) = todo.pop() {
            seen += 1;
            if seen > MAX_BLOCKS {
                return Err(Error::Corrupt(format!("subvolume {tree} has more than {MAX_BLOCKS} tree blocks")));
            }
            let eb = self.fs.read_block(b)?;
            let level = eb.level();
            let item = match self.get(EXTENT_TREE, key(b, METADATA_ITEM, u64::from(level)))? {
                Some(d) => Some(d),
                None => self.get(EXTENT_TREE, key(b, EXTENT_ITEM, u64::from(self.fs.nodesize)))?,
            };
            let d = item.ok_or_else(|| Error::Corrupt(format!("tree block {b} of subvolume {tree} has no extent item")))?;
            if u64_at(&d, 0) > 1 || u64_at(&d, 16) & FULL_BACKREF != 0 {
                return Err(Error::Unsupported(format!("editing subvolume {} whose tree blocks are shared with snapshots ({}): btrfs-transaction 0.13 does not unshare them", self.subvol_name(tree), self.relatives(tree)?)));
            }
            if level > 0 {
                let n = eb.nritems() as usize;
                if n > eb.max_key_ptrs() as usize {
                    return Err(Error::Corrupt(format!("tree block {b} has {n} pointers")));
                }
                todo.extend((0..n).map(|s| eb.key_ptr_blockptr(s)));
            }
        }
        Ok(())
    }

    /// `id` with its name (`257 (@home)`).
    pub(super) fn subvol_name(&mut self, id: u64) -> String {
        let name = self.range(ROOT_TREE, key(id, ROOT_BACKREF, 0), key(id, ROOT_BACKREF, u64::MAX)).ok().and_then(|v| v.into_iter().next()).and_then(|(_, d)| {
            let n = usize::from(u16::from_le_bytes([*d.get(16)?, *d.get(17)?]));
            d.get(18..18 + n).map(|b| String::from_utf8_lossy(b).into_owned())
        });
        match name {
            Some(n) => format!("{id} ({n})"),
            None if id == 5 => "5 (top level)".into(),
            None => id.to_string(),
        }
    }

    /// The snapshots of `tree` and the subvolume it is a snapshot of, by UUID.
    fn relatives(&mut self, tree: u64) -> Result<String, Error> {
        let roots = self.range(ROOT_TREE, key(0, ROOT_ITEM, 0), key(u64::MAX, ROOT_ITEM, u64::MAX))?;
        let uuids = |d: &[u8]| -> Option<([u8; 16], [u8; 16])> { Some((d.get(247..263)?.try_into().ok()?, d.get(263..279)?.try_into().ok()?)) };
        let Some((me, parent)) = roots.iter().find(|(k, _)| k.objectid == tree).and_then(|(_, d)| uuids(d)) else { return Ok("unknown".into()) };
        let mut ids: Vec<u64> = Vec::new();
        for (k, d) in &roots {
            if let Some((u, p)) = uuids(d) {
                if k.objectid != tree && ((p == me && me != [0; 16]) || (u == parent && parent != [0; 16])) {
                    ids.push(k.objectid);
                }
            }
        }
        ids.dedup();
        if ids.is_empty() {
            return Ok("no snapshot found by UUID".into());
        }
        Ok(ids.into_iter().map(|i| self.subvol_name(i)).collect::<Vec<_>>().join(", "))
    }
}
