//! Front-to-back readers over any [`DiskSource`]: what the disk copy uses for sources it
//! cannot read at random offsets (members of compressed OVAs, gzip-wrapped files, chunks).

use super::archive::seek_to;
use crate::model::{ConfigError, Container, DiskSource};
use std::io::{self, BufReader, Read};

/// Opens a reader over the source's bytes, as stored (a `Gzip` source is decompressed).
pub fn open_stream(src: &DiskSource) -> Result<Box<dyn Read + Send>, ConfigError> {
    match src {
        DiskSource::File { path } | DiskSource::Block { path } => {
            Ok(Box::new(crate::disk::open_input(path).map(|(f, _)| f).map_err(|e| ConfigError::io(path, "open", e))?))
        }
        DiskSource::InPlace { archive, offset, length, .. } => {
            let mut f = crate::disk::open_input(archive).map(|(f, _)| f).map_err(|e| ConfigError::io(archive, "open", e))?;
            seek_to(&mut f, *offset, archive)?;
            Ok(Box::new(Exact { inner: f.take(*length), left: *length }))
        }
        DiskSource::Streamed { archive, container, offset, length, .. } => {
            let f = BufReader::new(crate::disk::open_input(archive).map(|(f, _)| f).map_err(|e| ConfigError::io(archive, "open", e))?);
            let mut r: Box<dyn Read + Send> = match container {
                Container::TarGz => Box::new(flate2::read::MultiGzDecoder::new(f)),
                Container::TarXz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(f)),
                Container::Zip => {
                    let mut f = f.into_inner();
                    seek_to(&mut f, *offset, archive)?;
                    let r = flate2::read::DeflateDecoder::new(BufReader::new(f));
                    return Ok(Box::new(Exact { inner: r.take(*length), left: *length }));
                }
            };
            let skipped = io::copy(&mut (&mut r).take(*offset), &mut io::sink()).map_err(|e| ConfigError::io(archive, "decompress", e))?;
            if skipped != *offset {
                return Err(ConfigError::invalid(archive, "member offset", offset, "archive ends before it"));
            }
            Ok(Box::new(Exact { inner: r.take(*length), left: *length }))
        }
        DiskSource::Chunked { chunks } => {
            let mut readers = Vec::new();
            for c in chunks {
                readers.push(open_stream(c)?);
            }
            Ok(Box::new(Chain { readers, index: 0 }))
        }
        DiskSource::Gzip { inner } => Ok(Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(open_stream(inner)?)))),
        DiskSource::SparseInPlace { archive, member, size, segments } => {
            let dev = super::sparse::SparseMember::open(archive, member, *size, segments)
                .map_err(|e| ConfigError::other(archive, e.to_string()))?;
            Ok(Box::new(super::sparse::DeviceReader { dev, pos: 0 }))
        }
        DiskSource::Blank { size } => Ok(Box::new(io::repeat(0).take(*size))),
        DiskSource::Unresolved { reference } => {
            Err(ConfigError::other(std::path::Path::new(reference), "disk location is not resolved on this host"))
        }
    }
}

/// Fails with UnexpectedEof if the inner reader ends before `left` bytes.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{} bytes missing: truncated archive", self.left)));
        }
        self.left = self.left.saturating_sub(n as u64);
        Ok(n)
    }
}

struct Chain {
    readers: Vec<Box<dyn Read + Send>>,
    index: usize,
}

impl Read for Chain {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(r) = self.readers.get_mut(self.index) {
            let n = r.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.index += 1;
        }
        Ok(0)
    }
}
