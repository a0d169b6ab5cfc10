use super::{check_range, coalesce, BlockDevice, DiskError, Extent, ExtentKind, ImageInfo, ReadOnlyFile};
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// A raw image file. Holes (found with SEEK_DATA / SEEK_HOLE) map as zero extents.
#[derive(Debug)]
pub struct RawImage {
    file: ReadOnlyFile,
}

impl RawImage {
    pub fn open(path: &Path) -> Result<Self, DiskError> {
        Ok(RawImage { file: ReadOnlyFile::open(path)? })
    }

    pub fn from_file(file: ReadOnlyFile) -> Self {
        RawImage { file }
    }

    fn seek(&self, offset: u64, whence: libc::c_int) -> Option<u64> {
        let off = libc::off_t::try_from(offset).ok()?;
        // SAFETY: lseek on a file descriptor we own; it only moves the (unused) file offset.
        let r = unsafe { libc::lseek(self.file.file().as_raw_fd(), off, whence) };
        u64::try_from(r).ok()
    }
}

impl BlockDevice for RawImage {
    fn size(&self) -> u64 {
        self.file.len()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        check_range(self.file.path(), offset, buf.len() as u64, self.size())?;
        self.file.read_exact_at(buf, offset, "data")
    }

    fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
        check_range(self.file.path(), offset, length, self.size())?;
        let end = offset + length;
        let mut out = Vec::new();
        let mut pos = offset;
        while pos < end {
            // Where does the next data start? No SEEK_DATA support: treat all as data.
            let data = match self.seek(pos, libc::SEEK_DATA) {
                Some(d) => d.min(end),
                None if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO) => end,
                None => pos,
            };
            if data > pos {
                out.push(Extent { offset: pos, length: data - pos, kind: ExtentKind::Zero });
                pos = data;
                continue;
            }
            let hole = self.seek(pos, libc::SEEK_HOLE).unwrap_or(end).clamp(pos + 1, end);
            out.push(Extent { offset: pos, length: hole - pos, kind: ExtentKind::Data });
            pos = hole;
        }
        Ok(coalesce(out))
    }

    fn info(&self) -> ImageInfo {
        ImageInfo {
            format: "raw".into(),
            virtual_size: self.size(),
            actual_size: self.file.allocated(),
            files: vec![self.file.path().to_path_buf()],
            ..Default::default()
        }
    }
}
