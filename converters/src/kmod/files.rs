//! Read access to a guest's files, whatever holds them (a host directory in tests, the ext4
//! reader of the guest's disk in conversions).

use std::io;
use std::path::{Component, Path, PathBuf};

/// Read-only access to the files of a guest, by absolute guest path (`/lib/modules/...`).
/// Symbolic links are followed inside the guest, never out of it.
pub trait GuestFiles {
    /// Reads a whole regular file; fails with `InvalidData` if it is larger than `limit` bytes.
    fn read(&self, path: &str, limit: u64) -> io::Result<Vec<u8>>;
    /// Whether the path exists (after following links).
    fn exists(&self, path: &str) -> bool;
    /// The names in a directory, unsorted.
    fn list(&self, dir: &str) -> io::Result<Vec<String>>;
}

/// A guest tree unpacked in a host directory.
#[derive(Debug, Clone)]
pub struct HostDir {
    root: PathBuf,
}

/// Link hops allowed while resolving one path (Linux's own limit).
const MAX_LINKS: usize = 40;

impl HostDir {
    /// The guest whose `/` is `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HostDir { root: root.into() }
    }

    /// Maps a guest path to a host path, resolving every symbolic link against the guest root.
    pub fn resolve(&self, guest_path: &str) -> io::Result<PathBuf> {
        let mut todo: Vec<String> = components(guest_path).into_iter().rev().collect();
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = todo.pop() {
            if part == ".." {
                done.pop();
                continue;
            }
            let mut host = self.root.clone();
            host.extend(&done);
            host.push(&part);
            match std::fs::symlink_metadata(&host) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_LINKS {
                        return Err(io::Error::other(format!("{guest_path}: too many levels of symbolic links")));
                    }
                    let target = std::fs::read_link(&host)?;
                    let target = target.to_string_lossy();
                    if target.starts_with('/') {
                        done.clear();
                    }
                    todo.extend(components(&target).into_iter().rev());
                }
                _ => done.push(part),
            }
        }
        let mut host = self.root.clone();
        host.extend(&done);
        Ok(host)
    }
}

fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect()
}

impl GuestFiles for HostDir {
    fn read(&self, path: &str, limit: u64) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let file = std::fs::File::open(self.resolve(path)?)?;
        let len = file.metadata()?.len();
        if len > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{path}: {len} bytes is more than the {limit} allowed"),
            ));
        }
        let mut data = Vec::with_capacity(len as usize);
        file.take(limit).read_to_end(&mut data)?;
        Ok(data)
    }

    fn exists(&self, path: &str) -> bool {
        self.resolve(path).map(|p| p.exists()).unwrap_or(false)
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        std::fs::read_dir(self.resolve(dir)?)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_stay_inside_the_guest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/lib/modules")).unwrap();
        std::fs::write(root.join("usr/lib/modules/x"), b"hi").unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
        std::os::unix::fs::symlink("/etc/../../../lib", root.join("abs")).unwrap();
        let g = HostDir::new(root);
        assert_eq!(g.read("/lib/modules/x", 10).unwrap(), b"hi");
        assert_eq!(g.read("/abs/modules/x", 10).unwrap(), b"hi");
        assert!(g.read("/lib/modules/x", 1).is_err());
        assert!(!g.exists("/lib/modules/y"));
        assert_eq!(g.list("/lib/modules").unwrap(), vec!["x".to_string()]);
    }
}
