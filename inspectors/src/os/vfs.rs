//! The guest's view of its files: a root filesystem plus the filesystems mounted on it
//! (from fstab), with symlinks followed across mounts as the guest would.

use crate::fs::{components, FileKind, FileSystem, FsError, Meta};
use std::rc::Rc;

/// Most symlinks followed in one lookup (as Linux's MAXSYMLINKS).
const MAX_LINKS: usize = 40;

/// A mounted filesystem in the guest view.
#[derive(Clone)]
pub struct Mount {
    pub mountpoint: String,
    pub device: String,
    pub fs: Rc<dyn FileSystem>,
}

/// Root plus mounts, longest mountpoint first.
#[derive(Clone, Default)]
pub struct GuestFs {
    mounts: Vec<Mount>,
}

impl GuestFs {
    /// A view with only the root filesystem.
    pub fn new(root_device: &str, root: Rc<dyn FileSystem>) -> Self {
        GuestFs { mounts: vec![Mount { mountpoint: "/".into(), device: root_device.into(), fs: root }] }
    }

    /// Adds a filesystem at `mountpoint`.
    pub fn mount(&mut self, mountpoint: &str, device: &str, fs: Rc<dyn FileSystem>) {
        let mp = normalize(mountpoint);
        self.mounts.retain(|m| m.mountpoint != mp);
        self.mounts.push(Mount { mountpoint: mp, device: device.into(), fs });
        self.mounts.sort_by_key(|m| std::cmp::Reverse(m.mountpoint.len()));
    }

    /// The filesystem mounted at `/`.
    pub fn root_fs(&self) -> Option<&Rc<dyn FileSystem>> {
        self.mounts.iter().find(|m| m.mountpoint == "/").map(|m| &m.fs)
    }

    /// Mountpoints and devices, shortest mountpoint first.
    pub fn mounts(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self.mounts.iter().map(|m| (m.mountpoint.clone(), m.device.clone())).collect();
        v.sort();
        v
    }

    /// The mount holding `path` (already free of symlinks) and the path inside it.
    fn owner(&self, path: &str) -> Option<(&Mount, String)> {
        self.mounts.iter().find_map(|m| {
            let rest = if m.mountpoint == "/" {
                Some(path)
            } else {
                path.strip_prefix(&m.mountpoint).filter(|r| r.is_empty() || r.starts_with('/'))
            }?;
            Some((m, if rest.is_empty() { "/".to_string() } else { rest.to_string() }))
        })
    }

    fn lookup_exact(&self, path: &str, want: &str) -> Result<Option<(Meta, String)>, FsError> {
        let Some((m, inner)) = self.owner(path) else { return Ok(None) };
        Ok(m.fs.metadata(&inner)?.map(|meta| (meta, want.to_string())))
    }

    /// Resolves symlinks in every component; returns the final real path, or `None` if
    /// some component does not exist.
    pub fn resolve(&self, path: &str) -> Result<Option<String>, FsError> {
        let mut todo: Vec<String> = components(path).rev().map(str::to_string).collect();
        let mut cur = String::new();
        let mut links = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                cur.truncate(cur.rfind('/').unwrap_or(0));
                continue;
            }
            let next = format!("{cur}/{c}");
            let Some((meta, _)) = self.lookup_exact(&next, &c)? else { return Ok(None) };
            if meta.kind == FileKind::Symlink {
                links += 1;
                if links > MAX_LINKS {
                    return Ok(None);
                }
                let (m, inner) = self.owner(&next).ok_or_else(|| FsError::Read {
                    device: String::new(),
                    fstype: "vfs",
                    path: next.clone(),
                    reason: "no filesystem".into(),
                })?;
                let target = m.fs.read_link(&inner)?;
                if target.starts_with('/') {
                    cur.clear();
                }
                todo.extend(components(&target).rev().map(str::to_string));
            } else {
                cur = next;
            }
        }
        Ok(Some(if cur.is_empty() { "/".into() } else { cur }))
    }

    /// Metadata after following symlinks; `None` if missing or unreadable.
    pub fn stat(&self, path: &str) -> Option<Meta> {
        let real = self.resolve(path).ok()??;
        let (m, inner) = self.owner(&real)?;
        m.fs.metadata(&inner).ok()?
    }

    pub fn is_file(&self, path: &str) -> bool {
        self.stat(path).is_some_and(|m| m.kind == FileKind::File)
    }

    pub fn is_dir(&self, path: &str) -> bool {
        self.stat(path).is_some_and(|m| m.kind == FileKind::Dir)
    }

    /// Whether `path` exists as anything (a dangling final symlink counts).
    pub fn exists(&self, path: &str) -> bool {
        self.stat(path).is_some() || self.lstat(path).is_some()
    }

    /// Metadata without following a final symlink.
    pub fn lstat(&self, path: &str) -> Option<Meta> {
        let (parent, name) = path.rsplit_once('/')?;
        let real = self.resolve(if parent.is_empty() { "/" } else { parent }).ok()??;
        let full = if real == "/" { format!("/{name}") } else { format!("{real}/{name}") };
        let (m, inner) = self.owner(&full)?;
        m.fs.metadata(&inner).ok()?
    }

    /// A whole file (following symlinks), refused above `limit` bytes.
    pub fn read(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, FsError> {
        let Some(real) = self.resolve(path)? else { return Ok(None) };
        let Some((m, inner)) = self.owner(&real) else { return Ok(None) };
        m.fs.read_file(&inner, limit).map(Some)
    }

    /// A small text file (64 KiB at most), `None` if missing or unreadable.
    pub fn text(&self, path: &str) -> Option<String> {
        let b = self.read(path, 1 << 20).ok()??;
        Some(String::from_utf8_lossy(&b).into_owned())
    }

    /// The first `max` bytes of a file.
    pub fn head(&self, path: &str, max: u64) -> Option<Vec<u8>> {
        let real = self.resolve(path).ok()??;
        let (m, inner) = self.owner(&real)?;
        m.fs.read_head(&inner, max).ok()
    }

    /// Directory entries (following symlinks), empty if missing.
    pub fn list(&self, path: &str) -> Vec<(String, FileKind)> {
        let Ok(Some(real)) = self.resolve(path) else { return Vec::new() };
        let Some((m, inner)) = self.owner(&real) else { return Vec::new() };
        let mut v = m.fs.read_dir(&inner).unwrap_or_default();
        v.sort();
        v
    }

    /// Finds `name` in directory `dir` ignoring case (Windows paths).
    pub fn find_nocase(&self, dir: &str, name: &str) -> Option<String> {
        self.list(dir).into_iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(n, _)| {
            if dir == "/" {
                format!("/{n}")
            } else {
                format!("{dir}/{n}")
            }
        })
    }
}

fn normalize(p: &str) -> String {
    let c: Vec<&str> = components(p).collect();
    if c.is_empty() {
        "/".into()
    } else {
        format!("/{}", c.join("/"))
    }
}
