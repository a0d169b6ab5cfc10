//! ext2/3/4 through the `ext4` crate.
//!
//! Worked around here: the crate refuses `metadata_csum_seed` (default in newer
//! e2fsprogs), so such superblocks are presented to it with that feature and checksum
//! verification turned off; a panic inside the crate on corrupt metadata is caught and
//! reported as an error naming the device and path.

use super::reader::At;
use super::{components, FileKind, FileSystem, FsError, Meta};
use crate::bytes::{u16le, u32le};
use crate::device::Device;
use ext4::{Checksums, Enhanced, FileType, Options, SuperBlock};
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};

const INCOMPAT_CSUM_SEED: u32 = 0x2000;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
const RO_COMPAT_GDT_CSUM: u32 = 0x10;

/// An opened ext2/3/4 filesystem.
pub struct ExtFs {
    sb: SuperBlock<At>,
    device: String,
}

impl ExtFs {
    /// Opens the filesystem on `dev`.
    pub fn open(dev: &Device) -> Result<Self, FsError> {
        let raw = dev.read(1024, 1024)?;
        let superblock = patched_superblock(&raw);
        let at = At { dev: dev.clone(), superblock };
        let opts = Options { checksums: Checksums::Enabled };
        let sb = guard(&dev.name, "/", || SuperBlock::new_with_options(at, &opts))?;
        Ok(ExtFs { sb, device: dev.name.clone() })
    }

    fn err(&self, path: &str, reason: impl std::fmt::Display) -> FsError {
        FsError::Read { device: self.device.clone(), fstype: "ext", path: path.into(), reason: reason.to_string() }
    }

    /// The inode at `path`, `None` if some component is missing.
    fn lookup(&self, path: &str) -> Result<Option<ext4::Inode>, FsError> {
        let mut inode = guard(&self.device, path, || self.sb.root())?;
        for name in components(path) {
            if inode.stat.extracted_type != FileType::Directory {
                return Ok(None);
            }
            let entries = match guard(&self.device, path, || self.sb.enhance(&inode))? {
                Enhanced::Directory(e) => e,
                _ => return Ok(None),
            };
            let Some(e) = entries.into_iter().find(|e| e.name == name) else {
                return Ok(None);
            };
            inode = guard(&self.device, path, || self.sb.load_inode(e.inode))?;
        }
        Ok(Some(inode))
    }
}

/// Runs a call into the `ext4` crate, turning its errors and panics into [`FsError`].
fn guard<T, E: std::fmt::Display>(
    device: &str,
    path: &str,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, FsError> {
    let err = |reason: String| FsError::Read { device: device.into(), fstype: "ext", path: path.into(), reason };
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(err(format!("{e:#}"))),
        Err(_) => Err(err("corrupt metadata (the ext4 reader gave up)".into())),
    }
}

/// A superblock the crate can read when the original uses features it refuses but that
/// do not change the on-disk layout of what we read; `None` if no patch is needed.
fn patched_superblock(raw: &[u8]) -> Option<Vec<u8>> {
    let incompat = u32le(raw, 96);
    if incompat & INCOMPAT_CSUM_SEED == 0 || u16le(raw, 56) != 0xef53 {
        return None;
    }
    let mut sb = raw.to_vec();
    let ro = u32le(raw, 100) & !(RO_COMPAT_METADATA_CSUM | RO_COMPAT_GDT_CSUM);
    sb.get_mut(96..100)?.copy_from_slice(&(incompat & !INCOMPAT_CSUM_SEED).to_le_bytes());
    sb.get_mut(100..104)?.copy_from_slice(&ro.to_le_bytes());
    Some(sb)
}

fn kind(t: &FileType) -> FileKind {
    match t {
        FileType::RegularFile => FileKind::File,
        FileType::Directory => FileKind::Dir,
        FileType::SymbolicLink => FileKind::Symlink,
        _ => FileKind::Other,
    }
}

impl FileSystem for ExtFs {
    fn metadata(&self, path: &str) -> Result<Option<Meta>, FsError> {
        Ok(self.lookup(path)?.map(|i| Meta { kind: kind(&i.stat.extracted_type), size: i.stat.size }))
    }

    fn read_dir(&self, path: &str) -> Result<Vec<(String, FileKind)>, FsError> {
        let inode = self.lookup(path)?.ok_or_else(|| self.err(path, "no such directory"))?;
        match guard(&self.device, path, || self.sb.enhance(&inode))? {
            Enhanced::Directory(es) => Ok(es
                .into_iter()
                .filter(|e| e.name != "." && e.name != "..")
                .map(|e| (e.name, kind(&e.file_type)))
                .collect()),
            _ => Err(self.err(path, "not a directory")),
        }
    }

    fn read_link(&self, path: &str) -> Result<String, FsError> {
        let inode = self.lookup(path)?.ok_or_else(|| self.err(path, "no such symlink"))?;
        match guard(&self.device, path, || self.sb.enhance(&inode))? {
            Enhanced::SymbolicLink(t) => Ok(t),
            _ => Err(self.err(path, "not a symlink")),
        }
    }

    fn read_head(&self, path: &str, max: u64) -> Result<Vec<u8>, FsError> {
        let inode = self.lookup(path)?.ok_or_else(|| self.err(path, "no such file"))?;
        if inode.stat.extracted_type != FileType::RegularFile {
            return Err(self.err(path, "not a regular file"));
        }
        let want = inode.stat.size.min(max);
        guard(&self.device, path, || {
            let r = self.sb.open(&inode).map_err(|e| format!("{e:#}"))?;
            let mut out = Vec::with_capacity(want.min(1 << 20) as usize);
            r.take(want).read_to_end(&mut out).map_err(|e| e.to_string())?;
            Ok::<_, String>(out)
        })
    }
}
