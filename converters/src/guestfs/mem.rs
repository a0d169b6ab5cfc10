//! [`MemFs`]: a guest filesystem held in memory, with the same path rules as every
//! [`GuestFs`] (symlinks resolved inside the guest).

use super::{resolve, FileKind, GuestFs, GuestFsError, Stat};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    File(Vec<u8>),
    Dir,
    Symlink(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    node: Node,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// An in-memory guest filesystem: canonical path → file, directory or symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemFs {
    entries: BTreeMap<String, Entry>,
}

impl Default for MemFs {
    fn default() -> Self {
        Self::new()
    }
}

fn parent_of(canon: &str) -> &str {
    match canon.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &canon[..i],
    }
}

fn child_prefix(dir: &str) -> String {
    if dir == "/" {
        "/".to_owned()
    } else {
        format!("{dir}/")
    }
}

impl MemFs {
    /// An empty guest: just `/`.
    pub fn new() -> Self {
        let mut entries = BTreeMap::new();
        entries.insert(
            "/".to_owned(),
            Entry {
                node: Node::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
            },
        );
        MemFs { entries }
    }

    fn canon(&self, path: &str, follow_last: bool) -> Result<String, GuestFsError> {
        resolve(path, follow_last, |p| match self.entries.get(p) {
            Some(Entry {
                node: Node::Symlink(t),
                ..
            }) => Ok(Some(t.clone())),
            _ => Ok(None),
        })
    }

    /// Checks that the parent of a new entry is an existing directory.
    fn parent_dir(&self, canon: &str, path: &str) -> Result<(), GuestFsError> {
        match self.entries.get(parent_of(canon)) {
            Some(Entry {
                node: Node::Dir, ..
            }) => Ok(()),
            Some(_) => Err(GuestFsError::NotADirectory { path: path.into() }),
            None => Err(GuestFsError::NotFound { path: path.into() }),
        }
    }

    fn insert_new(
        &mut self,
        canon: String,
        path: &str,
        node: Node,
        mode: u32,
    ) -> Result<(), GuestFsError> {
        if canon == "/" || self.entries.contains_key(&canon) {
            return Err(GuestFsError::AlreadyExists { path: path.into() });
        }
        self.parent_dir(&canon, path)?;
        self.entries.insert(
            canon,
            Entry {
                node,
                mode: mode & 0o7777,
                uid: 0,
                gid: 0,
            },
        );
        Ok(())
    }

    fn entry_mut(&mut self, path: &str, follow_last: bool) -> Result<&mut Entry, GuestFsError> {
        let canon = self.canon(path, follow_last)?;
        self.entries
            .get_mut(&canon)
            .ok_or_else(|| GuestFsError::NotFound { path: path.into() })
    }
}

impl GuestFs for MemFs {
    fn lstat(&self, path: &str) -> Result<Option<Stat>, GuestFsError> {
        let canon = self.canon(path, false)?;
        Ok(self.entries.get(&canon).map(|e| {
            let (kind, size) = match &e.node {
                Node::File(d) => (FileKind::File, d.len() as u64),
                Node::Dir => (FileKind::Dir, 0),
                Node::Symlink(t) => (FileKind::Symlink, t.len() as u64),
            };
            Stat {
                kind,
                mode: e.mode,
                uid: e.uid,
                gid: e.gid,
                size,
            }
        }))
    }

    fn read_file(&self, path: &str) -> Result<Vec<u8>, GuestFsError> {
        let canon = self.canon(path, true)?;
        match self.entries.get(&canon) {
            Some(Entry {
                node: Node::File(d),
                ..
            }) => Ok(d.clone()),
            Some(_) => Err(GuestFsError::Unsupported {
                path: path.into(),
                reason: "not a regular file".into(),
            }),
            None => Err(GuestFsError::NotFound { path: path.into() }),
        }
    }

    fn write_file(&mut self, path: &str, data: &[u8], mode: u32) -> Result<(), GuestFsError> {
        let canon = self.canon(path, true)?;
        match self.entries.get_mut(&canon) {
            Some(Entry {
                node: Node::File(d),
                ..
            }) => {
                *d = data.to_vec();
                Ok(())
            }
            Some(_) => Err(GuestFsError::Unsupported {
                path: path.into(),
                reason: "not a regular file".into(),
            }),
            None => self.insert_new(canon, path, Node::File(data.to_vec()), mode),
        }
    }

    fn read_dir(&self, path: &str) -> Result<Vec<String>, GuestFsError> {
        let canon = self.canon(path, true)?;
        match self.entries.get(&canon) {
            Some(Entry {
                node: Node::Dir, ..
            }) => {}
            Some(_) => return Err(GuestFsError::NotADirectory { path: path.into() }),
            None => return Err(GuestFsError::NotFound { path: path.into() }),
        }
        let prefix = child_prefix(&canon);
        Ok(self
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| k.strip_prefix(&prefix))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .map(str::to_owned)
            .collect())
    }

    fn read_link(&self, path: &str) -> Result<String, GuestFsError> {
        let canon = self.canon(path, false)?;
        match self.entries.get(&canon) {
            Some(Entry {
                node: Node::Symlink(t),
                ..
            }) => Ok(t.clone()),
            Some(_) => Err(GuestFsError::Unsupported {
                path: path.into(),
                reason: "not a symbolic link".into(),
            }),
            None => Err(GuestFsError::NotFound { path: path.into() }),
        }
    }

    fn symlink(&mut self, target: &str, path: &str) -> Result<(), GuestFsError> {
        let canon = self.canon(path, false)?;
        self.insert_new(canon, path, Node::Symlink(target.to_owned()), 0o777)
    }

    fn unlink(&mut self, path: &str) -> Result<(), GuestFsError> {
        let canon = self.canon(path, false)?;
        match self.entries.get(&canon) {
            Some(Entry {
                node: Node::Dir, ..
            }) => Err(GuestFsError::Unsupported {
                path: path.into(),
                reason: "is a directory".into(),
            }),
            Some(_) => {
                self.entries.remove(&canon);
                Ok(())
            }
            None => Err(GuestFsError::NotFound { path: path.into() }),
        }
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), GuestFsError> {
        let src = self.canon(from, false)?;
        let dst = self.canon(to, false)?;
        let Some(entry) = self.entries.get(&src).cloned() else {
            return Err(GuestFsError::NotFound { path: from.into() });
        };
        if src == "/" || dst.starts_with(&child_prefix(&src)) {
            return Err(GuestFsError::Unsupported {
                path: from.into(),
                reason: format!("cannot move into itself ({to})"),
            });
        }
        if src == dst {
            return Ok(());
        }
        match self.entries.get(&dst) {
            Some(Entry {
                node: Node::Dir, ..
            }) => return Err(GuestFsError::AlreadyExists { path: to.into() }),
            Some(_) if entry.node == Node::Dir => {
                return Err(GuestFsError::NotADirectory { path: to.into() })
            }
            _ => {}
        }
        self.parent_dir(&dst, to)?;
        // Move the entry and, for a directory, everything under it.
        let prefix = child_prefix(&src);
        let moved: Vec<String> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in moved {
            if let Some(e) = self.entries.remove(&k) {
                self.entries.insert(
                    format!("{}/{}", dst.trim_end_matches('/'), &k[prefix.len()..]),
                    e,
                );
            }
        }
        self.entries.remove(&src);
        self.entries.insert(dst, entry);
        Ok(())
    }

    fn mkdir(&mut self, path: &str, mode: u32) -> Result<(), GuestFsError> {
        let canon = self.canon(path, false)?;
        self.insert_new(canon, path, Node::Dir, mode)
    }

    fn set_mode(&mut self, path: &str, mode: u32) -> Result<(), GuestFsError> {
        self.entry_mut(path, false)?.mode = mode & 0o7777;
        Ok(())
    }

    fn set_owner(&mut self, path: &str, uid: u32, gid: u32) -> Result<(), GuestFsError> {
        let e = self.entry_mut(path, false)?;
        e.uid = uid;
        e.gid = gid;
        Ok(())
    }
}
