//! The file operations guest conversion needs on a guest's root filesystem, with guest-absolute
//! paths (`/etc/fstab`); [`HostDirFs`]: that interface over a directory on the host, confined
//! to it the way a `chroot` would be (tests, unpacked trees); [`MemFs`]: an in-memory guest
//! (fuzzing, planning against a snapshot).
//!
//! Path rules shared by every implementation: paths are absolute, `/`-separated UTF-8; symbolic
//! links in the intermediate components are followed *inside the guest* (an absolute link target
//! starts again at the guest root, `..` never climbs above it). The last component is followed by
//! `read_file`, `write_file`, `read_dir` and the provided `stat`; it is not followed by `lstat`,
//! `read_link`, `symlink`, `unlink`, `rename`, `mkdir`, `set_mode`, `set_owner` and the xattr calls.

mod btrfs;
mod ext4;
mod fat;
mod fs_error;
mod hostdir;
mod mem;
mod xfs;

pub use ext4::Ext4GuestFs;
pub use hostdir::HostDirFs;
pub use mem::MemFs;

use std::collections::VecDeque;

/// How many symbolic links one path resolution may follow (Linux's own limit).
const MAX_SYMLINKS: usize = 40;

/// Errors of guest file operations; each names the guest path.
#[derive(Debug, thiserror::Error)]
pub enum GuestFsError {
    /// The path (or one of its parents) does not exist.
    #[error("{path}: not found")]
    NotFound { path: String },
    /// The path is not absolute, contains a NUL, or is otherwise unusable.
    #[error("{path}: invalid guest path: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    /// Resolving the path followed more than 40 symbolic links.
    #[error("{path}: too many levels of symbolic links")]
    SymlinkLoop { path: String },
    /// The target of `symlink`/`mkdir` already exists.
    #[error("{path}: already exists")]
    AlreadyExists { path: String },
    /// A component used as a directory is not one.
    #[error("{path}: not a directory")]
    NotADirectory { path: String },
    /// Any other I/O failure.
    #[error("{path}: {op}: {source}")]
    Io {
        path: String,
        op: &'static str,
        source: std::io::Error,
    },
    /// The implementation cannot do this (e.g. a filesystem feature it does not write).
    #[error("{path}: {reason}")]
    Unsupported { path: String, reason: String },
}

/// What kind of object a path names (without following a final symlink).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum FileKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Device node, FIFO or socket.
    Other,
}

/// The metadata conversion looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Object kind.
    pub kind: FileKind,
    /// Permission bits (`0o7777` mask).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes (the target's length for a symlink).
    pub size: u64,
}

/// File operations on a mounted guest root. See the module documentation for the path rules.
pub trait GuestFs {
    /// Metadata of `path` itself (a final symlink is not followed); `None` if it does not exist.
    fn lstat(&self, path: &str) -> Result<Option<Stat>, GuestFsError>;
    /// The whole contents of a regular file.
    fn read_file(&self, path: &str) -> Result<Vec<u8>, GuestFsError>;
    /// Replaces a file's contents, creating it with permission bits `mode` (owner root) if it
    /// does not exist; an existing file keeps its mode and owner. The parent must exist.
    fn write_file(&mut self, path: &str, data: &[u8], mode: u32) -> Result<(), GuestFsError>;
    /// The names in a directory, sorted, without `.` and `..`.
    fn read_dir(&self, path: &str) -> Result<Vec<String>, GuestFsError>;
    /// The target of a symbolic link, as stored.
    fn read_link(&self, path: &str) -> Result<String, GuestFsError>;
    /// Creates the symbolic link `path` → `target`; fails if `path` exists.
    fn symlink(&mut self, target: &str, path: &str) -> Result<(), GuestFsError>;
    /// Removes a file or symbolic link (not a directory).
    fn unlink(&mut self, path: &str) -> Result<(), GuestFsError>;
    /// Renames `from` to `to`, replacing a file at `to`.
    fn rename(&mut self, from: &str, to: &str) -> Result<(), GuestFsError>;
    /// Creates one directory; the parent must exist.
    fn mkdir(&mut self, path: &str, mode: u32) -> Result<(), GuestFsError>;
    /// Sets permission bits (`0o7777` mask).
    fn set_mode(&mut self, path: &str, mode: u32) -> Result<(), GuestFsError>;
    /// Sets owner and group.
    fn set_owner(&mut self, path: &str, uid: u32, gid: u32) -> Result<(), GuestFsError>;

    /// The value of extended attribute `name` (`security.selinux`) of `path` itself (a final
    /// symlink is not followed); `None` if it has none, or the implementation keeps none.
    fn get_xattr(&self, path: &str, name: &str) -> Result<Option<Vec<u8>>, GuestFsError> {
        let _ = (path, name);
        Ok(None)
    }
    /// Sets extended attribute `name` of `path` itself to `value`;
    /// [`GuestFsError::Unsupported`] where the filesystem's writer does not write attributes
    /// (the default).
    fn set_xattr(&mut self, path: &str, name: &str, value: &[u8]) -> Result<(), GuestFsError> {
        let _ = value;
        Err(GuestFsError::Unsupported { path: path.into(), reason: format!("extended attribute {name}: not written on this filesystem") })
    }

    /// The guest-absolute path with every symlink resolved inside the guest. Components that do
    /// not exist are kept as written (so a file about to be created has a canonical name too).
    fn canonicalize(&self, path: &str) -> Result<String, GuestFsError> {
        resolve(path, true, |p| match self.lstat(p)? {
            Some(st) if st.kind == FileKind::Symlink => Ok(Some(self.read_link(p)?)),
            _ => Ok(None),
        })
    }
    /// Metadata of what `path` finally names (symlinks followed); `None` if absent or dangling.
    fn stat(&self, path: &str) -> Result<Option<Stat>, GuestFsError> {
        self.lstat(&self.canonicalize(path)?)
    }
    /// Whether `path` exists (following symlinks).
    fn exists(&self, path: &str) -> Result<bool, GuestFsError> {
        Ok(self.stat(path)?.is_some())
    }
    /// Whether `path` is a directory (following symlinks).
    fn is_dir(&self, path: &str) -> Result<bool, GuestFsError> {
        Ok(matches!(
            self.stat(path)?,
            Some(Stat {
                kind: FileKind::Dir,
                ..
            })
        ))
    }
    /// Whether `path` is a regular file (following symlinks).
    fn is_file(&self, path: &str) -> Result<bool, GuestFsError> {
        Ok(matches!(
            self.stat(path)?,
            Some(Stat {
                kind: FileKind::File,
                ..
            })
        ))
    }
    /// Creates `path` and its missing parents with permission bits `mode`.
    fn mkdir_p(&mut self, path: &str, mode: u32) -> Result<(), GuestFsError> {
        let canon = self.canonicalize(path)?;
        let mut cur = String::new();
        for comp in canon.split('/').filter(|c| !c.is_empty()) {
            cur.push('/');
            cur.push_str(comp);
            match self.lstat(&cur)? {
                Some(Stat {
                    kind: FileKind::Dir,
                    ..
                }) => {}
                Some(_) => return Err(GuestFsError::NotADirectory { path: cur }),
                None => self.mkdir(&cur, mode)?,
            }
        }
        Ok(())
    }
}

/// Splits a guest path into components, rejecting relative paths and NULs.
fn components(path: &str) -> Result<VecDeque<String>, GuestFsError> {
    if !path.starts_with('/') {
        return Err(GuestFsError::InvalidPath {
            path: path.into(),
            reason: "not absolute",
        });
    }
    if path.contains('\0') {
        return Err(GuestFsError::InvalidPath {
            path: path.into(),
            reason: "contains NUL",
        });
    }
    Ok(path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_owned)
        .collect())
}

/// Resolves `path` inside the guest to its canonical form: `link_of(canonical)` returns the
/// target if that exact canonical path is a symlink (`None` otherwise, also when it does not
/// exist). `..` stops at the root; absolute targets restart at the root; more than 40 links is
/// [`GuestFsError::SymlinkLoop`]. Every [`GuestFs`] implementation can resolve paths with it
/// (`HostDirFs` and `MemFs` do), so they all follow the same rules.
pub fn resolve<F>(path: &str, follow_last: bool, link_of: F) -> Result<String, GuestFsError>
where
    F: Fn(&str) -> Result<Option<String>, GuestFsError>,
{
    let mut queue = components(path)?;
    let mut stack: Vec<String> = Vec::new();
    let mut followed = 0usize;
    while let Some(comp) = queue.pop_front() {
        if comp == ".." {
            stack.pop();
            continue;
        }
        let candidate = format!(
            "/{}",
            stack
                .iter()
                .chain([&comp])
                .cloned()
                .collect::<Vec<_>>()
                .join("/")
        );
        if !queue.is_empty() || follow_last {
            if let Some(target) = link_of(&candidate)? {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(GuestFsError::SymlinkLoop { path: path.into() });
                }
                if target.contains('\0') {
                    return Err(GuestFsError::InvalidPath {
                        path: candidate,
                        reason: "symlink target contains NUL",
                    });
                }
                if target.starts_with('/') {
                    stack.clear();
                }
                for c in target
                    .split('/')
                    .filter(|c| !c.is_empty() && *c != ".")
                    .rev()
                {
                    queue.push_front(c.to_owned());
                }
                continue;
            }
        }
        stack.push(comp);
    }
    Ok(format!("/{}", stack.join("/")))
}
