//! A window (one partition) of a writable device.

use super::FsError;
use ferry_formats::disk::{DiskError, WritableDevice};
use std::path::Path;

/// `len` bytes of `dev` starting at `start`: one filesystem's partition.
#[derive(Clone, Copy)]
pub struct Volume<'a> {
    dev: &'a dyn WritableDevice,
    start: u64,
    len: u64,
}

impl<'a> Volume<'a> {
    /// The window `[start, start + len)` of `dev`; it must lie inside the device.
    pub fn new(dev: &'a dyn WritableDevice, start: u64, len: u64, name: &str) -> Result<Self, FsError> {
        match start.checked_add(len) {
            Some(end) if end <= dev.size() => Ok(Volume { dev, start, len }),
            _ => Err(DiskError::OutOfRange {
                path: Path::new(name).to_path_buf(),
                offset: start,
                length: len,
                size: dev.size(),
            }
            .into()),
        }
    }

    /// Length of the window in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty window.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, off: u64, n: usize, name: &str) -> Result<u64, FsError> {
        match off.checked_add(n as u64) {
            Some(end) if end <= self.len => Ok(self.start + off),
            _ => Err(FsError::Invalid {
                fs: name.to_string(),
                field: "offset".into(),
                value: format!("{off}+{n}"),
                reason: format!("outside the filesystem ({} bytes)", self.len),
            }),
        }
    }

    /// Reads `buf.len()` bytes at `off` within the window.
    pub fn read(&self, buf: &mut [u8], off: u64, name: &str) -> Result<(), FsError> {
        let at = self.check(off, buf.len(), name)?;
        Ok(self.dev.read_at(buf, at)?)
    }

    /// Writes `buf` at `off` within the window.
    pub fn write(&self, buf: &[u8], off: u64, name: &str) -> Result<(), FsError> {
        let at = self.check(off, buf.len(), name)?;
        Ok(self.dev.write_at(buf, at)?)
    }
}
