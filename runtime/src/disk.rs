//! Disk backends for virtio-blk: raw and qcow2 files read-write in place, and any image
//! `ferry-formats` reads (VMDK) served read-only or through a copy-on-write overlay in an
//! unlinked temp file.
use ferry_formats::disk::{open_image, BlockDevice, ImageFormat, WritableDevice};
use ferry_formats::qcow2::Qcow2Rw;
use std::collections::BTreeSet;
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
            Ok(Box::new(Overlay::new(base, readonly, name).map_err(|e| DiskOpenError::Io("overlay".into(), e))?))
        }
        other => Err(DiskOpenError::Format(name, other.to_string())),
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
}

const BLOCK: u64 = 4096;

/// A read-only image with guest writes redirected, 4 KiB at a time, to an unlinked temp file.
struct Overlay {
    base: Box<dyn BlockDevice>,
    top: File,
    written: BTreeSet<u64>,
    readonly: bool,
    name: String,
}

impl Overlay {
    fn new(base: Box<dyn BlockDevice>, readonly: bool, name: String) -> io::Result<Self> {
        Ok(Overlay { base, top: tempfile::tempfile()?, written: BTreeSet::new(), readonly, name })
    }
    fn base_read(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        self.base.read_at(buf, off).map_err(|e| io::Error::other(e.to_string()))
    }
}

impl Backend for Overlay {
    fn size(&self) -> u64 {
        self.base.size()
    }
    fn readonly(&self) -> bool {
        self.readonly
    }
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let pos = off + done as u64;
            let blk = pos / BLOCK;
            let n = ((BLOCK - pos % BLOCK) as usize).min(buf.len() - done);
            let dst = &mut buf[done..done + n];
            if self.written.contains(&blk) {
                self.top.read_exact_at(dst, pos)?;
            } else {
                self.base_read(dst, pos)?;
            }
            done += n;
        }
        Ok(())
    }
    fn write_at(&mut self, buf: &[u8], off: u64) -> io::Result<()> {
        let mut done = 0usize;
        let mut block = vec![0u8; BLOCK as usize];
        while done < buf.len() {
            let pos = off + done as u64;
            let blk = pos / BLOCK;
            let within = (pos % BLOCK) as usize;
            let n = (BLOCK as usize - within).min(buf.len() - done);
            if !self.written.contains(&blk) && n < BLOCK as usize {
                let start = blk * BLOCK;
                let len = (self.size() - start).min(BLOCK) as usize;
                self.base_read(&mut block[..len], start)?;
                self.top.write_all_at(&block[..len], start)?;
            }
            self.top.write_all_at(&buf[done..done + n], pos)?;
            self.written.insert(blk);
            done += n;
        }
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(()) // the overlay is discarded at exit by design
    }
    fn discard(&mut self, off: u64, len: u64) -> io::Result<()> {
        self.write_zeroes(off, len)
    }
    fn write_zeroes(&mut self, off: u64, len: u64) -> io::Result<()> {
        let zeros = vec![0u8; len.min(1 << 20) as usize];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(zeros.len() as u64) as usize;
            self.write_at(&zeros[..n], off + done)?;
            done += n as u64;
        }
        Ok(())
    }
    fn describe(&self) -> String {
        format!("{} (copy-on-write overlay)", self.name)
    }
}
