//! Adapters from a [`Device`] to the I/O traits filesystem crates want.

use crate::device::Device;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// `Read + Seek` (and a `Write` that always fails) over a device, for `fatfs` and `ntfs`.
pub(crate) struct Cursor {
    dev: Device,
    pos: u64,
}

impl Cursor {
    pub fn new(dev: Device) -> Self {
        Cursor { dev, pos: 0 }
    }
}

impl Read for Cursor {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.dev.size().saturating_sub(self.pos);
        let n = (buf.len() as u64).min(avail) as usize;
        if n == 0 {
            return Ok(0);
        }
        let out = buf.get_mut(..n).ok_or_else(|| io::Error::other("short buffer"))?;
        self.dev.dev.read_at(out, self.pos).map_err(io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Cursor {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(o) => Some(o),
            SeekFrom::End(d) => self.dev.size().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek out of range"))?;
        Ok(self.pos)
    }
}

impl Write for Cursor {
    fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::PermissionDenied, "source disks are read-only"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `positioned_io::ReadAt` over a device for the `ext4` crate, with an optional patched
/// copy of the superblock laid over bytes 1024..2048 (see `ext.rs`).
pub(crate) struct At {
    pub dev: Device,
    pub superblock: Option<Vec<u8>>,
}

impl positioned_io::ReadAt for At {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.dev.size().saturating_sub(pos);
        let n = (buf.len() as u64).min(avail) as usize;
        let out = buf.get_mut(..n).ok_or_else(|| io::Error::other("short buffer"))?;
        if n > 0 {
            self.dev.dev.read_at(out, pos).map_err(io::Error::other)?;
        }
        if let Some(sb) = &self.superblock {
            // Overlay [1024, 2048) ∩ [pos, pos+n).
            let start = pos.max(1024);
            let end = (pos + n as u64).min(2048);
            for p in start..end {
                if let (Some(d), Some(s)) = (out.get_mut((p - pos) as usize), sb.get((p - 1024) as usize)) {
                    *d = *s;
                }
            }
        }
        Ok(n)
    }
}
