//! FAT (the EFI system partition) through the `fatfs` crate, over a partition window.

use super::{FsError, Volume};
use std::io::{Error, ErrorKind, Read, Seek, SeekFrom, Write};

/// A partition window as a `Read + Write + Seek` stream, for `fatfs::FileSystem::new`.
pub struct VolumeStream<'a> {
    vol: Volume<'a>,
    pos: u64,
    name: String,
}

impl<'a> VolumeStream<'a> {
    pub fn new(vol: Volume<'a>, name: &str) -> Self {
        VolumeStream { vol, pos: 0, name: name.to_string() }
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
            return Err(Error::new(ErrorKind::WriteZero, format!("{}: write past the end of the partition", self.name)));
        }
        self.vol.write(&buf[..n], self.pos, &self.name).map_err(io_err)?;
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

/// A FAT filesystem opened for editing in a partition window.
pub type FatFs<'a> = fatfs::FileSystem<VolumeStream<'a>>;

/// Opens the FAT filesystem in `vol`; `name` prefixes errors.
pub fn open_fat<'a>(vol: Volume<'a>, name: &str) -> Result<FatFs<'a>, FsError> {
    fatfs::FileSystem::new(VolumeStream::new(vol, name), fatfs::FsOptions::new())
        .map_err(|e| FsError::Fat { fs: name.to_string(), message: e.to_string() })
}

/// Writes (creating or replacing) `path` in a FAT filesystem, creating missing directories.
pub fn fat_write_file(fs: &FatFs, path: &str, data: &[u8], name: &str) -> Result<(), FsError> {
    let err = |e: Error| FsError::Fat { fs: name.to_string(), message: format!("{path}: {e}") };
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let Some((file, dirs)) = parts.split_last() else {
        return Err(FsError::Fat { fs: name.to_string(), message: format!("{path}: empty path") });
    };
    let mut dir = fs.root_dir();
    for d in dirs {
        dir = match dir.open_dir(d) {
            Ok(x) => x,
            Err(e) if e.kind() == ErrorKind::NotFound => dir.create_dir(d).map_err(err)?,
            Err(e) => return Err(err(e)),
        };
    }
    let mut f = dir.create_file(file).map_err(err)?;
    f.truncate().map_err(err)?;
    f.write_all(data).map_err(err)?;
    f.flush().map_err(err)
}

/// Reads `path` from a FAT filesystem; files above `max` bytes are refused.
pub fn fat_read_file(fs: &FatFs, path: &str, max: u64, name: &str) -> Result<Vec<u8>, FsError> {
    let err = |e: Error| FsError::Fat { fs: name.to_string(), message: format!("{path}: {e}") };
    let mut f = fs.root_dir().open_file(path.trim_start_matches('/')).map_err(err)?;
    let mut out = Vec::new();
    (&mut f).take(max + 1).read_to_end(&mut out).map_err(err)?;
    if out.len() as u64 > max {
        return Err(FsError::Fat { fs: name.to_string(), message: format!("{path}: larger than {max} bytes") });
    }
    Ok(out)
}
