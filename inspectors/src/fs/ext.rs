//! ext2/3/4 through the `ext4` crate, with workarounds for what real guests have and the
//! crate cannot read:
//! - `metadata_csum_seed` (default in newer e2fsprogs) is refused by the crate: such
//!   superblocks are shown to it with that feature and checksum verification turned off;
//! - block-mapped files (every ext2/ext3 filesystem) and multi-block directories with
//!   checksums are read by `ext_raw` directly; the crate reads extent-mapped file data;
//! - a panic inside the crate on corrupt metadata is caught and reported as an error
//!   naming the device and path.

use super::ext_raw::{dirents, Geometry, RawInode, EXTENTS_FL, INLINE_DATA_FL};
use super::reader::At;
use super::{components, FileKind, FileSystem, FsError, Meta};
use crate::bytes::{u16le, u32le};
use crate::device::Device;
use ext4::{Checksums, Options, SuperBlock};
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};

const INCOMPAT_CSUM_SEED: u32 = 0x2000;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
const RO_COMPAT_GDT_CSUM: u32 = 0x10;
/// Largest directory read.
const MAX_DIR: u64 = 64 << 20;

/// An opened ext2/3/4 filesystem.
pub struct ExtFs {
    sb: SuperBlock<At>,
    geo: Geometry,
    dev: Device,
}

impl ExtFs {
    /// Opens the filesystem on `dev`.
    pub fn open(dev: &Device) -> Result<Self, FsError> {
        let raw = dev.read(1024, 1024)?;
        let bad = |reason: String| FsError::Read { device: dev.name.clone(), fstype: "ext", path: "/".into(), reason };
        // Every field the crate and `ext_raw` use, bounded first: the crate would divide by
        // zero, index out of bounds or abort on an allocation it sizes from them.
        super::ext_sb::check(&raw, dev.size()).map_err(bad)?;
        let geo = Geometry::new(&raw).ok_or_else(|| FsError::Read {
            device: dev.name.clone(),
            fstype: "ext",
            path: "/".into(),
            reason: format!("invalid superblock: block size log {} inodes/group {}", u32le(&raw, 24), u32le(&raw, 40)),
        })?;
        let superblock = patched_superblock(&raw);
        let at = At { dev: dev.clone(), superblock };
        let opts = Options { checksums: Checksums::Enabled };
        let sb = guard(&dev.name, "/", || SuperBlock::new_with_options(at, &opts))?;
        Ok(ExtFs { sb, geo, dev: dev.clone() })
    }

    fn err(&self, path: &str, reason: impl std::fmt::Display) -> FsError {
        FsError::Read { device: self.dev.name.clone(), fstype: "ext", path: path.into(), reason: reason.to_string() }
    }

    fn inode(&self, ino: u64, path: &str) -> Result<RawInode, FsError> {
        self.geo.inode(&self.dev, ino).map_err(|e| self.err(path, e))
    }

    /// First `want` bytes of inode `ino`'s data.
    fn data(&self, ino: u64, raw: &RawInode, want: u64, path: &str) -> Result<Vec<u8>, FsError> {
        if raw.flags & INLINE_DATA_FL != 0 {
            return Err(self.err(path, "inline_data inodes are not supported"));
        }
        if raw.flags & EXTENTS_FL == 0 {
            return self.geo.read_mapped(&self.dev, raw, want).map_err(|e| self.err(path, e));
        }
        let n = u32::try_from(ino).map_err(|_| self.err(path, format!("inode {ino}")))?;
        guard(&self.dev.name, path, || {
            let inode = self.sb.load_inode(n).map_err(|e| format!("{e:#}"))?;
            let r = self.sb.open(&inode).map_err(|e| format!("{e:#}"))?;
            let mut out = Vec::with_capacity(want.min(1 << 20) as usize);
            r.take(want).read_to_end(&mut out).map_err(|e| e.to_string())?;
            Ok::<_, String>(out)
        })
    }

    fn entries(&self, ino: u64, raw: &RawInode, path: &str) -> Result<Vec<(String, u32, u8)>, FsError> {
        let data = self.data(ino, raw, raw.size.min(MAX_DIR), path)?;
        Ok(dirents(&data, self.geo.block as usize))
    }

    /// Inode number and inode at `path`, `None` if some component is missing.
    fn lookup(&self, path: &str) -> Result<Option<(u64, RawInode)>, FsError> {
        let mut ino = 2u64;
        let mut raw = self.inode(ino, path)?;
        for name in components(path) {
            if FileKind::from_mode(raw.mode) != FileKind::Dir {
                return Ok(None);
            }
            let Some((_, n, _)) = self.entries(ino, &raw, path)?.into_iter().find(|(e, _, _)| e == name) else {
                return Ok(None);
            };
            ino = u64::from(n);
            raw = self.inode(ino, path)?;
        }
        Ok(Some((ino, raw)))
    }
}

/// Runs a call into the `ext4` crate, turning its errors and panics into [`FsError`].
fn guard<T, E: std::fmt::Display>(device: &str, path: &str, f: impl FnOnce() -> Result<T, E>) -> Result<T, FsError> {
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

impl FileSystem for ExtFs {
    fn device(&self) -> &str {
        &self.dev.name
    }

    fn metadata(&self, path: &str) -> Result<Option<Meta>, FsError> {
        Ok(self.lookup(path)?.map(|(_, i)| Meta { kind: FileKind::from_mode(i.mode), size: i.size }))
    }

    fn read_dir(&self, path: &str) -> Result<Vec<(String, FileKind)>, FsError> {
        let (ino, raw) = self.lookup(path)?.ok_or_else(|| self.err(path, "no such directory"))?;
        if FileKind::from_mode(raw.mode) != FileKind::Dir {
            return Err(self.err(path, "not a directory"));
        }
        let mut out = Vec::new();
        for (name, n, t) in self.entries(ino, &raw, path)? {
            let k = match FileKind::from_dirent_type(t) {
                FileKind::Other => self.inode(u64::from(n), path).map(|i| FileKind::from_mode(i.mode)).unwrap_or(FileKind::Other),
                k => k,
            };
            out.push((name, k));
        }
        Ok(out)
    }

    fn read_link(&self, path: &str) -> Result<String, FsError> {
        let (ino, raw) = self.lookup(path)?.ok_or_else(|| self.err(path, "no such symlink"))?;
        if FileKind::from_mode(raw.mode) != FileKind::Symlink || raw.size > 4096 {
            return Err(self.err(path, "not a symlink"));
        }
        // Fast symlinks keep the target in i_block.
        let inline = || raw.iblock.get(..raw.size as usize).unwrap_or_default().to_vec();
        let b = if raw.size < 60 && raw.blocks == 0 {
            inline()
        } else {
            match self.data(ino, &raw, raw.size, path) {
                Ok(b) => b,
                Err(_) if raw.size < 60 && raw.flags & EXTENTS_FL == 0 => inline(),
                Err(e) => return Err(e),
            }
        };
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    fn read_head(&self, path: &str, max: u64) -> Result<Vec<u8>, FsError> {
        let (ino, raw) = self.lookup(path)?.ok_or_else(|| self.err(path, "no such file"))?;
        if FileKind::from_mode(raw.mode) != FileKind::File {
            return Err(self.err(path, "not a regular file"));
        }
        self.data(ino, &raw, raw.size.min(max).min(1 << 30), path)
    }
}
