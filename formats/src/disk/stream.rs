use super::{inflate_grain, DiskError};
use std::path::Path;

/// The payload of one chunk of a sequentially read image.
#[derive(Debug)]
pub enum ChunkData {
    /// The bytes themselves; `len() == Chunk::length`.
    Plain(Vec<u8>),
    /// A compressed VMDK grain (zlib-wrapped or raw deflate) that inflates to `length` bytes.
    Grain(Vec<u8>),
    /// `length` bytes of zeros.
    Zero,
}

/// One piece of a disk read front to back. Chunks come in strictly ascending, non-overlapping
/// offset order; ranges never produced read as unallocated.
#[derive(Debug)]
pub struct Chunk {
    pub offset: u64,
    pub length: u64,
    pub data: ChunkData,
}

impl Chunk {
    /// Decodes the chunk to plain bytes (inflating grains), `length` bytes long.
    pub fn into_plain(self, path: &Path) -> Result<Vec<u8>, DiskError> {
        let len = usize::try_from(self.length)
            .map_err(|_| DiskError::invalid(path, "chunk length", self.length, "too large"))?;
        match self.data {
            ChunkData::Plain(v) => Ok(v),
            ChunkData::Zero => Ok(vec![0; len]),
            ChunkData::Grain(bytes) => {
                let mut out = vec![0; len];
                inflate_grain(path, self.offset / 512, &bytes, &mut out)?;
                Ok(out)
            }
        }
    }
}

/// A disk image that can only be read front to back (a streamOptimized VMDK coming out of a
/// compressed OVA). The conversion engine inflates its chunks in parallel.
pub trait StreamSource: Send {
    /// Virtual size in bytes, known from the header before any chunk.
    fn size(&self) -> u64;
    /// The name used in error messages.
    fn path(&self) -> &Path;
    /// The next chunk, or `None` at the end of the stream.
    fn next_chunk(&mut self) -> Result<Option<Chunk>, DiskError>;
}
