//! streamOptimized read front to back from a non-seekable stream (an OVA inside a gzip'd tar):
//! the header, then grain markers (which carry their LBA) up to the end-of-stream marker.
use super::header::{SparseHeader, MARKER_EOS};
use super::source::{le32, le64};
use crate::disk::{Chunk, ChunkData, DiskError, StreamSource};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Sequential reader of a streamOptimized VMDK.
pub struct StreamReader {
    reader: Box<dyn Read + Send>,
    path: PathBuf,
    header: SparseHeader,
    /// Bytes consumed so far (for error messages).
    pos: u64,
    /// Disk offset the next grain must start at or after.
    next_min: u64,
    done: bool,
}

impl StreamReader {
    /// Reads and checks the header, then skips to the first grain (`overHead`).
    pub fn new(reader: Box<dyn Read + Send>, name: PathBuf) -> Result<Self, DiskError> {
        let mut s =
            StreamReader { reader, path: name, header: SparseHeader::default(), pos: 0, next_min: 0, done: false };
        let mut b = [0u8; 512];
        if !s.fill(&mut b, "header")? {
            return Err(DiskError::invalid(&s.path, "header", "0 bytes", "empty stream"));
        }
        let h = SparseHeader::decode(&s.path, &b)?;
        h.validate(&s.path, u64::MAX)?;
        if !h.compressed() || !h.markers() {
            return Err(DiskError::invalid(
                &s.path,
                "flags",
                format!("{:#x}", h.flags),
                "not a streamOptimized VMDK (needs compressed grains with markers)",
            ));
        }
        s.header = h;
        let skip = s.header.overhead.saturating_mul(512).saturating_sub(512);
        s.skip(skip, "metadata before the first grain")?;
        Ok(s)
    }

    /// The decoded header.
    pub fn header(&self) -> &SparseHeader {
        &self.header
    }

    /// Fills `buf`; false at a clean end of stream before any byte, error on a partial read.
    fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<bool, DiskError> {
        let mut got = 0;
        while got < buf.len() {
            match self.reader.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(DiskError::io(&self.path, "read", e)),
            }
        }
        self.pos += got as u64;
        if got == 0 {
            return Ok(false);
        }
        if got < buf.len() {
            return Err(DiskError::invalid(
                &self.path,
                what,
                format!("at byte {}", self.pos - got as u64),
                format!("stream ends after {got} of {} bytes", buf.len()),
            ));
        }
        Ok(true)
    }

    fn skip(&mut self, n: u64, what: &str) -> Result<(), DiskError> {
        let copied = std::io::copy(&mut (&mut self.reader).take(n), &mut std::io::sink())
            .map_err(|e| DiskError::io(&self.path, "read", e))?;
        self.pos += copied;
        if copied < n {
            return Err(DiskError::invalid(
                &self.path,
                what,
                format!("{n} bytes at byte {}", self.pos - copied),
                "stream ends early",
            ));
        }
        Ok(())
    }
}

impl StreamSource for StreamReader {
    fn size(&self) -> u64 {
        self.header.capacity * 512
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, DiskError> {
        let grain = self.header.grain_size * 512;
        let max = 2 * grain + 4096;
        while !self.done {
            let at = self.pos;
            let mut m = [0u8; 512];
            if !self.fill(&mut m, "marker")? {
                self.done = true;
                break;
            }
            let (val, size, kind) = (le64(&m, 0), u64::from(le32(&m, 8)), le32(&m, 12));
            if size == 0 {
                if kind == MARKER_EOS {
                    self.done = true;
                    break;
                }
                // GT, GD, FOOTER, PROGRESS or unknown metadata: skip its sectors.
                self.skip(val.saturating_mul(512), "metadata block")?;
                continue;
            }
            if size > max {
                return Err(DiskError::invalid(
                    &self.path,
                    "grain marker size",
                    size,
                    format!("at byte {at}: more than {max} bytes"),
                ));
            }
            let offset = val.checked_mul(512).filter(|&o| o < self.size()).ok_or_else(|| {
                DiskError::invalid(
                    &self.path,
                    "grain marker LBA",
                    val,
                    format!("at byte {at}: past the disk's {} sectors", self.header.capacity),
                )
            })?;
            if offset < self.next_min {
                return Err(DiskError::invalid(
                    &self.path,
                    "grain marker LBA",
                    val,
                    format!("at byte {at}: out of order (previous grain ends at sector {})", self.next_min / 512),
                ));
            }
            let total = (12 + size).div_ceil(512) * 512;
            let mut data = Vec::with_capacity(total as usize);
            data.extend_from_slice(&m);
            data.resize(total as usize, 0);
            if total > 512 && !self.fill(&mut data[512..], "grain data")? {
                return Err(DiskError::invalid(
                    &self.path,
                    "grain data",
                    format!("at byte {at}"),
                    "stream ends inside a grain",
                ));
            }
            data.truncate(12 + size as usize);
            data.drain(..12);
            let length = grain.min(self.size() - offset);
            self.next_min = offset + length;
            return Ok(Some(Chunk { offset, length, data: ChunkData::Grain(data) }));
        }
        Ok(None)
    }
}
