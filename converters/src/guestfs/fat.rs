//! The [`GuestFs`](super::GuestFs) operations on a FAT filesystem (the EFI system partition
//! mounted at `/boot/efi`), for [`Ext4GuestFs`](super::Ext4GuestFs)'s FAT mounts. FAT has no
//! symbolic links, owners or permission bits: files read as mode 0644 and directories 0755,
//! owned by root (what `mount -t vfat` shows by default), and the operations that would
//! change those are refused. Names are matched case-insensitively, as the kernel does.

use super::{FileKind, GuestFsError, Stat};
use crate::fs::fat::{Fat, VolumeStream};
use crate::fs::FsError;

type Dir<'b, 'a> = fatfs::Dir<'b, VolumeStream<'a>>;

fn io(path: &str, op: &'static str, e: impl std::fmt::Display) -> GuestFsError {
    GuestFsError::Io { path: path.into(), op, source: std::io::Error::other(e.to_string()) }
}

fn fs_err(path: &str, op: &'static str, e: FsError) -> GuestFsError {
    io(path, op, e)
}

/// `inner` (absolute within the filesystem) as fatfs's relative path.
fn rel(inner: &str) -> &str {
    inner.trim_matches('/')
}

/// The parent directory of `inner` and the last component (`None` for the root).
fn split(inner: &str) -> (&str, Option<&str>) {
    match rel(inner).rsplit_once('/') {
        Some((dir, name)) => (dir, Some(name)),
        None if rel(inner).is_empty() => ("", None),
        None => ("", Some(rel(inner))),
    }
}

fn open_dir<'b, 'a>(fat: &'b Fat<'a>, dir: &str, canon: &str) -> Result<Option<Dir<'b, 'a>>, GuestFsError> {
    let root = fat.fs().root_dir();
    if dir.is_empty() {
        return Ok(Some(root));
    }
    match root.open_dir(dir) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(canon, "open directory", e)),
    }
}

/// Metadata of `inner`; `None` if it (or its parent) does not exist.
pub fn lstat(fat: &Fat, inner: &str, canon: &str) -> Result<Option<Stat>, GuestFsError> {
    let dir_stat = Stat { kind: FileKind::Dir, mode: 0o755, uid: 0, gid: 0, size: 0 };
    let (dir, Some(name)) = split(inner) else { return Ok(Some(dir_stat)) };
    let Some(d) = open_dir(fat, dir, canon)? else { return Ok(None) };
    for e in d.iter() {
        let e = e.map_err(|e| io(canon, "read directory", e))?;
        if e.file_name().eq_ignore_ascii_case(name) {
            return Ok(Some(match e.is_dir() {
                true => dir_stat,
                false => Stat { kind: FileKind::File, mode: 0o644, uid: 0, gid: 0, size: e.len() },
            }));
        }
    }
    Ok(None)
}

fn must_exist(fat: &Fat, inner: &str, canon: &str) -> Result<Stat, GuestFsError> {
    lstat(fat, inner, canon)?.ok_or_else(|| GuestFsError::NotFound { path: canon.into() })
}

pub fn read_file(fat: &Fat, inner: &str, canon: &str, max: u64) -> Result<Vec<u8>, GuestFsError> {
    must_exist(fat, inner, canon)?;
    fat.read_file(inner, max).map_err(|e| fs_err(canon, "read", e))
}

pub fn write_file(fat: &Fat, inner: &str, canon: &str, data: &[u8]) -> Result<(), GuestFsError> {
    let (dir, _) = split(inner);
    if lstat(fat, &format!("/{dir}"), canon)?.is_none_or(|s| s.kind != FileKind::Dir) {
        return Err(GuestFsError::NotFound { path: canon.into() });
    }
    fat.write_file(inner, data).map_err(|e| fs_err(canon, "write", e))
}

pub fn read_dir(fat: &Fat, inner: &str, canon: &str) -> Result<Vec<String>, GuestFsError> {
    if must_exist(fat, inner, canon)?.kind != FileKind::Dir {
        return Err(GuestFsError::NotADirectory { path: canon.into() });
    }
    let Some(d) = open_dir(fat, rel(inner), canon)? else {
        return Err(GuestFsError::NotFound { path: canon.into() });
    };
    let mut names = Vec::new();
    for e in d.iter() {
        let name = e.map_err(|e| io(canon, "read directory", e))?.file_name();
        if name != "." && name != ".." {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

pub fn unlink(fat: &Fat, inner: &str, canon: &str) -> Result<(), GuestFsError> {
    if must_exist(fat, inner, canon)?.kind == FileKind::Dir {
        return Err(GuestFsError::Unsupported { path: canon.into(), reason: "is a directory".into() });
    }
    fat.remove(inner).map_err(|e| fs_err(canon, "unlink", e))
}

pub fn rename(fat: &Fat, from: &str, to: &str, canon: &str) -> Result<(), GuestFsError> {
    must_exist(fat, from, canon)?;
    let (to_dir, Some(to_name)) = split(to) else {
        return Err(GuestFsError::InvalidPath { path: canon.into(), reason: "cannot rename onto the root" });
    };
    let dst = open_dir(fat, to_dir, canon)?.ok_or_else(|| GuestFsError::NotFound { path: canon.into() })?;
    if lstat(fat, to, canon)?.is_some_and(|s| s.kind == FileKind::File) {
        fat.remove(to).map_err(|e| fs_err(canon, "rename", e))?;
    }
    fat.fs().root_dir().rename(rel(from), &dst, to_name).map_err(|e| io(canon, "rename", e))
}

pub fn mkdir(fat: &Fat, inner: &str, canon: &str) -> Result<(), GuestFsError> {
    if lstat(fat, inner, canon)?.is_some() {
        return Err(GuestFsError::AlreadyExists { path: canon.into() });
    }
    let (dir, _) = split(inner);
    if lstat(fat, &format!("/{dir}"), canon)?.is_none_or(|s| s.kind != FileKind::Dir) {
        return Err(GuestFsError::NotFound { path: canon.into() });
    }
    fat.create_dir_all(inner).map_err(|e| fs_err(canon, "mkdir", e))
}

/// Symbolic links, owners and modes do not exist on FAT.
pub fn unsupported(canon: &str, what: &str) -> GuestFsError {
    GuestFsError::Unsupported { path: canon.into(), reason: format!("FAT filesystems have no {what}") }
}
