//! Extended attributes: `XATTR_ITEM`s keyed by the name's hash, laid out like directory
//! entries (names that collide share an item) with the value after the name.

use super::dir::{encode, entries};
use super::inode::Patch;
use super::tree::key;
use super::{Core, Error, Loc};
use btrfs_disk::util::btrfs_name_hash;

const XATTR_ITEM: u8 = 24;
const FT_XATTR: u8 = 8;

impl Core<'_> {
    pub(super) fn get_xattr(&mut self, at: Loc, name: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let Some(d) = self.get(at.tree, key(at.ino, XATTR_ITEM, u64::from(btrfs_name_hash(name))))? else { return Ok(None) };
        Ok(entries(&d)?.into_iter().find(|e| e.name == name).map(|e| e.data))
    }

    pub(super) fn set_xattr(&mut self, at: Loc, name: &[u8], value: &[u8]) -> Result<(), Error> {
        if name.is_empty() || name.len() > 255 {
            return Err(Error::Unsupported(format!("xattr name of {} bytes", name.len())));
        }
        let transid = self.transid()?;
        let k = key(at.ino, XATTR_ITEM, u64::from(btrfs_name_hash(name)));
        let mut bytes = Vec::new();
        if let Some(d) = self.get(at.tree, k)? {
            for e in entries(&d)?.into_iter().filter(|e| e.name != name) {
                bytes.extend(encode((0, 0, 0), transid, FT_XATTR, &e.name, &e.data));
            }
        }
        bytes.extend(encode((0, 0, 0), transid, FT_XATTR, name, value));
        if self.get(at.tree, k)?.is_some() {
            self.replace(at.tree, k, &bytes)?;
        } else {
            self.insert(at.tree, k, &bytes)?;
        }
        self.patch_inode(at.tree, at.ino, &Patch::default())
    }

    /// Deletes every xattr item of an inode being removed.
    pub(super) fn drop_xattrs(&mut self, at: Loc) -> Result<(), Error> {
        for (k, _) in self.range(at.tree, key(at.ino, XATTR_ITEM, 0), key(at.ino, XATTR_ITEM, u64::MAX))? {
            self.delete(at.tree, k)?;
        }
        Ok(())
    }
}
