//! [`VolIo`]: a [`Volume`] as the `Read + Write + Seek` handle `btrfs-transaction` opens.

use crate::fs::Volume;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// A cursor over one volume; reads and writes go to the copy-on-write overlay beneath it.
pub struct VolIo<'a> {
    vol: Volume<'a>,
    pos: u64,
    name: String,
}

impl<'a> VolIo<'a> {
    pub fn new(vol: Volume<'a>, name: &str) -> Self {
        VolIo { vol, pos: 0, name: name.to_string() }
    }

    /// How many of `want` bytes lie inside the volume from the cursor.
    fn avail(&self, want: usize) -> usize {
        let left = self.vol.len().saturating_sub(self.pos);
        usize::try_from(left).map_or(want, |l| l.min(want))
    }
}

impl Read for VolIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.avail(buf.len());
        if n == 0 {
            return Ok(0);
        }
        self.vol.read(&mut buf[..n], self.pos, &self.name).map_err(io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for VolIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.avail(buf.len());
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::other(format!("{}: write at {} past the end of the filesystem ({} bytes)", self.name, self.pos, self.vol.len())));
        }
        self.vol.write(&buf[..n], self.pos, &self.name).map_err(io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for VolIo<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(o) => Some(o),
            SeekFrom::End(d) => self.vol.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start of the filesystem"))?;
        Ok(self.pos)
    }
}
