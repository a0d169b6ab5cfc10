use super::DiskError;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A source file opened read-only, with positioned reads that name the file on error.
#[derive(Debug)]
pub struct ReadOnlyFile {
    file: File,
    path: PathBuf,
    len: u64,
}

/// Every source file this process has opened, by (device, inode): outputs are checked
/// against it so that no output ever replaces a source or a file of its chain.
static OPENED: Mutex<Option<HashMap<(u64, u64), PathBuf>>> = Mutex::new(None);

/// A file identity: (device, inode).
pub type FileId = (u64, u64);

/// The source file with identity `id` opened so far by this process, if any.
pub fn opened_source(id: FileId) -> Option<PathBuf> {
    OPENED.lock().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|m| m.get(&id).cloned())
}

/// Every source file opened so far by this process (a disk's whole chain once it is opened).
pub fn opened_sources() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = OPENED.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|m| m.values().cloned().collect()).unwrap_or_default();
    v.sort();
    v
}

/// Records `path` as a source (the description files a reader opens, for instance).
pub fn note_source(id: FileId, path: &Path) {
    OPENED.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(HashMap::new).entry(id).or_insert_with(|| path.to_path_buf());
}

/// Opens `path` read-only for input without blocking: `O_NONBLOCK` keeps a FIFO from
/// hanging `open()`, and anything but a regular file or a block device is refused. The file
/// is recorded as a source (see [`opened_source`]). Returns the file and its length.
pub fn open_input(path: &Path) -> std::io::Result<(File, u64)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    let ft = meta.file_type();
    let len = if ft.is_file() {
        meta.len()
    } else if ft.is_block_device() {
        block_len(&file)?
    } else {
        let what = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_dir() {
            "a directory"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_char_device() {
            "a character device"
        } else {
            "not a file"
        };
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("is {what}, not a regular file or block device"),
        ));
    };
    note_source((meta.dev(), meta.ino()), path);
    Ok((file, len))
}

/// A block device's size (its metadata says 0).
fn block_len(file: &File) -> std::io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let mut f = file;
    f.seek(SeekFrom::End(0))
}

impl ReadOnlyFile {
    pub fn open(path: &Path) -> Result<Self, DiskError> {
        let (file, len) = open_input(path).map_err(|e| DiskError::io(path, "open", e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fifo");
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a NUL-terminated path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = ReadOnlyFile::open(&p).unwrap_err().to_string();
        assert!(e.contains("is a FIFO, not a regular file or block device"), "{e}");
        let e = ReadOnlyFile::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
    }

    #[test]
    fn opened_files_are_recorded_by_inode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        std::fs::write(&p, b"x").unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert!(opened_source((m.dev(), m.ino())).is_none());
        ReadOnlyFile::open(&p).unwrap();
        assert_eq!(opened_source((m.dev(), m.ino())), Some(p));
    }
}
