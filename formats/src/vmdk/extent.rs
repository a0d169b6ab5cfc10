//! One extent of a VMDK: the trait every kind implements, plus the flat and zero kinds.
use super::source::Source;
use super::sparse::push_extent;
use crate::disk::{DiskError, Extent, ExtentKind, ReadOnlyFile};
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;

/// A range of an extent that is not allocated in it (relative to the extent start).
pub type Hole = (u64, u64);

/// One extent, addressed in bytes from its own start.
pub trait ExtentReader: Send + Sync {
    /// Length in bytes.
    fn len(&self) -> u64;
    /// Fills `buf` with bytes at `off`. Unallocated ranges are zero-filled and pushed to
    /// `holes` (absolute offsets within the extent) so a parent can fill them.
    fn read(&self, buf: &mut [u8], off: u64, holes: &mut Vec<Hole>) -> Result<(), DiskError>;
    /// The allocation map of `[off, off + len)`, offsets relative to the extent.
    fn map(&self, off: u64, len: u64, out: &mut Vec<Extent>) -> Result<(), DiskError>;
    /// Files read, and bytes they take on the host.
    fn files(&self) -> Vec<(PathBuf, u64)>;
    /// Grain size in bytes, for sparse kinds.
    fn grain(&self) -> Option<u64> {
        None
    }
}

/// Appends `(off, len)` to `holes`, merging with the previous hole when adjacent.
pub fn push_hole(holes: &mut Vec<Hole>, off: u64, len: u64) {
    if let Some(last) = holes.last_mut() {
        if last.0 + last.1 == off {
            last.1 += len;
            return;
        }
    }
    holes.push((off, len));
}

/// A FLAT / VMFS extent: raw bytes at `start` in a file.
pub struct FlatExtent {
    src: Arc<dyn Source>,
    start: u64,
    len: u64,
}

impl FlatExtent {
    /// The extent must lie within the file.
    pub fn new(src: Arc<dyn Source>, start_sector: u64, sectors: u64) -> Result<Self, DiskError> {
        let start = start_sector.saturating_mul(512);
        let len = sectors * 512;
        if start.checked_add(len).is_none_or(|end| end > src.len()) {
            return Err(DiskError::invalid(
                src.path(),
                "flat extent",
                format!("offset {start_sector} sectors {sectors}"),
                format!("runs past end of file ({} bytes)", src.len()),
            ));
        }
        Ok(FlatExtent { src, start, len })
    }
}

impl ExtentReader for FlatExtent {
    fn len(&self) -> u64 {
        self.len
    }
    fn read(&self, buf: &mut [u8], off: u64, _holes: &mut Vec<Hole>) -> Result<(), DiskError> {
        self.src.read_exact_at(buf, self.start + off, "flat extent data")
    }
    fn map(&self, off: u64, len: u64, out: &mut Vec<Extent>) -> Result<(), DiskError> {
        // Holes of the flat file read as zeros: report them as such (as qemu does).
        let Some(f) = self.src.file() else {
            out.push(Extent { offset: off, length: len, kind: ExtentKind::Data });
            return Ok(());
        };
        let (start, end) = (self.start + off, self.start + off + len);
        let mut pos = start;
        while pos < end {
            let data = match seek(f, pos, libc::SEEK_DATA) {
                Ok(d) => d.min(end),
                Err(e) if e.raw_os_error() == Some(libc::ENXIO) => end,
                Err(_) => pos,
            };
            if data > pos {
                push_extent(out, pos - self.start, data - pos, ExtentKind::Zero);
                pos = data;
                continue;
            }
            let hole = seek(f, pos, libc::SEEK_HOLE).unwrap_or(end).clamp(pos + 1, end);
            push_extent(out, pos - self.start, hole - pos, ExtentKind::Data);
            pos = hole;
        }
        Ok(())
    }
    fn files(&self) -> Vec<(PathBuf, u64)> {
        vec![(self.src.path().to_path_buf(), self.src.allocated())]
    }
}

/// lseek(SEEK_DATA / SEEK_HOLE) on a file only read with pread, so moving its offset is harmless.
fn seek(f: &ReadOnlyFile, offset: u64, whence: libc::c_int) -> std::io::Result<u64> {
    let off = libc::off_t::try_from(offset).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: lseek on a descriptor owned by `f`; it only moves the file offset, which no
    // reader of this file uses (all reads are positioned).
    let r = unsafe { libc::lseek(f.file().as_raw_fd(), off, whence) };
    u64::try_from(r).map_err(|_| std::io::Error::last_os_error())
}

/// A ZERO extent, or a NOACCESS one (whose data may not be read): zeros.
pub struct ZeroExtent {
    pub len: u64,
}

impl ExtentReader for ZeroExtent {
    fn len(&self) -> u64 {
        self.len
    }
    fn read(&self, buf: &mut [u8], _off: u64, _holes: &mut Vec<Hole>) -> Result<(), DiskError> {
        buf.fill(0);
        Ok(())
    }
    fn map(&self, off: u64, len: u64, out: &mut Vec<Extent>) -> Result<(), DiskError> {
        out.push(Extent { offset: off, length: len, kind: ExtentKind::Zero });
        Ok(())
    }
    fn files(&self) -> Vec<(PathBuf, u64)> {
        Vec::new()
    }
}
