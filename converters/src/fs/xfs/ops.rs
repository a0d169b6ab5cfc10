//! The path API conversion uses: lookup (following symlinks, bounded), read, list, and the
//! in-place edits (chmod, chown, utimes, rewriting a file within its blocks).

use super::bytes::{be32, be64, crc_ok};
use super::inode::{FileKind, Inode, FMT_LOCAL, MTIME, ATIME};
use super::Xfs;
use crate::fs::{FsError, PathProblem};
use std::collections::VecDeque;

/// Most symlinks followed while resolving one path, as Linux allows.
const MAX_SYMLINKS: u32 = 40;
/// XFS's longest symlink target.
const MAX_TARGET: u64 = 1024;
const SYMLINK_HDR: usize = 56;
const SYMLINK_CRC: usize = 12;

/// What `stat` would say about a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub ino: u64,
    pub kind: FileKind,
    /// Permission bits (`mode & 0o7777`).
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub links: u32,
    pub mtime: i64,
    pub atime: i64,
}

/// One entry of a directory listing ("." and ".." excluded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub ino: u64,
}

fn components(path: &str) -> impl Iterator<Item = &[u8]> {
    path.as_bytes().split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".")
}

impl Xfs<'_> {
    pub(super) fn path_err(&self, path: &str, problem: PathProblem) -> FsError {
        FsError::Path { fs: self.name.clone(), path: path.to_string(), problem }
    }

    /// Resolves `path` from the root; symlinks in the middle are always followed, the last
    /// component only when `follow_last`. `..` is looked up as stored (the root's is itself).
    pub(super) fn resolve(&self, path: &str, follow_last: bool) -> Result<Inode, FsError> {
        let mut todo: VecDeque<Vec<u8>> = components(path).map(<[u8]>::to_vec).collect();
        let mut stack = vec![self.read_inode(self.sb.rootino)?];
        let mut followed = 0;
        while let Some(name) = todo.pop_front() {
            let cur = stack.last().cloned().ok_or_else(|| self.path_err(path, PathProblem::NotFound))?;
            if cur.kind() != FileKind::Directory {
                return Err(self.path_err(path, PathProblem::NotDirectory));
            }
            if name == b".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let Some(e) = self.dir_entries(&cur)?.into_iter().find(|e| e.name == name) else {
                return Err(self.path_err(path, PathProblem::NotFound));
            };
            let child = self.read_inode(e.ino)?;
            if child.kind() == FileKind::Symlink && (follow_last || !todo.is_empty()) {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(self.path_err(path, PathProblem::SymlinkLoop));
                }
                let target = self.link_target(&child)?;
                if target.first() == Some(&b'/') {
                    stack.truncate(1);
                }
                for c in target.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".").rev() {
                    todo.push_front(c.to_vec());
                }
                continue;
            }
            stack.push(child);
        }
        stack.pop().ok_or_else(|| self.path_err(path, PathProblem::NotFound))
    }

    fn meta(&self, i: &Inode) -> Metadata {
        Metadata {
            ino: i.ino,
            kind: i.kind(),
            perm: i.mode() & 0o7777,
            uid: i.uid(),
            gid: i.gid(),
            size: i.size(),
            links: i.nlink(),
            mtime: i.time(MTIME),
            atime: i.time(ATIME),
        }
    }

    /// `stat(path)`.
    pub fn metadata(&self, path: &str) -> Result<Metadata, FsError> {
        Ok(self.meta(&self.resolve(path, true)?))
    }

    /// `lstat(path)`.
    pub fn symlink_metadata(&self, path: &str) -> Result<Metadata, FsError> {
        Ok(self.meta(&self.resolve(path, false)?))
    }

    /// The contents of a regular file, refused past `max` bytes.
    pub fn read_file(&self, path: &str, max: u64) -> Result<Vec<u8>, FsError> {
        let i = self.resolve(path, true)?;
        match i.kind() {
            FileKind::Regular => {}
            FileKind::Directory => return Err(self.path_err(path, PathProblem::IsDirectory)),
            _ => return Err(self.path_err(path, PathProblem::InvalidName)),
        }
        if i.size() > max {
            return Err(self.path_err(path, PathProblem::TooLarge));
        }
        let ext = self.extents(&i)?;
        self.read_mapped(i.ino, &ext, i.size())
    }

    /// The target of a symbolic link.
    pub fn read_link(&self, path: &str) -> Result<Vec<u8>, FsError> {
        let i = self.resolve(path, false)?;
        if i.kind() != FileKind::Symlink {
            return Err(self.path_err(path, PathProblem::InvalidName));
        }
        self.link_target(&i)
    }

    fn link_target(&self, i: &Inode) -> Result<Vec<u8>, FsError> {
        let size = i.size();
        let field = format!("symlink inode {} di_size", i.ino);
        if size == 0 || size > MAX_TARGET {
            return Err(self.invalid(&field, size, format!("not 1..{MAX_TARGET}")));
        }
        if i.format() == FMT_LOCAL {
            return i.data_fork().get(..size as usize).map(<[u8]>::to_vec).ok_or_else(|| self.invalid(&field, size, "larger than the inode's fork"));
        }
        let ext = self.extents(i)?;
        let bs = self.sb.block as usize;
        let mut out = Vec::new();
        for e in &ext {
            for k in 0..e.len {
                if out.len() as u64 >= size {
                    break;
                }
                let mut b = vec![0u8; bs];
                let fsb = e.fsb + k;
                self.read_fsb(&mut b, fsb, &format!("symlink inode {} block", i.ino))?;
                let payload = if self.sb.v5 {
                    let bad = |f: &str, v: String| self.invalid(&format!("symlink inode {} block {fsb} {f}", i.ino), v, "invalid remote symlink header");
                    if b.get(0..4) != Some(b"XSLM") || !crc_ok(&b, SYMLINK_CRC) {
                        return Err(bad("magic/crc", format!("{:#010x}", be32(&b, 0))));
                    }
                    if be64(&b, 32) != i.ino {
                        return Err(bad("owner", be64(&b, 32).to_string()));
                    }
                    let n = be32(&b, 8) as usize;
                    b.get(SYMLINK_HDR..SYMLINK_HDR + n).ok_or_else(|| bad("bytes", n.to_string()))?.to_vec()
                } else {
                    b
                };
                out.extend_from_slice(&payload);
            }
        }
        out.truncate(size as usize);
        if (out.len() as u64) < size {
            return Err(self.invalid(&field, size, "longer than its blocks"));
        }
        Ok(out)
    }

    /// The entries of a directory ("." and ".." excluded), in on-disk order.
    pub fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let i = self.resolve(path, true)?;
        if i.kind() != FileKind::Directory {
            return Err(self.path_err(path, PathProblem::NotDirectory));
        }
        Ok(self.dir_entries(&i)?.into_iter().map(|e| DirEntry { name: e.name, ino: e.ino }).collect())
    }

    /// The value of extended attribute `name` (`security.selinux`, `user.*`, `trusted.*`) of
    /// `path` itself (no symlink following); `None` if it has none by that name.
    pub fn get_xattr(&self, path: &str, name: &str) -> Result<Option<Vec<u8>>, FsError> {
        let i = self.resolve(path, false)?;
        self.inode_xattr(&i, name)
    }

    /// `chmod` (no symlink following).
    pub fn set_mode(&mut self, path: &str, perm: u16) -> Result<(), FsError> {
        self.check_no_cow_leftovers()?;
        let mut i = self.resolve(path, false)?;
        i.set_mode((i.mode() & 0o170000) | (perm & 0o7777));
        i.touch_ctime();
        self.write_inode(&mut i)
    }

    /// `lchown`.
    pub fn set_owner(&mut self, path: &str, uid: u32, gid: u32) -> Result<(), FsError> {
        self.check_no_cow_leftovers()?;
        let mut i = self.resolve(path, false)?;
        i.set_owner(uid, gid);
        i.touch_ctime();
        self.write_inode(&mut i)
    }

    /// Sets access and modification times (seconds since the epoch).
    pub fn set_times(&mut self, path: &str, atime: i64, mtime: i64) -> Result<(), FsError> {
        self.check_no_cow_leftovers()?;
        let mut i = self.resolve(path, false)?;
        i.set_time(ATIME, atime, 0);
        i.set_time(MTIME, mtime, 0);
        i.touch_ctime();
        self.write_inode(&mut i)
    }
}
