//! NTFS through the `ntfs` crate: names compare case-insensitively with the volume's
//! `$UpCase` table. Panics inside the crate on corrupt metadata become errors.

use super::reader::Cursor;
use super::{components, FileKind, FileSystem, FsError, Meta};
use crate::device::Device;
use ntfs::indexes::NtfsFileNameIndex;
use ntfs::structured_values::NtfsFileNamespace;
use ntfs::{Ntfs, NtfsFile, NtfsReadSeek};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

/// An opened NTFS volume.
pub struct NtfsFs {
    ntfs: Ntfs,
    io: Mutex<Cursor>,
    device: String,
}

type R<T> = Result<T, String>;

impl NtfsFs {
    /// Opens the volume on `dev` and loads its upcase table.
    pub fn open(dev: &Device) -> Result<Self, FsError> {
        let mut io = Cursor::new(dev.clone());
        let ntfs = guard(&dev.name, "/", || {
            let mut n = Ntfs::new(&mut io).map_err(|e| e.to_string())?;
            n.read_upcase_table(&mut io).map_err(|e| e.to_string())?;
            Ok(n)
        })?;
        Ok(NtfsFs { ntfs, io: Mutex::new(io), device: dev.name.clone() })
    }

    /// The volume label from `$Volume`.
    pub fn label(&self) -> Result<Option<String>, FsError> {
        self.with("/", |ntfs, io| match ntfs.volume_name(io) {
            Some(Ok(n)) => Ok(Some(n.name().to_string_lossy()).filter(|s| !s.is_empty())),
            Some(Err(e)) => Err(e.to_string()),
            None => Ok(None),
        })
    }

    fn with<T>(&self, path: &str, f: impl FnOnce(&Ntfs, &mut Cursor) -> R<T>) -> Result<T, FsError> {
        let mut io = self.io.lock().map_err(|_| self.err(path, "reader poisoned"))?;
        guard(&self.device, path, || f(&self.ntfs, &mut io))
    }

    fn err(&self, path: &str, reason: impl std::fmt::Display) -> FsError {
        FsError::Read { device: self.device.clone(), fstype: "ntfs", path: path.into(), reason: reason.to_string() }
    }
}

fn guard<T>(device: &str, path: &str, f: impl FnOnce() -> R<T>) -> Result<T, FsError> {
    let err = |reason: String| FsError::Read { device: device.into(), fstype: "ntfs", path: path.into(), reason };
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(err(e)),
        Err(_) => Err(err("corrupt metadata (the NTFS reader gave up)".into())),
    }
}

/// Walks `path` from the root; `None` if a component is missing.
fn lookup<'n>(ntfs: &'n Ntfs, io: &mut Cursor, path: &str) -> R<Option<NtfsFile<'n>>> {
    let mut file = ntfs.root_directory(io).map_err(|e| e.to_string())?;
    for name in components(path) {
        if !file.is_directory() {
            return Ok(None);
        }
        let index = file.directory_index(io).map_err(|e| e.to_string())?;
        let mut finder = index.finder();
        let next = match NtfsFileNameIndex::find(&mut finder, ntfs, io, name) {
            None => return Ok(None),
            Some(e) => e.map_err(|e| e.to_string())?.to_file(ntfs, io).map_err(|e| e.to_string())?,
        };
        file = next;
    }
    Ok(Some(file))
}

fn data_len(file: &NtfsFile, io: &mut Cursor) -> R<u64> {
    match file.data(io, "") {
        None => Ok(0),
        Some(item) => {
            let item = item.map_err(|e| e.to_string())?;
            let attr = item.to_attribute().map_err(|e| e.to_string())?;
            Ok(attr.value(io).map_err(|e| e.to_string())?.len())
        }
    }
}

impl FileSystem for NtfsFs {
    fn device(&self) -> &str {
        &self.device
    }

    fn metadata(&self, path: &str) -> Result<Option<Meta>, FsError> {
        self.with(path, |ntfs, io| {
            let Some(f) = lookup(ntfs, io, path)? else { return Ok(None) };
            if f.is_directory() {
                return Ok(Some(Meta { kind: FileKind::Dir, size: 0 }));
            }
            Ok(Some(Meta { kind: FileKind::File, size: data_len(&f, io)? }))
        })
    }

    fn read_dir(&self, path: &str) -> Result<Vec<(String, FileKind)>, FsError> {
        self.with(path, |ntfs, io| {
            let f = lookup(ntfs, io, path)?.ok_or("no such directory")?;
            let index = f.directory_index(io).map_err(|e| e.to_string())?;
            let mut entries = index.entries();
            let mut out = Vec::new();
            while let Some(e) = entries.next(io) {
                let e = e.map_err(|e| e.to_string())?;
                let Some(key) = e.key() else { continue };
                let name = key.map_err(|e| e.to_string())?;
                if name.namespace() == NtfsFileNamespace::Dos {
                    continue;
                }
                let kind = if name.is_directory() { FileKind::Dir } else { FileKind::File };
                let n = name.name().to_string_lossy();
                if n != "." {
                    out.push((n, kind));
                }
            }
            Ok(out)
        })
    }

    fn read_link(&self, path: &str) -> Result<String, FsError> {
        Err(self.err(path, "NTFS reparse points are not followed"))
    }

    fn read_head(&self, path: &str, max: u64) -> Result<Vec<u8>, FsError> {
        self.with(path, |ntfs, io| {
            let f = lookup(ntfs, io, path)?.ok_or("no such file")?;
            let item = f.data(io, "").ok_or("no $DATA attribute")?.map_err(|e| e.to_string())?;
            let attr = item.to_attribute().map_err(|e| e.to_string())?;
            let mut value = attr.value(io).map_err(|e| e.to_string())?;
            let want = value.len().min(max);
            let mut out = vec![0u8; want.min(64 << 20) as usize];
            let mut done = 0;
            while done < out.len() {
                let buf = out.get_mut(done..).ok_or("buffer")?;
                let n = value.read(io, buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                done += n;
            }
            out.truncate(done);
            Ok(out)
        })
    }

    fn case_insensitive(&self) -> bool {
        true
    }

    fn volume_dirty(&self) -> Result<Option<bool>, FsError> {
        self.with("/$Volume", |ntfs, io| {
            let info = ntfs.volume_info(io).map_err(|e| e.to_string())?;
            Ok(Some(info.flags().contains(ntfs::structured_values::NtfsVolumeFlags::IS_DIRTY)))
        })
    }
}
