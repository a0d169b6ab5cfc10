//! The planning workspace: steps read guest files through it and record changes; several steps
//! editing one file (device names and console in `grub.cfg`) become a single edit with all their
//! reasons. Nothing is written to the guest here.

use super::plan::{Change, ChangeKind, Plan};
use super::LinuxError;
use crate::guestfs::{FileKind, GuestFs, Stat};
use std::collections::{BTreeMap, BTreeSet};

/// Larger "configuration files" are not read (a damaged or hostile guest must not make the
/// converter allocate without bound).
pub const MAX_TEXT: u64 = 16 << 20;

struct FileState {
    original: Option<String>,
    current: Option<String>,
    reasons: Vec<String>,
    /// Index in `order` of this file's pending edit or create.
    pending: Option<usize>,
}

enum Pending {
    Edit(String),
    Other(Change),
}

/// Planning state over a read-only guest.
pub struct Draft<'a> {
    fs: &'a dyn GuestFs,
    files: BTreeMap<String, FileState>,
    /// Paths renamed away or deleted by the plan so far.
    gone: BTreeSet<String>,
    order: Vec<Pending>,
    notes: Vec<String>,
    warnings: Vec<String>,
}

impl<'a> Draft<'a> {
    /// A draft over `fs`.
    pub fn new(fs: &'a dyn GuestFs) -> Self {
        Draft {
            fs,
            files: BTreeMap::new(),
            gone: BTreeSet::new(),
            order: Vec::new(),
            notes: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The guest, for looking around.
    pub fn fs(&self) -> &'a dyn GuestFs {
        self.fs
    }

    /// `path` with its parent resolved but its last component kept (for links and deletions).
    pub fn canon_link(&self, path: &str) -> Result<String, LinuxError> {
        let (dir, name) = match path.rfind('/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => return Ok(path.to_owned()),
        };
        let dir = self
            .fs
            .canonicalize(if dir.is_empty() { "/" } else { dir })?;
        Ok(if dir == "/" {
            format!("/{name}")
        } else {
            format!("{dir}/{name}")
        })
    }

    /// Metadata without following the last component.
    pub fn lstat(&self, path: &str) -> Result<Option<Stat>, LinuxError> {
        Ok(self.fs.lstat(&self.canon_link(path)?)?)
    }

    /// Sorted entry names of a directory as the plan leaves it so far (renamed, deleted and
    /// created files accounted for); empty if it is missing or not a directory.
    pub fn list_dir(&self, path: &str) -> Result<Vec<String>, LinuxError> {
        let dir = self.fs.canonicalize(path)?;
        let prefix = if dir == "/" {
            "/".to_owned()
        } else {
            format!("{dir}/")
        };
        let mut names = if self.fs.is_dir(&dir)? {
            self.fs.read_dir(&dir)?
        } else {
            Vec::new()
        };
        names.retain(|n| !self.gone.contains(&format!("{prefix}{n}")));
        for (p, st) in &self.files {
            if let Some(name) = p.strip_prefix(&prefix).filter(|n| !n.contains('/')) {
                if st.current.is_some() && !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// The current (planned) text of a file, `None` if it does not exist, is not a regular file
    /// or is not UTF-8 (then a warning is recorded).
    pub fn read(&mut self, path: &str) -> Result<Option<String>, LinuxError> {
        let canon = self.fs.canonicalize(path)?;
        if let Some(st) = self.files.get(&canon) {
            return Ok(st.current.clone());
        }
        if self.gone.contains(&canon) {
            return Ok(None);
        }
        let text = match self.fs.lstat(&canon)? {
            Some(Stat {
                kind: FileKind::File,
                size,
                ..
            }) if size > MAX_TEXT => {
                self.warn(format!(
                    "{canon}: {size} bytes is too large for a configuration file, left unchanged"
                ));
                None
            }
            Some(Stat {
                kind: FileKind::File,
                ..
            }) => match String::from_utf8(self.fs.read_file(&canon)?) {
                Ok(s) => Some(s),
                Err(_) => {
                    self.warn(format!("{canon}: not UTF-8 text, left unchanged"));
                    None
                }
            },
            _ => None,
        };
        self.files.insert(
            canon,
            FileState {
                original: text.clone(),
                current: text.clone(),
                reasons: Vec::new(),
                pending: None,
            },
        );
        Ok(text)
    }

    /// Replaces the planned text of an existing file.
    pub fn edit(&mut self, path: &str, text: String, reason: &str) -> Result<(), LinuxError> {
        let canon = self.fs.canonicalize(path)?;
        if self.read(&canon)?.as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        let Some(st) = self.files.get_mut(&canon) else {
            return Ok(());
        };
        if st.current.is_none() {
            return Err(LinuxError::Internal(format!(
                "{canon}: edited but does not exist"
            )));
        }
        st.current = Some(text.clone());
        if !st.reasons.iter().any(|r| r == reason) {
            st.reasons.push(reason.to_owned());
        }
        match st.pending {
            Some(i) => {
                if let Some(Pending::Other(Change {
                    kind: ChangeKind::Create { contents, .. },
                    ..
                })) = self.order.get_mut(i)
                {
                    *contents = text;
                }
            }
            None => {
                st.pending = Some(self.order.len());
                self.order.push(Pending::Edit(canon));
            }
        }
        Ok(())
    }

    /// Creates a file with `text`, or edits it to `text` if it exists.
    pub fn create(
        &mut self,
        path: &str,
        text: String,
        mode: u32,
        reason: &str,
    ) -> Result<(), LinuxError> {
        let canon = self.fs.canonicalize(path)?;
        if self.read(&canon)?.is_some() {
            return self.edit(&canon, text, reason);
        }
        if self.fs.lstat(&canon)?.is_some() {
            self.warn(format!(
                "{canon}: exists but is not a text file, not replaced"
            ));
            return Ok(());
        }
        let idx = self.order.len();
        self.order.push(Pending::Other(Change {
            path: canon.clone(),
            kind: ChangeKind::Create {
                contents: text.clone(),
                mode,
            },
            reason: reason.into(),
        }));
        self.files.insert(
            canon,
            FileState {
                original: None,
                current: Some(text),
                reasons: vec![reason.into()],
                pending: Some(idx),
            },
        );
        Ok(())
    }

    /// Removes a file or symlink if present; `true` if this call planned the removal.
    pub fn delete(&mut self, path: &str, reason: &str) -> Result<bool, LinuxError> {
        let p = self.canon_link(path)?;
        if self.fs.lstat(&p)?.is_none()
            || self.order.iter().any(
                |o| matches!(o, Pending::Other(c) if c.path == p && c.kind == ChangeKind::Delete),
            )
        {
            return Ok(false);
        }
        self.files.remove(&p);
        self.gone.insert(p.clone());
        self.other(Change {
            path: p,
            kind: ChangeKind::Delete,
            reason: reason.into(),
        });
        Ok(true)
    }

    /// Makes `path` a symlink to `target` unless it already is one.
    pub fn symlink(&mut self, path: &str, target: &str, reason: &str) -> Result<(), LinuxError> {
        let p = self.canon_link(path)?;
        if self.is_link_to(&p, target)? {
            return Ok(());
        }
        let kind = if target == "/dev/null" {
            ChangeKind::Mask
        } else {
            ChangeKind::Symlink {
                target: target.into(),
            }
        };
        self.other(Change {
            path: p,
            kind,
            reason: reason.into(),
        });
        Ok(())
    }

    /// Whether `path` (parent resolved) is a symlink whose stored target is `target`.
    pub fn is_link_to(&self, path: &str, target: &str) -> Result<bool, LinuxError> {
        let p = self.canon_link(path)?;
        Ok(matches!(
            self.fs.lstat(&p)?,
            Some(Stat {
                kind: FileKind::Symlink,
                ..
            })
        ) && self.fs.read_link(&p)? == target)
    }

    /// Renames a file; later edits of `to` start from its old contents.
    pub fn rename(&mut self, from: &str, to: &str, reason: &str) -> Result<(), LinuxError> {
        let from = self.canon_link(from)?;
        let to = self.canon_link(to)?;
        let text = self.read(&from)?;
        self.files.remove(&from);
        self.gone.insert(from.clone());
        self.gone.remove(&to);
        self.files.insert(
            to.clone(),
            FileState {
                original: text.clone(),
                current: text,
                reasons: Vec::new(),
                pending: None,
            },
        );
        self.other(Change {
            path: from,
            kind: ChangeKind::Rename { to },
            reason: reason.into(),
        });
        Ok(())
    }

    /// What the plan so far puts at new inodes, in order: files created, symlinks made or
    /// retargeted, the new names of renamed files, initramfs images rebuilt (and their
    /// `.pre-ferry` copies), and the missing directories above them that applying creates;
    /// with each one's type. Files edited in place are not listed (they keep their inode).
    pub fn written(&self) -> Result<Vec<(String, FileKind)>, LinuxError> {
        let mut out: Vec<(String, FileKind)> = Vec::new();
        fn add(out: &mut Vec<(String, FileKind)>, path: &str, kind: FileKind, fs: &dyn GuestFs) -> Result<(), LinuxError> {
            let mut dir = String::new();
            let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
            for c in comps.iter().take(comps.len().saturating_sub(1)) {
                dir.push('/');
                dir.push_str(c);
                if fs.lstat(&dir)?.is_none() && !out.iter().any(|(p, _)| *p == dir) {
                    out.push((dir.clone(), FileKind::Dir));
                }
            }
            out.retain(|(p, _)| p != path);
            out.push((path.to_owned(), kind));
            Ok(())
        }
        for o in &self.order {
            let Pending::Other(c) = o else { continue };
            match &c.kind {
                ChangeKind::Create { .. } => add(&mut out, &c.path, FileKind::File, self.fs)?,
                ChangeKind::Symlink { .. } | ChangeKind::Mask => add(&mut out, &c.path, FileKind::Symlink, self.fs)?,
                ChangeKind::Rename { to } => {
                    let kind = self.fs.lstat(&c.path)?.map_or(FileKind::File, |st| st.kind);
                    add(&mut out, to, kind, self.fs)?;
                }
                ChangeKind::InitramfsRebuild { .. } => {
                    add(&mut out, &c.path, FileKind::File, self.fs)?;
                    add(&mut out, &format!("{}.pre-ferry", c.path), FileKind::File, self.fs)?;
                }
                // Copies go to the ESP: FAT keeps no labels (the mount's context= gives them).
                ChangeKind::Edit { .. } | ChangeKind::Delete | ChangeKind::Label { .. } | ChangeKind::Copy { .. } => {}
            }
        }
        Ok(out)
    }

    /// Records a change that is not a file edit (e.g. an initramfs rebuild).
    pub fn other(&mut self, change: Change) {
        self.order.push(Pending::Other(change));
    }

    /// Something to tell the user.
    pub fn note(&mut self, s: String) {
        if !self.notes.contains(&s) {
            self.notes.push(s);
        }
    }

    /// Something left alone that the user should know about.
    pub fn warn(&mut self, s: String) {
        if !self.warnings.contains(&s) {
            self.warnings.push(s);
        }
    }

    /// The plan: changes in the order first made, edits with their final contents.
    pub fn finish(mut self) -> Plan {
        let mut changes = Vec::new();
        for p in std::mem::take(&mut self.order) {
            match p {
                Pending::Other(c) => changes.push(c),
                Pending::Edit(path) => {
                    let Some(st) = self.files.get(&path) else {
                        continue;
                    };
                    if let (Some(before), Some(after)) = (&st.original, &st.current) {
                        if before != after {
                            let kind = ChangeKind::Edit {
                                before: before.clone(),
                                after: after.clone(),
                            };
                            changes.push(Change {
                                path,
                                kind,
                                reason: st.reasons.join("; "),
                            });
                        }
                    }
                }
            }
        }
        Plan {
            changes,
            notes: self.notes,
            warnings: self.warnings,
            virtio: Default::default(),
        }
    }
}
