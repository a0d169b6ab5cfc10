//! Disk backends for virtio-blk: raw and qcow2 files read-write in place, and any image
//! `ferry-formats` reads (VMDK) served read-only or through a copy-on-write overlay in an
//! unlinked temp file.
use ferry_formats::disk::{open_image, BlockDevice, CowOverlay, ImageFormat, WritableDevice};
use ferry_formats::qcow2::Qcow2Rw;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// What virtio-blk needs from storage.
pub trait Backend: Send {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Whether writes are refused.
    fn readonly(&self) -> bool;
    /// Reads exactly `buf.len()` bytes at `off`.
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()>;
    /// Writes `buf` at `off`.
    fn write_at(&mut self, buf: &[u8], off: u64) -> io::Result<()>;
    /// Makes writes durable.
    fn flush(&mut self) -> io::Result<()>;
    /// Deallocates a range (reads back zero).
    fn discard(&mut self, off: u64, len: u64) -> io::Result<()>;
    /// Zeroes a range.
    fn write_zeroes(&mut self, off: u64, len: u64) -> io::Result<()>;
    /// A name for logs and `query-block`.
    fn describe(&self) -> String;
    /// The file to `preadv`/`pwritev` directly at guest offsets, for a raw image.
    fn raw_fd(&self) -> Option<std::os::unix::io::RawFd> {
        None
    }
}

/// Errors opening a disk.
#[derive(Debug, thiserror::Error)]
pub enum DiskOpenError {
    /// I/O error on the file.
    #[error("{0}: {1}")]
    Io(String, io::Error),
    /// The image reader refused the file.
    #[error("{0}")]
    Image(#[from] ferry_formats::DiskError),
    /// Unknown format name in the spec.
    #[error("{0}: invalid format {1:?}: expected raw or qcow2")]
    Format(String, String),
}

/// Opens the disk of a spec device.
pub fn open(path: &Path, format: &str, readonly: bool) -> Result<Box<dyn Backend>, DiskOpenError> {
    let name = path.display().to_string();
    match format {
        "raw" => {
            let file = OpenOptions::new().read(true).write(!readonly).open(path).map_err(|e| DiskOpenError::Io(name.clone(), e))?;
            let size = file.metadata().map_err(|e| DiskOpenError::Io(name.clone(), e))?.len();
            Ok(Box::new(Raw { file, size, readonly, name }))
        }
        "qcow2" if !readonly => Ok(Box::new(Qcow2 { image: Qcow2Rw::open(path)?, name })),
        "qcow2" | "vmdk" => {
            let fmt = if format == "qcow2" { ImageFormat::Qcow2 } else { ImageFormat::Vmdk };
            let base = open_image(path, Some(fmt))?;
            Ok(Box::new(Overlay { cow: CowOverlay::new(base)?, readonly, name }))
        }
        other => Err(DiskOpenError::Format(name, other.to_string())),
    }
}

/// QEMU's `null-co`: `size` bytes that read as zeros and take every write.
pub fn null(size: u64) -> Box<dyn Backend> {
    Box::new(Null { size })
}

struct Null {
    size: u64,
}

impl Backend for Null {
    fn size(&self) -> u64 {
        self.size
    }
    fn readonly(&self) -> bool {
        false
    }
    fn read_at(&self, buf: &mut [u8], _off: u64) -> io::Result<()> {
        buf.fill(0);
        Ok(())
    }
    fn write_at(&mut self, _buf: &[u8], _off: u64) -> io::Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn discard(&mut self, _off: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
    fn write_zeroes(&mut self, _off: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
    fn describe(&self) -> String {
        "null-co".into()
    }
}

/// A qcow2 image written in place: clusters allocated at its end, refcounts kept right.
struct Qcow2 {
    image: Qcow2Rw,
    name: String,
}

fn io_err(e: ferry_formats::DiskError) -> io::Error {
    io::Error::other(e.to_string())
}

impl Backend for Qcow2 {
    fn size(&self) -> u64 {
        self.image.size()
    }
    fn readonly(&self) -> bool {
        false
    }
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        self.image.read_at(buf, off).map_err(io_err)
    }
    fn write_at(&mut self, buf: &[u8], off: u64) -> io::Result<()> {
        self.image.write_at(buf, off).map_err(io_err)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.image.flush().map_err(io_err)
    }
    fn discard(&mut self, off: u64, len: u64) -> io::Result<()> {
        self.image.discard(off, len).map_err(io_err)
    }
    fn write_zeroes(&mut self, off: u64, len: u64) -> io::Result<()> {
        self.image.discard(off, len).map_err(io_err)
    }
    fn describe(&self) -> String {
        format!("{} (qcow2, read-write)", self.name)
    }
}

struct Raw {
    file: File,
    size: u64,
    readonly: bool,
    name: String,
}

fn fallocate(f: &File, mode: libc::c_int, off: u64, len: u64) -> io::Result<()> {
    // SAFETY: fallocate on an owned, open descriptor; no memory is passed.
    let r = unsafe { libc::fallocate(f.as_raw_fd(), mode, off as libc::off_t, len as libc::off_t) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn zero_fill(f: &File, off: u64, len: u64) -> io::Result<()> {
    let zeros = vec![0u8; len.min(1 << 20) as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(zeros.len() as u64) as usize;
        f.write_all_at(&zeros[..n], off + done)?;
        done += n as u64;
    }
    Ok(())
}

impl Backend for Raw {
    fn size(&self) -> u64 {
        self.size
    }
    fn readonly(&self) -> bool {
        self.readonly
    }
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, off)
    }
    fn write_at(&mut self, buf: &[u8], off: u64) -> io::Result<()> {
        self.file.write_all_at(buf, off)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn discard(&mut self, off: u64, len: u64) -> io::Result<()> {
        fallocate(&self.file, libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, off, len).or_else(|_| zero_fill(&self.file, off, len))
    }
    fn write_zeroes(&mut self, off: u64, len: u64) -> io::Result<()> {
        fallocate(&self.file, libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE, off, len).or_else(|_| zero_fill(&self.file, off, len))
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
    fn raw_fd(&self) -> Option<std::os::unix::io::RawFd> {
        Some(self.file.as_raw_fd())
    }
}

/// A read-only image with guest writes redirected to `ferry-formats`' copy-on-write overlay
/// (the one `ferry convert` uses), whose data lives in an unlinked temp file.
struct Overlay {
    cow: CowOverlay<Box<dyn BlockDevice>>,
    readonly: bool,
    name: String,
}

impl Backend for Overlay {
    fn size(&self) -> u64 {
        self.cow.size()
    }
    fn readonly(&self) -> bool {
        self.readonly
    }
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        self.cow.read_at(buf, off).map_err(io_err)
    }
    fn write_at(&mut self, buf: &[u8], off: u64) -> io::Result<()> {
        self.cow.write_at(buf, off).map_err(io_err)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.cow.flush().map_err(io_err) // scratch space discarded at exit by design
    }
    fn discard(&mut self, off: u64, len: u64) -> io::Result<()> {
        self.cow.discard(off, len).map_err(io_err)
    }
    fn write_zeroes(&mut self, off: u64, len: u64) -> io::Result<()> {
        // A discarded overlay range reads back as zeros, which is what write-zeroes promises.
        self.cow.discard(off, len).map_err(io_err)
    }
    fn describe(&self) -> String {
        format!("{} (copy-on-write overlay)", self.name)
    }
}
