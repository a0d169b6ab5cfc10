//! FAT12/16/32 (the ESP) through `fatfs`. Names compare case-insensitively.

use super::reader::Cursor;
use super::{components, FileKind, FileSystem, FsError, Meta};
use crate::device::Device;
use std::io::Read;

type Fs = fatfs::FileSystem<Cursor>;

/// An opened FAT filesystem. `fatfs` is re-mounted per call: mounting only reads the boot
/// sector, and this keeps the borrow of the device simple.
pub struct FatFs {
    dev: Device,
}

impl FatFs {
    /// Checks that `dev` mounts as FAT.
    pub fn open(dev: &Device) -> Result<Self, FsError> {
        let f = FatFs { dev: dev.clone() };
        f.mount("/")?;
        Ok(f)
    }

    fn mount(&self, path: &str) -> Result<Fs, FsError> {
        fatfs::FileSystem::new(Cursor::new(self.dev.clone()), fatfs::FsOptions::new())
            .map_err(|e| self.err(path, e))
    }

    fn err(&self, path: &str, reason: impl std::fmt::Display) -> FsError {
        FsError::Read { device: self.dev.name.clone(), fstype: "vfat", path: path.into(), reason: reason.to_string() }
    }

    /// The volume label from the root directory entry, else the boot sector.
    pub fn label(&self) -> Result<Option<String>, FsError> {
        let fs = self.mount("/")?;
        let l = fs.read_volume_label_from_root_dir().map_err(|e| self.err("/", e))?;
        let l = l.unwrap_or_else(|| fs.volume_label()).trim_end().to_string();
        Ok(Some(l).filter(|l| !l.is_empty() && l != "NO NAME"))
    }
}

/// Path relative to the root, as `fatfs` wants it.
fn rel(path: &str) -> String {
    components(path).collect::<Vec<_>>().join("/")
}

impl FileSystem for FatFs {
    fn metadata(&self, path: &str) -> Result<Option<Meta>, FsError> {
        let fs = self.mount(path)?;
        let r = rel(path);
        if r.is_empty() {
            return Ok(Some(Meta { kind: FileKind::Dir, size: 0 }));
        }
        let (parent, name) = match r.rsplit_once('/') {
            Some((p, n)) => (p.to_string(), n.to_string()),
            None => (String::new(), r.clone()),
        };
        let root = fs.root_dir();
        let dir = if parent.is_empty() {
            root
        } else {
            match root.open_dir(&parent) {
                Ok(d) => d,
                Err(_) => return Ok(None),
            }
        };
        for e in dir.iter() {
            let e = e.map_err(|e| self.err(path, e))?;
            if e.file_name().eq_ignore_ascii_case(&name) {
                let kind = if e.is_dir() { FileKind::Dir } else { FileKind::File };
                return Ok(Some(Meta { kind, size: e.len() }));
            }
        }
        Ok(None)
    }

    fn read_dir(&self, path: &str) -> Result<Vec<(String, FileKind)>, FsError> {
        let fs = self.mount(path)?;
        let r = rel(path);
        let root = fs.root_dir();
        let dir = if r.is_empty() { root } else { root.open_dir(&r).map_err(|e| self.err(path, e))? };
        let mut out = Vec::new();
        for e in dir.iter() {
            let e = e.map_err(|e| self.err(path, e))?;
            let n = e.file_name();
            if n != "." && n != ".." {
                out.push((n, if e.is_dir() { FileKind::Dir } else { FileKind::File }));
            }
        }
        Ok(out)
    }

    fn read_link(&self, path: &str) -> Result<String, FsError> {
        Err(self.err(path, "FAT has no symlinks"))
    }

    fn read_head(&self, path: &str, max: u64) -> Result<Vec<u8>, FsError> {
        let fs = self.mount(path)?;
        let f = fs.root_dir().open_file(&rel(path)).map_err(|e| self.err(path, e))?;
        let mut out = Vec::new();
        f.take(max).read_to_end(&mut out).map_err(|e| self.err(path, e))?;
        Ok(out)
    }

    fn case_insensitive(&self) -> bool {
        true
    }
}
