//! Directory entries: `DIR_ITEM` (keyed by the name's crc32c hash, names that collide share
//! one item), `DIR_INDEX` (keyed by the readdir index: the next after the directory's largest)
//! and the child's `INODE_REF` back to the parent; the directory's i_size counts each name
//! twice.

use super::inode::{self, Patch};
use super::tree::key;
use super::{Core, Error, Loc};
use crate::fs::PathProblem;
use btrfs_disk::util::btrfs_name_hash;

pub const INODE_REF: u8 = 12;
pub const DIR_ITEM: u8 = 84;
pub const DIR_INDEX: u8 = 96;
pub const ROOT_ITEM: u8 = 132;
/// `struct btrfs_dir_item` before its name.
const DIR_HEAD: usize = 30;
/// The first readdir index (0 and 1 are `.` and `..`).
const FIRST_INDEX: u64 = 2;

pub const FT_REG: u8 = 1;
pub const FT_DIR: u8 = 2;
pub const FT_SYMLINK: u8 = 7;

/// One name of a `DIR_ITEM`/`DIR_INDEX`/`XATTR_ITEM` payload.
#[derive(Clone, Debug)]
pub struct Entry {
    pub loc_id: u64,
    pub loc_type: u8,
    pub file_type: u8,
    pub name: Vec<u8>,
    pub data: Vec<u8>,
}

/// Splits an item's payload into its entries.
pub fn entries(d: &[u8]) -> Result<Vec<Entry>, Error> {
    let mut out = Vec::new();
    let mut p = 0usize;
    while p < d.len() {
        let h = d.get(p..p + DIR_HEAD).ok_or_else(|| Error::Corrupt(format!("directory item cut at byte {p}")))?;
        let data_len = usize::from(u16::from_le_bytes([h[25], h[26]]));
        let name_len = usize::from(u16::from_le_bytes([h[27], h[28]]));
        let end = p + DIR_HEAD + name_len + data_len;
        let body = d.get(p + DIR_HEAD..end).ok_or_else(|| Error::Corrupt(format!("directory entry of {name_len}+{data_len} bytes overruns its item")))?;
        out.push(Entry { loc_id: inode::u64_at(h, 0), loc_type: h[8], file_type: h[29], name: body[..name_len].to_vec(), data: body[name_len..].to_vec() });
        p = end;
    }
    Ok(out)
}

/// One entry's bytes.
pub fn encode(loc: (u64, u8, u64), transid: u64, file_type: u8, name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(DIR_HEAD + name.len() + data.len());
    b.extend_from_slice(&loc.0.to_le_bytes());
    b.push(loc.1);
    b.extend_from_slice(&loc.2.to_le_bytes());
    b.extend_from_slice(&transid.to_le_bytes());
    b.extend_from_slice(&(data.len() as u16).to_le_bytes());
    b.extend_from_slice(&(name.len() as u16).to_le_bytes());
    b.push(file_type);
    b.extend_from_slice(name);
    b.extend_from_slice(data);
    b
}

fn encode_entry(e: &Entry, transid: u64) -> Vec<u8> {
    let off = if e.loc_type == ROOT_ITEM { u64::MAX } else { 0 };
    encode((e.loc_id, e.loc_type, off), transid, e.file_type, &e.name, &e.data)
}

impl Core<'_> {
    /// The entry `name` of directory `dir`.
    pub(super) fn lookup(&mut self, dir: Loc, name: &[u8]) -> Result<Option<Entry>, Error> {
        let Some(d) = self.get(dir.tree, key(dir.ino, DIR_ITEM, u64::from(btrfs_name_hash(name))))? else { return Ok(None) };
        Ok(entries(&d)?.into_iter().find(|e| e.name == name))
    }

    /// The names in `dir`, from its `DIR_INDEX` items.
    pub(super) fn list(&mut self, dir: Loc) -> Result<Vec<Entry>, Error> {
        let mut out = Vec::new();
        for (_, d) in self.range(dir.tree, key(dir.ino, DIR_INDEX, 0), key(dir.ino, DIR_INDEX, u64::MAX))? {
            out.extend(entries(&d)?);
        }
        Ok(out)
    }

    fn next_index(&mut self, dir: Loc) -> Result<u64, Error> {
        Ok(match self.last_of(dir.tree, key(dir.ino, DIR_INDEX, u64::MAX))? {
            Some(k) => k.offset.checked_add(1).ok_or_else(|| Error::Corrupt(format!("directory {} index exhausted", dir.ino)))?.max(FIRST_INDEX),
            None => FIRST_INDEX,
        })
    }

    /// Adds `name` → `child` (same tree) to `dir`: DIR_ITEM (appended to a colliding
    /// item), DIR_INDEX, INODE_REF; the directory's size, times, transid.
    pub(super) fn link(&mut self, dir: Loc, child: u64, name: &[u8], file_type: u8) -> Result<(), Error> {
        if name.is_empty() || name.len() > 255 {
            return Err(Error::Path(if name.is_empty() { PathProblem::InvalidName } else { PathProblem::NameTooLong }));
        }
        let transid = self.transid()?;
        let index = self.next_index(dir)?;
        let entry = encode((child, inode::INODE_ITEM, 0), transid, file_type, name, &[]);
        let hk = key(dir.ino, DIR_ITEM, u64::from(btrfs_name_hash(name)));
        match self.get(dir.tree, hk)? {
            Some(mut old) => {
                if entries(&old)?.iter().any(|e| e.name == name) {
                    return Err(Error::Path(PathProblem::Exists));
                }
                old.extend_from_slice(&entry);
                self.replace(dir.tree, hk, &old)?;
            }
            None => self.insert(dir.tree, hk, &entry)?,
        }
        self.insert(dir.tree, key(dir.ino, DIR_INDEX, index), &entry)?;
        let mut iref = Vec::with_capacity(10 + name.len());
        iref.extend_from_slice(&index.to_le_bytes());
        iref.extend_from_slice(&(name.len() as u16).to_le_bytes());
        iref.extend_from_slice(name);
        let rk = key(child, INODE_REF, dir.ino);
        match self.get(dir.tree, rk)? {
            Some(mut old) => {
                old.extend_from_slice(&iref);
                self.replace(dir.tree, rk, &old)?;
            }
            None => self.insert(dir.tree, rk, &iref)?,
        }
        self.dir_size(dir, name.len() as i64 * 2)
    }

    fn dir_size(&mut self, dir: Loc, delta: i64) -> Result<(), Error> {
        let ino = self.inode(dir.tree, dir.ino)?.ok_or_else(|| Error::Corrupt(format!("directory {} has no inode", dir.ino)))?;
        let size = ino.size.checked_add_signed(delta).ok_or_else(|| Error::Corrupt(format!("directory {} size {} below {}", dir.ino, ino.size, -delta)))?;
        self.patch_inode(dir.tree, dir.ino, &Patch { size: Some(size), mtime: true, ..Patch::default() })
    }

    /// Removes the entry `name` of `dir` (which names `child`, an inode of the same tree):
    /// the name's DIR_ITEM entry, its DIR_INDEX, its INODE_REF.
    pub(super) fn unlink_entry(&mut self, dir: Loc, child: u64, name: &[u8]) -> Result<(), Error> {
        let hk = key(dir.ino, DIR_ITEM, u64::from(btrfs_name_hash(name)));
        let old = self.get(dir.tree, hk)?.ok_or(Error::Path(PathProblem::NotFound))?;
        let transid = self.transid()?;
        let rest: Vec<Entry> = entries(&old)?.into_iter().filter(|e| e.name != name).collect();
        if rest.is_empty() {
            self.delete(dir.tree, hk)?;
        } else {
            let bytes: Vec<u8> = rest.iter().flat_map(|e| encode_entry(e, transid)).collect();
            self.replace(dir.tree, hk, &bytes)?;
        }
        let rk = key(child, INODE_REF, dir.ino);
        let refs = self.get(dir.tree, rk)?.ok_or_else(|| Error::Unsupported(format!("inode {child} without an INODE_REF in its directory (extended refs)")))?;
        let mut keep = Vec::new();
        let mut index = None;
        let mut p = 0usize;
        while p < refs.len() {
            let h = refs.get(p..p + 10).ok_or_else(|| Error::Corrupt(format!("inode ref of inode {child} cut")))?;
            let n = usize::from(u16::from_le_bytes([h[8], h[9]]));
            let whole = refs.get(p..p + 10 + n).ok_or_else(|| Error::Corrupt(format!("inode ref name of inode {child} overruns its item")))?;
            if index.is_none() && &whole[10..] == name {
                index = Some(inode::u64_at(h, 0));
            } else {
                keep.extend_from_slice(whole);
            }
            p += 10 + n;
        }
        let index = index.ok_or_else(|| Error::Corrupt(format!("inode {child} has no ref named like its directory entry")))?;
        if keep.is_empty() {
            self.delete(dir.tree, rk)?;
        } else {
            self.replace(dir.tree, rk, &keep)?;
        }
        self.delete(dir.tree, key(dir.ino, DIR_INDEX, index))?;
        self.dir_size(dir, -(name.len() as i64 * 2))
    }
}
