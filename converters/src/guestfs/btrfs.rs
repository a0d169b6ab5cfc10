//! The [`GuestFs`](super::GuestFs) operations on a btrfs subvolume view, for
//! [`Ext4GuestFs`](super::Ext4GuestFs)'s btrfs mounts: everything the conversion reads and
//! edits; what the writer refuses (a subvolume sharing blocks with snapshots, ...) comes back
//! as [`GuestFsError::Unsupported`] naming it.

use super::{FileKind, GuestFsError, Stat};
use crate::fs::btrfs::Btrfs;
use super::fs_error::{fs_err, not_found};
use crate::fs::FsError;

fn err(path: &str, op: &'static str, e: FsError) -> GuestFsError {
    fs_err(path, op, e, "not a valid file name on btrfs")
}

fn kind_of(mode: u32) -> FileKind {
    match mode & 0o170_000 {
        0o100_000 => FileKind::File,
        0o040_000 => FileKind::Dir,
        0o120_000 => FileKind::Symlink,
        _ => FileKind::Other,
    }
}

pub fn lstat(fs: &Btrfs, inner: &str, canon: &str) -> Result<Option<Stat>, GuestFsError> {
    match fs.symlink_metadata(inner) {
        Ok(md) => Ok(Some(Stat { kind: kind_of(md.mode), mode: md.mode & 0o7777, uid: md.uid, gid: md.gid, size: md.size })),
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(err(canon, "lstat", e)),
    }
}

/// The target if `inner` is a symlink, for path resolution.
pub fn link_of(fs: &Btrfs, inner: &str, canon: &str) -> Result<Option<String>, GuestFsError> {
    match lstat(fs, inner, canon)? {
        Some(st) if st.kind == FileKind::Symlink => Ok(Some(read_link(fs, inner, canon)?)),
        _ => Ok(None),
    }
}

pub fn read_file(fs: &Btrfs, inner: &str, canon: &str, max: u64) -> Result<Vec<u8>, GuestFsError> {
    fs.read_file(inner, max).map_err(|e| err(canon, "read", e))
}

pub fn read_dir(fs: &Btrfs, inner: &str, canon: &str) -> Result<Vec<String>, GuestFsError> {
    let mut names: Vec<String> = fs.read_dir(inner).map_err(|e| err(canon, "read directory", e))?.into_iter().map(|n| String::from_utf8_lossy(&n).into_owned()).collect();
    names.sort();
    Ok(names)
}

pub fn read_link(fs: &Btrfs, inner: &str, canon: &str) -> Result<String, GuestFsError> {
    let t = fs.read_link(inner).map_err(|e| err(canon, "readlink", e))?;
    Ok(String::from_utf8_lossy(&t).into_owned())
}

pub fn write_file(fs: &mut Btrfs, inner: &str, canon: &str, data: &[u8], mode: u32) -> Result<(), GuestFsError> {
    if lstat(fs, inner, canon)?.is_none() {
        return fs.create_file(inner, data, mode & 0o7777, 0, 0).map_err(|e| err(canon, "create", e));
    }
    fs.write_file(inner, data).map_err(|e| err(canon, "write", e))
}

pub fn mkdir(fs: &mut Btrfs, inner: &str, canon: &str, mode: u32) -> Result<(), GuestFsError> {
    fs.mkdir(inner, mode & 0o7777, 0, 0).map_err(|e| err(canon, "mkdir", e))
}

pub fn symlink(fs: &mut Btrfs, target: &str, inner: &str, canon: &str) -> Result<(), GuestFsError> {
    fs.symlink(inner, target.as_bytes(), 0, 0).map_err(|e| err(canon, "symlink", e))
}

pub fn unlink(fs: &mut Btrfs, inner: &str, canon: &str) -> Result<(), GuestFsError> {
    fs.unlink(inner).map_err(|e| err(canon, "unlink", e))
}

pub fn rename(fs: &mut Btrfs, from: &str, to: &str, canon: &str) -> Result<(), GuestFsError> {
    fs.rename(from, to).map_err(|e| err(canon, "rename", e))
}

pub fn set_mode(fs: &mut Btrfs, inner: &str, canon: &str, mode: u32) -> Result<(), GuestFsError> {
    fs.set_mode(inner, mode & 0o7777).map_err(|e| err(canon, "chmod", e))
}

pub fn set_owner(fs: &mut Btrfs, inner: &str, canon: &str, uid: u32, gid: u32) -> Result<(), GuestFsError> {
    fs.set_owner(inner, uid, gid).map_err(|e| err(canon, "chown", e))
}

pub fn get_xattr(fs: &Btrfs, inner: &str, canon: &str, name: &str) -> Result<Option<Vec<u8>>, GuestFsError> {
    fs.get_xattr(inner, name).map_err(|e| err(canon, "getxattr", e))
}

pub fn set_xattr(fs: &mut Btrfs, inner: &str, canon: &str, name: &str, value: &[u8]) -> Result<(), GuestFsError> {
    fs.set_xattr(inner, name, value).map_err(|e| err(canon, "setxattr", e))
}
