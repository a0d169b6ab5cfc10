//! Where extent bytes come from: a read-only file, or memory (fuzzing and tests).
use crate::disk::{DiskError, ReadOnlyFile};
use std::path::{Path, PathBuf};

/// Positioned, bounds-checked reads of an extent file.
pub trait Source: Send + Sync {
    /// Length in bytes.
    fn len(&self) -> u64;
    /// Reads exactly `buf.len()` bytes at `offset`; past the end is an error naming `what`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64, what: &str) -> Result<(), DiskError>;
    /// Name used in errors.
    fn path(&self) -> &Path;
    /// Bytes allocated on the host.
    fn allocated(&self) -> u64 {
        self.len()
    }
    /// The underlying file, for hole detection (`None` in memory).
    fn file(&self) -> Option<&ReadOnlyFile> {
        None
    }
    /// Reads up to `buf.len()` bytes at `offset`, zero-filling what lies past the end.
    fn read_padded(&self, buf: &mut [u8], offset: u64, what: &str) -> Result<(), DiskError> {
        let avail = self.len().saturating_sub(offset).min(buf.len() as u64) as usize;
        let (head, tail) = buf.split_at_mut(avail);
        tail.fill(0);
        if avail > 0 {
            self.read_exact_at(head, offset, what)?;
        }
        Ok(())
    }
}

impl Source for ReadOnlyFile {
    fn len(&self) -> u64 {
        ReadOnlyFile::len(self)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64, what: &str) -> Result<(), DiskError> {
        ReadOnlyFile::read_exact_at(self, buf, offset, what)
    }
    fn path(&self) -> &Path {
        ReadOnlyFile::path(self)
    }
    fn allocated(&self) -> u64 {
        ReadOnlyFile::allocated(self)
    }
    fn file(&self) -> Option<&ReadOnlyFile> {
        Some(self)
    }
}

/// A byte range of a file (a VMDK stored in an uncompressed archive member).
pub struct SliceSource {
    pub file: ReadOnlyFile,
    pub offset: u64,
    pub len: u64,
    pub path: PathBuf,
}

impl Source for SliceSource {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64, what: &str) -> Result<(), DiskError> {
        if offset.checked_add(buf.len() as u64).is_none_or(|end| end > self.len) {
            return Err(DiskError::invalid(
                &self.path,
                what,
                format!("offset {offset} length {}", buf.len()),
                format!("past end of member ({} bytes)", self.len),
            ));
        }
        self.file.read_exact_at(buf, self.offset + offset, what)
    }
    fn path(&self) -> &Path {
        &self.path
    }
}

/// An extent held in memory.
pub struct MemSource {
    pub data: std::sync::Arc<[u8]>,
    pub path: PathBuf,
}

impl Source for MemSource {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64, what: &str) -> Result<(), DiskError> {
        let src = usize::try_from(offset).ok().and_then(|o| self.data.get(o..o.checked_add(buf.len())?)).ok_or_else(
            || {
                DiskError::invalid(
                    &self.path,
                    what,
                    format!("offset {offset} length {}", buf.len()),
                    format!("past end of file ({} bytes)", self.data.len()),
                )
            },
        )?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn path(&self) -> &Path {
        &self.path
    }
}

/// Little-endian field readers over a header buffer (callers pass fixed-size buffers).
pub fn le32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

/// See [`le32`].
pub fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// See [`le32`].
pub fn le16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}
