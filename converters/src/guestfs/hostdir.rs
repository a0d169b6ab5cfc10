//! [`HostDirFs`]: a host directory standing for the guest's root.

use super::{resolve, FileKind, GuestFs, GuestFsError, Stat};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// [`GuestFs`] over a host directory that stands for the guest's `/`. Every path is resolved
/// inside `root` (symlinks included), so no operation can reach outside it.
#[derive(Debug, Clone)]
pub struct HostDirFs {
    root: PathBuf,
}

impl HostDirFs {
    /// A guest view of the host directory `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HostDirFs { root: root.into() }
    }

    /// The host directory standing for the guest root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn host_of_canonical(&self, canon: &str) -> PathBuf {
        self.root.join(canon.trim_start_matches('/'))
    }

    /// The host path for `path`, following (or not) the final component.
    fn host(&self, path: &str, follow_last: bool) -> Result<(String, PathBuf), GuestFsError> {
        let canon = resolve(path, follow_last, |p| {
            let host = self.host_of_canonical(p);
            match std::fs::symlink_metadata(&host) {
                Ok(md) if md.file_type().is_symlink() => {
                    let t = std::fs::read_link(&host).map_err(|e| io_err(p, "readlink", e))?;
                    Ok(Some(t.to_string_lossy().into_owned()))
                }
                _ => Ok(None),
            }
        })?;
        let host = self.host_of_canonical(&canon);
        Ok((canon, host))
    }
}

fn io_err(path: &str, op: &'static str, e: std::io::Error) -> GuestFsError {
    match e.kind() {
        std::io::ErrorKind::NotFound => GuestFsError::NotFound { path: path.into() },
        std::io::ErrorKind::AlreadyExists => GuestFsError::AlreadyExists { path: path.into() },
        _ => GuestFsError::Io {
            path: path.into(),
            op,
            source: e,
        },
    }
}

impl GuestFs for HostDirFs {
    fn lstat(&self, path: &str) -> Result<Option<Stat>, GuestFsError> {
        let (_, host) = self.host(path, false)?;
        let md = match std::fs::symlink_metadata(&host) {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc_enotdir()) => return Ok(None),
            Err(e) => return Err(io_err(path, "lstat", e)),
        };
        let ft = md.file_type();
        let kind = if ft.is_symlink() {
            FileKind::Symlink
        } else if ft.is_dir() {
            FileKind::Dir
        } else if ft.is_file() {
            FileKind::File
        } else {
            FileKind::Other
        };
        Ok(Some(Stat {
            kind,
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            size: md.len(),
        }))
    }

    fn read_file(&self, path: &str) -> Result<Vec<u8>, GuestFsError> {
        let (_, host) = self.host(path, true)?;
        std::fs::read(host).map_err(|e| io_err(path, "read", e))
    }

    fn write_file(&mut self, path: &str, data: &[u8], mode: u32) -> Result<(), GuestFsError> {
        let (canon, host) = self.host(path, true)?;
        let existing = std::fs::metadata(&host).ok();
        let parent = host.parent().ok_or(GuestFsError::InvalidPath {
            path: path.into(),
            reason: "is the root",
        })?;
        // Write a temporary sibling, then rename it over the file: readers never see half a file.
        // (No fsync: a host directory standing for a guest is scratch space, not a durable store.)
        let mut tmp = tempfile_in(parent, &canon)?;
        tmp.1
            .write_all(data)
            .map_err(|e| io_err(path, "write", e))?;
        let perm = existing
            .as_ref()
            .map_or(mode & 0o7777, |m| m.mode() & 0o7777);
        std::fs::set_permissions(&tmp.0, std::fs::Permissions::from_mode(perm))
            .map_err(|e| io_err(path, "chmod", e))?;
        if let Some(md) = &existing {
            // Keeping the owner needs privileges; without them the file stays the writer's.
            let _ = std::os::unix::fs::chown(&tmp.0, Some(md.uid()), Some(md.gid()));
        }
        std::fs::rename(&tmp.0, &host).map_err(|e| {
            let _ = std::fs::remove_file(&tmp.0);
            io_err(path, "rename", e)
        })
    }

    fn read_dir(&self, path: &str) -> Result<Vec<String>, GuestFsError> {
        let (_, host) = self.host(path, true)?;
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&host).map_err(|e| io_err(path, "readdir", e))? {
            let entry = entry.map_err(|e| io_err(path, "readdir", e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn read_link(&self, path: &str) -> Result<String, GuestFsError> {
        let (_, host) = self.host(path, false)?;
        let t = std::fs::read_link(host).map_err(|e| io_err(path, "readlink", e))?;
        Ok(t.to_string_lossy().into_owned())
    }

    fn symlink(&mut self, target: &str, path: &str) -> Result<(), GuestFsError> {
        if target.contains('\0') {
            return Err(GuestFsError::InvalidPath {
                path: target.into(),
                reason: "contains NUL",
            });
        }
        let (_, host) = self.host(path, false)?;
        std::os::unix::fs::symlink(target, host).map_err(|e| io_err(path, "symlink", e))
    }

    fn unlink(&mut self, path: &str) -> Result<(), GuestFsError> {
        let (_, host) = self.host(path, false)?;
        std::fs::remove_file(host).map_err(|e| io_err(path, "unlink", e))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), GuestFsError> {
        let (_, h_from) = self.host(from, false)?;
        let (_, h_to) = self.host(to, false)?;
        std::fs::rename(h_from, h_to).map_err(|e| io_err(from, "rename", e))
    }

    fn mkdir(&mut self, path: &str, mode: u32) -> Result<(), GuestFsError> {
        let (_, host) = self.host(path, false)?;
        std::fs::create_dir(&host).map_err(|e| io_err(path, "mkdir", e))?;
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| io_err(path, "chmod", e))
    }

    fn set_mode(&mut self, path: &str, mode: u32) -> Result<(), GuestFsError> {
        let (_, host) = self.host(path, false)?;
        std::fs::set_permissions(host, std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| io_err(path, "chmod", e))
    }

    fn set_owner(&mut self, path: &str, uid: u32, gid: u32) -> Result<(), GuestFsError> {
        let (_, host) = self.host(path, false)?;
        std::os::unix::fs::lchown(host, Some(uid), Some(gid)).map_err(|e| io_err(path, "chown", e))
    }
}

const fn libc_enotdir() -> i32 {
    20 // ENOTDIR on Linux
}

/// Creates a new uniquely named file next to the target (no extra dependency needed).
fn tempfile_in(dir: &Path, guest: &str) -> Result<(PathBuf, std::fs::File), GuestFsError> {
    for n in 0..1000u32 {
        let p = dir.join(format!(".ferry-tmp-{}-{n}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(guest, "create", e)),
        }
    }
    Err(GuestFsError::Unsupported {
        path: guest.into(),
        reason: "no free temporary name".into(),
    })
}
