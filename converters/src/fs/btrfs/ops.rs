//! The path operations: lookups from the viewed subvolume, and the edits the conversion
//! makes, each checking first that the subvolume it changes shares no tree blocks.

use super::dir::{Entry, FT_DIR, FT_REG, FT_SYMLINK, ROOT_ITEM};
use super::inode::{Inode, Patch, INODE_ITEM, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use super::tree::key;
use super::{Btrfs, Core, Error, Loc, ROOT_DIR};
use crate::fs::{FsError, PathProblem};
use btrfs_disk::util::btrfs_name_hash;
use btrfs_transaction::inode::InodeArgs;

/// Most components one path has.
const MAX_COMPONENTS: usize = 256;
/// `BTRFS_LAST_FREE_OBJECTID`.
const LAST_FREE: u64 = -256i64 as u64;
/// `BTRFS_ROOT_TREE_DIR_OBJECTID`: holds the `default` subvolume entry.
const ROOT_TREE_DIR: u64 = 6;

/// What `lstat` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// Type and permission bits (`st_mode`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub nlink: u32,
    /// The subvolume holding the inode, and its number.
    pub subvolume: u64,
    pub ino: u64,
}

fn components(path: &str) -> Result<Vec<&[u8]>, Error> {
    let c: Vec<&[u8]> = path.split('/').filter(|c| !c.is_empty() && *c != ".").map(str::as_bytes).collect();
    if c.len() > MAX_COMPONENTS || c.iter().any(|c| *c == b"..") {
        return Err(Error::Path(PathProblem::InvalidName));
    }
    Ok(c)
}

fn into(from: Loc, e: &Entry) -> Loc {
    if e.loc_type == ROOT_ITEM {
        Loc { tree: e.loc_id, ino: ROOT_DIR }
    } else {
        Loc { tree: from.tree, ino: e.loc_id }
    }
}

impl Core<'_> {
    pub(super) fn default_subvolume(&mut self) -> Result<u64, Error> {
        let d = self.get(1, key(ROOT_TREE_DIR, super::dir::DIR_ITEM, u64::from(btrfs_name_hash(b"default"))))?;
        Ok(match d {
            Some(d) => super::dir::entries(&d)?.into_iter().find(|e| e.name == b"default").map_or(super::TOP_LEVEL, |e| e.loc_id),
            None => super::TOP_LEVEL,
        })
    }

    fn inode_of(&mut self, at: Loc) -> Result<Inode, Error> {
        self.inode(at.tree, at.ino)?.ok_or_else(|| Error::Corrupt(format!("inode {} of subvolume {} has an entry but no inode item", at.ino, at.tree)))
    }

    /// The inode `path` names from `start` (intermediate symlinks are not followed).
    pub(super) fn walk(&mut self, start: Loc, path: &str) -> Result<Loc, Error> {
        let mut at = start;
        for c in components(path)? {
            if !self.inode_of(at)?.is_dir() {
                return Err(Error::Path(PathProblem::NotDirectory));
            }
            let e = self.lookup(at, c)?.ok_or(Error::Path(PathProblem::NotFound))?;
            at = into(at, &e);
        }
        Ok(at)
    }

    /// The parent directory of `path` and the last name.
    fn parent<'p>(&mut self, start: Loc, path: &'p str) -> Result<(Loc, &'p [u8]), Error> {
        let mut c = components(path)?;
        let name = c.pop().ok_or(Error::Path(PathProblem::Exists))?;
        let mut at = start;
        for c in c {
            if !self.inode_of(at)?.is_dir() {
                return Err(Error::Path(PathProblem::NotDirectory));
            }
            let e = self.lookup(at, c)?.ok_or(Error::Path(PathProblem::NotFound))?;
            at = into(at, &e);
        }
        if !self.inode_of(at)?.is_dir() {
            return Err(Error::Path(PathProblem::NotDirectory));
        }
        Ok((at, name))
    }

    fn new_ino(&mut self, tree: u64) -> Result<u64, Error> {
        let last = self.last_key(tree, key(LAST_FREE, u8::MAX, u64::MAX))?.map_or(ROOT_DIR, |k| k.objectid);
        let next = last.max(ROOT_DIR) + 1;
        if next >= LAST_FREE {
            return Err(Error::Unsupported(format!("subvolume {tree}: inode numbers exhausted")));
        }
        Ok(next)
    }

    /// A new inode named `name` in `dir`.
    fn make(&mut self, dir: Loc, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Loc, Error> {
        self.check_unshared(dir.tree)?;
        if self.lookup(dir, name)?.is_some() {
            return Err(Error::Path(PathProblem::Exists));
        }
        let ino = self.new_ino(dir.tree)?;
        let transid = self.transid()?;
        let mut args = InodeArgs::new(transid, mode).with_uniform_time(super::inode::now());
        args.uid = uid;
        args.gid = gid;
        args.nlink = 1;
        args.generation = transid;
        self.insert(dir.tree, key(ino, INODE_ITEM, 0), &args.to_bytes())?;
        let ft = match mode & S_IFMT {
            S_IFDIR => FT_DIR,
            S_IFLNK => FT_SYMLINK,
            _ => FT_REG,
        };
        self.link(dir, ino, name, ft)?;
        Ok(Loc { tree: dir.tree, ino })
    }

    /// Drops one link of `at`; the last one removes the inode with its data and xattrs.
    fn drop_link(&mut self, at: Loc) -> Result<(), Error> {
        let ino = self.inode_of(at)?;
        if ino.nlink > 1 {
            return self.patch_inode(at.tree, at.ino, &Patch { nlink: Some(ino.nlink - 1), ..Patch::default() });
        }
        self.drop_extents(at)?;
        self.drop_xattrs(at)?;
        self.delete(at.tree, key(at.ino, INODE_ITEM, 0))?;
        Ok(())
    }

    fn unlink(&mut self, start: Loc, path: &str) -> Result<(), Error> {
        let (dir, name) = self.parent(start, path)?;
        let e = self.lookup(dir, name)?.ok_or(Error::Path(PathProblem::NotFound))?;
        if e.loc_type != INODE_ITEM || e.file_type == FT_DIR {
            return Err(Error::Path(PathProblem::IsDirectory));
        }
        self.check_unshared(dir.tree)?;
        let at = into(dir, &e);
        self.unlink_entry(dir, at.ino, name)?;
        self.drop_link(at)
    }

    fn rename(&mut self, start: Loc, from: &str, to: &str) -> Result<(), Error> {
        let (sdir, sname) = self.parent(start, from)?;
        let e = self.lookup(sdir, sname)?.ok_or(Error::Path(PathProblem::NotFound))?;
        let (ddir, dname) = self.parent(start, to)?;
        if e.loc_type != INODE_ITEM {
            return Err(Error::Unsupported(format!("renaming subvolume {from}")));
        }
        if sdir.tree != ddir.tree {
            return Err(Error::Unsupported(format!("renaming {from} to {to} across subvolumes")));
        }
        if e.file_type == FT_DIR && sdir != ddir {
            return Err(Error::Unsupported(format!("moving directory {from} to another directory")));
        }
        self.check_unshared(sdir.tree)?;
        let at = into(sdir, &e);
        if let Some(old) = self.lookup(ddir, dname)? {
            if old.loc_type == INODE_ITEM && old.loc_id == at.ino {
                return Ok(());
            }
            if old.loc_type != INODE_ITEM || old.file_type == FT_DIR {
                return Err(Error::Path(PathProblem::IsDirectory));
            }
            self.unlink_entry(ddir, old.loc_id, dname)?;
            self.drop_link(into(ddir, &old))?;
        }
        self.unlink_entry(sdir, at.ino, sname)?;
        self.link(ddir, at.ino, dname, e.file_type)?;
        self.patch_inode(at.tree, at.ino, &Patch::default())
    }
}

impl Btrfs<'_> {
    fn start(&self) -> Loc {
        Loc { tree: self.subvol, ino: ROOT_DIR }
    }

    /// `lstat` of `path` (a final symlink not followed).
    pub fn symlink_metadata(&self, path: &str) -> Result<Metadata, FsError> {
        let start = self.start();
        self.run(path, |c| {
            let at = c.walk(start, path)?;
            let i = c.inode_of(at)?;
            Ok(Metadata { mode: i.mode, uid: i.uid, gid: i.gid, size: i.size, nlink: i.nlink, subvolume: at.tree, ino: at.ino })
        })
    }

    /// A regular file's contents, refusing one larger than `max`.
    pub fn read_file(&self, path: &str, max: u64) -> Result<Vec<u8>, FsError> {
        let start = self.start();
        self.run(path, |c| {
            let at = c.walk(start, path)?;
            let i = c.inode_of(at)?;
            if i.is_dir() {
                return Err(Error::Path(PathProblem::IsDirectory));
            }
            c.read_data(at, i.size, max)
        })
    }

    /// A symlink's target.
    pub fn read_link(&self, path: &str) -> Result<Vec<u8>, FsError> {
        let start = self.start();
        self.run(path, |c| {
            let at = c.walk(start, path)?;
            let i = c.inode_of(at)?;
            if i.mode & S_IFMT != S_IFLNK {
                return Err(Error::Path(PathProblem::InvalidName));
            }
            c.read_data(at, i.size, 4096)
        })
    }

    /// The names in a directory (unsorted, without `.` and `..`).
    pub fn read_dir(&self, path: &str) -> Result<Vec<Vec<u8>>, FsError> {
        let start = self.start();
        self.run(path, |c| {
            let at = c.walk(start, path)?;
            if !c.inode_of(at)?.is_dir() {
                return Err(Error::Path(PathProblem::NotDirectory));
            }
            Ok(c.list(at)?.into_iter().map(|e| e.name).collect())
        })
    }

    /// The value of xattr `name` of `path` itself.
    pub fn get_xattr(&self, path: &str, name: &str) -> Result<Option<Vec<u8>>, FsError> {
        let start = self.start();
        self.run(path, |c| {
            let at = c.walk(start, path)?;
            c.get_xattr(at, name.as_bytes())
        })
    }

    /// Creates a regular file with `data`.
    pub fn create_file(&mut self, path: &str, data: &[u8], perm: u32, uid: u32, gid: u32) -> Result<(), FsError> {
        let start = self.start();
        self.edit(path, |c| {
            let (dir, name) = c.parent(start, path)?;
            let at = c.make(dir, name, S_IFREG | (perm & 0o7777), uid, gid)?;
            c.write_data(at, data)
        })
    }

    /// Replaces a regular file's contents.
    pub fn write_file(&mut self, path: &str, data: &[u8]) -> Result<(), FsError> {
        let start = self.start();
        self.edit(path, |c| {
            let at = c.walk(start, path)?;
            if c.inode_of(at)?.mode & S_IFMT != S_IFREG {
                return Err(Error::Path(PathProblem::IsDirectory));
            }
            c.check_unshared(at.tree)?;
            c.write_data(at, data)
        })
    }

    /// Creates a directory.
    pub fn mkdir(&mut self, path: &str, perm: u32, uid: u32, gid: u32) -> Result<(), FsError> {
        let start = self.start();
        self.edit(path, |c| {
            let (dir, name) = c.parent(start, path)?;
            c.make(dir, name, S_IFDIR | (perm & 0o7777), uid, gid).map(|_| ())
        })
    }

    /// Creates the symlink `path` → `target`.
    pub fn symlink(&mut self, path: &str, target: &[u8], uid: u32, gid: u32) -> Result<(), FsError> {
        let start = self.start();
        self.edit(path, |c| {
            if target.is_empty() || target.len() > 2048 {
                return Err(Error::Path(PathProblem::NameTooLong));
            }
            let (dir, name) = c.parent(start, path)?;
            let at = c.make(dir, name, S_IFLNK | 0o777, uid, gid)?;
            c.write_data(at, target)
        })
    }

    /// Removes a file or symlink.
    pub fn unlink(&mut self, path: &str) -> Result<(), FsError> {
        let start = self.start();
        self.edit(path, |c| c.unlink(start, path))
    }

    /// Renames `from` to `to`, replacing a file there.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), FsError> {
        let start = self.start();
        self.edit(from, |c| c.rename(start, from, to))
    }

    /// Sets the permission bits.
    pub fn set_mode(&mut self, path: &str, perm: u32) -> Result<(), FsError> {
        let start = self.start();
        self.edit(path, |c| {
            let at = c.walk(start, path)?;
            let i = c.inode_of(at)?;
            c.check_unshared(at.tree)?;
            c.patch_inode(at.tree, at.ino, &Patch { mode: Some((i.mode & S_IFMT) | (perm & 0o7777)), ..Patch::default() })
        })
    }

    /// Sets owner and group.
    pub fn set_owner(&mut self, path: &str, uid: u32, gid: u32) -> Result<(), FsError> {
        let start = self.start();
        self.edit(path, |c| {
            let at = c.walk(start, path)?;
            c.check_unshared(at.tree)?;
            c.patch_inode(at.tree, at.ino, &Patch { uid: Some(uid), gid: Some(gid), ..Patch::default() })
        })
    }

    /// Sets xattr `name` of `path` itself.
    pub fn set_xattr(&mut self, path: &str, name: &str, value: &[u8]) -> Result<(), FsError> {
        let start = self.start();
        self.edit(path, |c| {
            let at = c.walk(start, path)?;
            c.check_unshared(at.tree)?;
            c.set_xattr(at, name.as_bytes(), value)
        })
    }
}
