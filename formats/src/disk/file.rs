use super::DiskError;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A source file opened read-only, with positioned reads that name the file on error.
#[derive(Debug)]
pub struct ReadOnlyFile {
    file: File,
    path: PathBuf,
    len: u64,
}

impl ReadOnlyFile {
    pub fn open(path: &Path) -> Result<Self, DiskError> {
        let file = File::open(path).map_err(|e| DiskError::io(path, "open", e))?;
        let len = file.metadata().map_err(|e| DiskError::io(path, "stat", e))?.len();
        Ok(ReadOnlyFile { file, path: path.to_path_buf(), len })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Bytes the file occupies on the host (st_blocks * 512).
    pub fn allocated(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        self.file.metadata().map(|m| m.blocks() * 512).unwrap_or(0)
    }

    /// Reads exactly `buf.len()` bytes at `offset`; a short file is an error naming `what`.
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64, what: &str) -> Result<(), DiskError> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|end| end > self.len) {
            return Err(DiskError::invalid(
                &self.path,
                what,
                format!("offset {offset} length {}", buf.len()),
                format!("past end of file ({} bytes)", self.len),
            ));
        }
        self.file.read_exact_at(buf, offset).map_err(|e| DiskError::io(&self.path, "read", e))
    }
}
