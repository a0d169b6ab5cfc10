//! The [`GuestFs`](super::GuestFs) operations on an XFS filesystem, for
//! [`Ext4GuestFs`](super::Ext4GuestFs)'s XFS mounts. Reads cover everything; edits are those
//! the XFS writer does (chmod, chown, rewriting, growing and creating files, mkdir, symlink,
//! unlink, rename, an xattr that fits the inode, on rmapbt and reflink filesystems too); what
//! it refuses (xattrs in attribute blocks, CoW staging leftovers, ...) comes back as
//! [`GuestFsError::Unsupported`] naming it.

use super::{FileKind, GuestFsError, Stat};
use crate::fs::xfs::{FileKind as XfsKind, Xfs};
use super::fs_error::{fs_err, not_found};
use crate::fs::FsError;

fn err(path: &str, op: &'static str, e: FsError) -> GuestFsError {
    fs_err(path, op, e, "not a valid file name on XFS")
}

fn kind_of(k: XfsKind) -> FileKind {
    match k {
        XfsKind::Regular => FileKind::File,
        XfsKind::Directory => FileKind::Dir,
        XfsKind::Symlink => FileKind::Symlink,
        XfsKind::Other => FileKind::Other,
    }
}

pub fn lstat(fs: &Xfs, inner: &str, canon: &str) -> Result<Option<Stat>, GuestFsError> {
    match fs.symlink_metadata(inner) {
        Ok(md) => Ok(Some(Stat { kind: kind_of(md.kind), mode: u32::from(md.perm), uid: md.uid, gid: md.gid, size: md.size })),
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(err(canon, "lstat", e)),
    }
}

/// The target if `inner` is a symlink, for path resolution.
pub fn link_of(fs: &Xfs, inner: &str, canon: &str) -> Result<Option<String>, GuestFsError> {
    match fs.symlink_metadata(inner) {
        Ok(md) if md.kind == XfsKind::Symlink => {
            let t = fs.read_link(inner).map_err(|e| err(canon, "readlink", e))?;
            Ok(Some(String::from_utf8_lossy(&t).into_owned()))
        }
        Ok(_) => Ok(None),
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(err(canon, "lstat", e)),
    }
}

pub fn read_file(fs: &Xfs, inner: &str, canon: &str, max: u64) -> Result<Vec<u8>, GuestFsError> {
    fs.read_file(inner, max).map_err(|e| err(canon, "read", e))
}

pub fn read_dir(fs: &Xfs, inner: &str, canon: &str) -> Result<Vec<String>, GuestFsError> {
    let mut names: Vec<String> = fs
        .read_dir(inner)
        .map_err(|e| err(canon, "read directory", e))?
        .into_iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect();
    names.sort();
    Ok(names)
}

pub fn read_link(fs: &Xfs, inner: &str, canon: &str) -> Result<String, GuestFsError> {
    let t = fs.read_link(inner).map_err(|e| err(canon, "readlink", e))?;
    Ok(String::from_utf8_lossy(&t).into_owned())
}

pub fn write_file(fs: &mut Xfs, inner: &str, canon: &str, data: &[u8], mode: u32) -> Result<(), GuestFsError> {
    if lstat(fs, inner, canon)?.is_none() {
        return fs.create_file(inner, data, (mode & 0o7777) as u16, 0, 0).map_err(|e| err(canon, "create", e));
    }
    fs.write_file(inner, data).map_err(|e| err(canon, "write", e))
}

pub fn mkdir(fs: &mut Xfs, inner: &str, canon: &str, mode: u32) -> Result<(), GuestFsError> {
    fs.mkdir(inner, (mode & 0o7777) as u16, 0, 0).map_err(|e| err(canon, "mkdir", e))
}

pub fn symlink(fs: &mut Xfs, target: &str, inner: &str, canon: &str) -> Result<(), GuestFsError> {
    fs.symlink(inner, target.as_bytes(), 0, 0).map_err(|e| err(canon, "symlink", e))
}

pub fn unlink(fs: &mut Xfs, inner: &str, canon: &str) -> Result<(), GuestFsError> {
    fs.unlink(inner).map_err(|e| err(canon, "unlink", e))
}

pub fn rename(fs: &mut Xfs, from: &str, to: &str, canon: &str) -> Result<(), GuestFsError> {
    fs.rename(from, to).map_err(|e| err(canon, "rename", e))
}

pub fn set_mode(fs: &mut Xfs, inner: &str, canon: &str, mode: u32) -> Result<(), GuestFsError> {
    fs.set_mode(inner, (mode & 0o7777) as u16).map_err(|e| err(canon, "chmod", e))
}

pub fn set_owner(fs: &mut Xfs, inner: &str, canon: &str, uid: u32, gid: u32) -> Result<(), GuestFsError> {
    fs.set_owner(inner, uid, gid).map_err(|e| err(canon, "chown", e))
}

pub fn get_xattr(fs: &Xfs, inner: &str, canon: &str, name: &str) -> Result<Option<Vec<u8>>, GuestFsError> {
    fs.get_xattr(inner, name).map_err(|e| err(canon, "getxattr", e))
}

pub fn set_xattr(fs: &mut Xfs, inner: &str, canon: &str, name: &str, value: &[u8]) -> Result<(), GuestFsError> {
    fs.set_xattr(inner, name, value).map_err(|e| err(canon, "setxattr", e))
}
