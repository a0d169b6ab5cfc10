//! Refcount blocks streamed out in one ascending pass, and file preallocation; used by the
//! one-pass writer.
use crate::disk::DiskError;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Allocates the file's blocks up to `len` (posix_fallocate; writes zeros where unsupported).
pub fn allocate(file: &File, len: u64) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let l = libc::off_t::try_from(len).map_err(|_| std::io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: posix_fallocate on a descriptor we own; it only allocates blocks of the file.
    let r = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, l) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(r))
    }
}

/// Streams 16-bit refcount blocks out in ascending cluster order.
pub struct RefcountBlocks<'a> {
    file: &'a File,
    path: &'a Path,
    cs: u64,
    first_off: u64,
    count: u64,
    block: u64,
    entries: Vec<u16>,
}

impl<'a> RefcountBlocks<'a> {
    pub fn new(file: &'a File, path: &'a Path, cs: u64, first_off: u64, count: u64) -> Self {
        RefcountBlocks { file, path, cs, first_off, count, block: 0, entries: vec![0; (cs / 2) as usize] }
    }

    fn write_block(&mut self) -> Result<(), DiskError> {
        if self.block < self.count {
            let bytes: Vec<u8> = self.entries.iter().flat_map(|e| e.to_be_bytes()).collect();
            let at = self.first_off + self.block * self.cs;
            self.file.write_all_at(&bytes, at).map_err(|e| DiskError::io(self.path, "write refcounts", e))?;
        }
        self.entries.fill(0);
        self.block += 1;
        Ok(())
    }

    /// Adds one reference to each of `n` clusters from `first`; calls ascend.
    pub fn add(&mut self, first: u64, n: u64) -> Result<(), DiskError> {
        let per = self.cs / 2;
        for c in first..first + n {
            while c / per > self.block {
                self.write_block()?;
            }
            if let Some(e) = self.entries.get_mut((c % per) as usize) {
                *e = e.saturating_add(1);
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<(), DiskError> {
        while self.block < self.count {
            self.write_block()?;
        }
        Ok(())
    }
}
