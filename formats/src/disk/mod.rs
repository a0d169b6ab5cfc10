//! Disk images as random-access block devices.
//!
//! Every image format implements [`BlockDevice`]: a virtual size, positioned reads that may
//! run concurrently from many threads (`&self`, `Send + Sync`), and an allocation map that
//! tells data from zeros from unallocated ranges. Formats that can only be read front to
//! back (streamOptimized VMDK inside a compressed OVA) implement [`StreamSource`] instead.

mod error;
mod file;
mod inflate;
mod open;
mod overlay;
mod raw;
mod stream;

pub use error::DiskError;
pub use file::{note_source, open_input, opened_source, opened_sources, FileId, ReadOnlyFile};
pub use inflate::{inflate_deflate, inflate_grain, inflate_zlib};
pub use open::{open_image, probe_format, probe_range, ImageFormat};
pub use overlay::{CowOverlay, OVERLAY_BLOCK};
pub use raw::RawImage;
pub use stream::{Chunk, ChunkData, StreamSource};

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a range of the virtual disk holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExtentKind {
    /// Bytes stored in some image of the chain (they may still happen to be zero).
    Data,
    /// Known to read as zeros (zeroed grain, qcow2 zero flag, ZERO extent, raw hole).
    Zero,
    /// Not allocated anywhere in the chain: reads as zeros.
    Unallocated,
}

/// A contiguous range of the virtual disk with one [`ExtentKind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Extent {
    pub offset: u64,
    pub length: u64,
    pub kind: ExtentKind,
}

/// What `ferry img info` reports about an image.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImageInfo {
    /// Format name as qemu-img spells it: "raw", "vmdk", "qcow2".
    pub format: String,
    /// Virtual size in bytes.
    pub virtual_size: u64,
    /// Bytes the image's own files take on the host (allocated blocks).
    pub actual_size: u64,
    /// Grain or cluster size, where the format has one.
    pub cluster_size: Option<u64>,
    /// Every file this image reads from (descriptor, extents), in order.
    pub files: Vec<PathBuf>,
    /// The backing/parent image, if any.
    pub backing: Option<PathBuf>,
    /// Format-specific details (createType, compression type, version...).
    pub details: BTreeMap<String, serde_json::Value>,
}

/// A disk image read at random offsets.
pub trait BlockDevice: Send + Sync {
    /// Virtual size in bytes.
    fn size(&self) -> u64;

    /// Fills `buf` with the virtual disk's bytes at `offset`. The whole range must lie
    /// within [`size`](Self::size); reads of unallocated or zero ranges return zeros.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError>;

    /// The allocation map of `[offset, offset + length)`: contiguous, in order, covering
    /// the whole range, adjacent extents of the same kind merged.
    fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError>;

    /// Description for `img info`.
    fn info(&self) -> ImageInfo;

    /// The natural I/O unit (grain or cluster size) in bytes; copies are chunked on it.
    fn granularity(&self) -> u64 {
        65536
    }
}

impl<T: BlockDevice + ?Sized> BlockDevice for Box<T> {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        (**self).read_at(buf, offset)
    }
    fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
        (**self).map(offset, length)
    }
    fn info(&self) -> ImageInfo {
        (**self).info()
    }
    fn granularity(&self) -> u64 {
        (**self).granularity()
    }
}

/// A block device that can also be written (the runtime's virtio-blk backends, the
/// conversion overlay). Writes go through `&self` so queues can be served from many threads.
pub trait WritableDevice: BlockDevice {
    /// Writes `buf` at `offset`; the range must lie within the device.
    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), DiskError>;
    /// Makes every completed write durable.
    fn flush(&self) -> Result<(), DiskError>;
    /// Deallocates a range; it reads as zeros afterwards.
    fn discard(&self, offset: u64, length: u64) -> Result<(), DiskError>;
}

/// Merges adjacent extents of the same kind, dropping empty ones. Helpers for `map`.
pub fn coalesce(extents: Vec<Extent>) -> Vec<Extent> {
    let mut out: Vec<Extent> = Vec::with_capacity(extents.len());
    for e in extents.into_iter().filter(|e| e.length > 0) {
        match out.last_mut() {
            Some(last) if last.kind == e.kind && last.offset + last.length == e.offset => {
                last.length += e.length
            }
            _ => out.push(e),
        }
    }
    out
}

/// Input bytes quoted for a one-line error: `"KDM\x00"`.
pub fn escape_bytes(b: &[u8]) -> String {
    format!("\"{}\"", b.escape_ascii())
}

/// Checks that `[offset, offset + len)` lies inside a device of `size` bytes.
pub fn check_range(path: &std::path::Path, offset: u64, len: u64, size: u64) -> Result<(), DiskError> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(DiskError::OutOfRange { path: path.to_path_buf(), offset, length: len, size }),
    }
}

/// For fuzz targets: writes `bytes` to a temporary file, opens it read-only, runs `f` on it
/// and removes the file.
pub fn fuzz_file<T>(
    bytes: &[u8],
    ext: &str,
    f: impl FnOnce(ReadOnlyFile) -> Result<T, DiskError>,
) -> Result<T, DiskError> {
    let dir = tempfile::tempdir().map_err(|e| DiskError::io(&std::env::temp_dir(), "mkdtemp", e))?;
    let path = dir.path().join(format!("fuzz.{ext}"));
    std::fs::write(&path, bytes).map_err(|e| DiskError::io(&path, "write", e))?;
    f(ReadOnlyFile::open(&path)?)
}

/// For fuzz targets: maps the first 64 MiB of `img` and reads up to 64 of its data extents.
pub fn read_mapped(img: &dyn BlockDevice) -> Result<(), DiskError> {
    let size = img.size().min(64 << 20);
    let map = img.map(0, size)?;
    let mut buf = vec![0u8; 65536];
    for e in map.iter().filter(|e| e.kind == ExtentKind::Data).take(64) {
        let n = e.length.min(buf.len() as u64) as usize;
        img.read_at(&mut buf[..n], e.offset)?;
        img.read_at(&mut buf[..n.min(777)], e.offset + e.length - n.min(777) as u64)?;
    }
    let _ = img.info();
    Ok(())
}
