//! FAT (the EFI system partition) through the `fatfs` crate, over a partition window.

use super::{FsError, Volume};
use std::io::{Error, ErrorKind, Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

/// A partition window as a `Read + Write + Seek` stream, for `fatfs::FileSystem::new`.
pub struct VolumeStream<'a> {
    vol: Volume<'a>,
    pos: u64,
    name: String,
    /// Where "." short entries were written (see [`Fat`]).
    dots: Option<Arc<Mutex<Vec<u64>>>>,
}

impl<'a> VolumeStream<'a> {
    /// A stream over the whole window, positioned at its start.
    pub fn new(vol: Volume<'a>, name: &str) -> Self {
        VolumeStream { vol, pos: 0, name: name.to_string(), dots: None }
    }

    fn span(&self, want: usize) -> usize {
        want.min(self.vol.len().saturating_sub(self.pos) as usize)
    }
}

fn io_err(e: FsError) -> Error {
    Error::other(e.to_string())
}

impl Read for VolumeStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.span(buf.len());
        self.vol.read(&mut buf[..n], self.pos, &self.name).map_err(io_err)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for VolumeStream<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.span(buf.len());
        if n == 0 && !buf.is_empty() {
            return Err(Error::new(
                ErrorKind::WriteZero,
                format!("{}: write past the end of the partition", self.name),
            ));
        }
        self.vol.write(&buf[..n], self.pos, &self.name).map_err(io_err)?;
        if let (Some(dots), true) = (&self.dots, buf == DOT) {
            dots.lock().unwrap_or_else(|p| p.into_inner()).push(self.pos);
        }
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for VolumeStream<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.vol.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(p) if p <= self.vol.len() => {
                self.pos = p;
                Ok(p)
            }
            _ => Err(Error::new(ErrorKind::InvalidInput, format!("{}: seek outside the partition", self.name))),
        }
    }
}

/// A FAT filesystem (the EFI system partition) opened for editing in a partition window.
///
/// fatfs 0.3.6 writes long-name entries in front of the "." and ".." entries of directories
/// it creates, which fsck.fat rejects ("Expected a valid '.' entry in this slot"). Every
/// directory created here is therefore repaired right after creation: the stream records
/// where the "." short entry was written, and the first four slots of the new directory
/// (long "." / "." / long ".." / "..") become "." / ".." / end-of-directory.
pub struct Fat<'a> {
    fs: fatfs::FileSystem<VolumeStream<'a>>,
    vol: Volume<'a>,
    name: String,
    dots: Arc<Mutex<Vec<u64>>>,
}

const DOT: &[u8; 11] = b".          ";
const DOTDOT: &[u8; 11] = b"..         ";

impl<'a> Fat<'a> {
    /// Opens the FAT filesystem in `vol`; `name` prefixes errors.
    pub fn open(vol: Volume<'a>, name: &str) -> Result<Self, FsError> {
        let dots = Arc::new(Mutex::new(Vec::new()));
        let stream = VolumeStream { vol, pos: 0, name: name.to_string(), dots: Some(dots.clone()) };
        let fs = fatfs::FileSystem::new(stream, fatfs::FsOptions::new().update_accessed_date(false))
            .map_err(|e| FsError::Fat { fs: name.to_string(), message: e.to_string() })?;
        Ok(Fat { fs, vol, name: name.to_string(), dots })
    }

    fn err(&self, path: &str, e: impl std::fmt::Display) -> FsError {
        FsError::Fat { fs: self.name.clone(), message: format!("{path}: {e}") }
    }

    /// The underlying fatfs filesystem, for reads and listings.
    pub fn fs(&self) -> &fatfs::FileSystem<VolumeStream<'a>> {
        &self.fs
    }

    fn take_dots(&self) -> Vec<u64> {
        std::mem::take(&mut *self.dots.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Creates directory `name` in `parent` (or opens it if it exists) with valid "." and "..".
    fn ensure_dir<'b>(
        &'b self,
        parent: &fatfs::Dir<'b, VolumeStream<'a>>,
        name: &str,
        path: &str,
    ) -> Result<fatfs::Dir<'b, VolumeStream<'a>>, FsError> {
        match parent.open_dir(name) {
            Ok(d) => return Ok(d),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(self.err(path, e)),
        }
        self.take_dots();
        let dir = parent.create_dir(name).map_err(|e| self.err(path, e))?;
        let dots = self.take_dots();
        let [dot] = dots[..] else {
            return Err(
                self.err(path, format!("unexpected directory layout written by fatfs ({} '.' entries)", dots.len()))
            );
        };
        let start = dot.checked_sub(32).ok_or_else(|| self.err(path, "'.' entry at the start of the partition"))?;
        let mut slots = [0u8; 128];
        self.vol.read(&mut slots, start, &self.name)?;
        let lfn = |i: usize| slots[i * 32 + 11] == 0x0F;
        if !(lfn(0) && &slots[32..43] == DOT && lfn(2) && &slots[96..107] == DOTDOT) {
            return Err(self.err(path, "unexpected directory layout written by fatfs"));
        }
        let mut fixed = [0u8; 128];
        fixed[..32].copy_from_slice(&slots[32..64]);
        fixed[32..64].copy_from_slice(&slots[96..128]);
        self.vol.write(&fixed, start, &self.name)?;
        Ok(dir)
    }

    /// Writes (creating or replacing) `path`, creating missing directories.
    pub fn write_file(&self, path: &str, data: &[u8]) -> Result<(), FsError> {
        let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        let Some((file, dirs)) = parts.split_last() else {
            return Err(self.err(path, "empty path"));
        };
        let mut dir = self.fs.root_dir();
        for d in dirs {
            dir = self.ensure_dir(&dir, d, path)?;
        }
        let mut f = dir.create_file(file).map_err(|e| self.err(path, e))?;
        f.truncate().map_err(|e| self.err(path, e))?;
        f.write_all(data).map_err(|e| self.err(path, e))?;
        f.flush().map_err(|e| self.err(path, e))
    }

    /// Creates `path` and any missing parent directories.
    pub fn create_dir_all(&self, path: &str) -> Result<(), FsError> {
        let mut dir = self.fs.root_dir();
        for d in path.split('/').filter(|c| !c.is_empty()) {
            dir = self.ensure_dir(&dir, d, path)?;
        }
        Ok(())
    }

    /// Reads `path`; files above `max` bytes are refused.
    pub fn read_file(&self, path: &str, max: u64) -> Result<Vec<u8>, FsError> {
        let mut f = self.fs.root_dir().open_file(path.trim_start_matches('/')).map_err(|e| self.err(path, e))?;
        let mut out = Vec::new();
        (&mut f).take(max + 1).read_to_end(&mut out).map_err(|e| self.err(path, e))?;
        if out.len() as u64 > max {
            return Err(self.err(path, format!("larger than {max} bytes")));
        }
        Ok(out)
    }

    /// Removes a file or an empty directory.
    pub fn remove(&self, path: &str) -> Result<(), FsError> {
        self.fs.root_dir().remove(path.trim_start_matches('/')).map_err(|e| self.err(path, e))
    }

    /// Flushes the filesystem's state (FSInfo, dirty flag) and closes it.
    pub fn unmount(self) -> Result<(), FsError> {
        let name = self.name.clone();
        self.fs.unmount().map_err(|e| FsError::Fat { fs: name, message: e.to_string() })
    }
}
