//! A small read cache under the conversion overlay. Inspection and the filesystem code read
//! the source in 1-4 KiB pieces; on a compressed source (a streamOptimized VMDK read in place
//! from an OVA) each such read would inflate a whole 64 KiB grain again. Small reads are served
//! from whole aligned chunks kept in a bounded LRU; reads of a chunk or more (the final copy)
//! go straight to the source.

use ferry_formats::disk::{BlockDevice, DiskError, Extent, ImageInfo};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Cached unit, a multiple of every grain and cluster size the readers use.
const CHUNK: u64 = 64 << 10;
/// Chunks kept (16 MiB).
const CHUNKS: usize = 256;

#[derive(Default)]
struct Lru {
    data: HashMap<u64, Vec<u8>>,
    order: VecDeque<u64>,
}

/// `inner` with small reads cached.
pub struct ReadCache<B: BlockDevice> {
    inner: B,
    lru: Mutex<Lru>,
}

impl<B: BlockDevice> ReadCache<B> {
    pub fn new(inner: B) -> Self {
        ReadCache {
            inner,
            lru: Mutex::new(Lru::default()),
        }
    }

    /// Copies bytes of chunk `index` from `within` into `out` (as many as the chunk has);
    /// reads and caches the chunk first when needed. Returns the count copied.
    fn copy_from_chunk(&self, index: u64, within: usize, out: &mut [u8]) -> Result<usize, DiskError> {
        let copy = |c: &[u8], out: &mut [u8]| {
            let n = out.len().min(c.len().saturating_sub(within));
            if n > 0 {
                out[..n].copy_from_slice(&c[within..within + n]);
            }
            n
        };
        if let Some(c) = self.lru.lock().unwrap_or_else(|p| p.into_inner()).data.get(&index) {
            return Ok(copy(c, out));
        }
        let start = index * CHUNK;
        let len = CHUNK.min(self.inner.size().saturating_sub(start));
        let mut buf = vec![0u8; len as usize];
        self.inner.read_at(&mut buf, start)?;
        let n = copy(&buf, out);
        let mut lru = self.lru.lock().unwrap_or_else(|p| p.into_inner());
        if lru.data.insert(index, buf).is_none() {
            lru.order.push_back(index);
        }
        while lru.order.len() > CHUNKS {
            if let Some(old) = lru.order.pop_front() {
                lru.data.remove(&old);
            }
        }
        Ok(n)
    }
}

impl<B: BlockDevice> BlockDevice for ReadCache<B> {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        if buf.len() as u64 >= CHUNK {
            return self.inner.read_at(buf, offset);
        }
        ferry_formats::disk::check_range(std::path::Path::new("cache"), offset, buf.len() as u64, self.size())?;
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let n = self.copy_from_chunk(at / CHUNK, (at % CHUNK) as usize, &mut buf[done..])?;
            if n == 0 {
                return Err(DiskError::OutOfRange {
                    path: "cache".into(),
                    offset,
                    length: buf.len() as u64,
                    size: self.size(),
                });
            }
            done += n;
        }
        Ok(())
    }

    fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
        self.inner.map(offset, length)
    }

    fn info(&self) -> ImageInfo {
        self.inner.info()
    }

    fn granularity(&self) -> u64 {
        self.inner.granularity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A patterned device that counts its reads.
    struct Counted(Vec<u8>, AtomicUsize);

    impl BlockDevice for Counted {
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
            self.1.fetch_add(1, Ordering::Relaxed);
            let o = offset as usize;
            buf.copy_from_slice(&self.0[o..o + buf.len()]);
            Ok(())
        }
        fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
            Ok(vec![Extent {
                offset,
                length,
                kind: ferry_formats::ExtentKind::Data,
            }])
        }
        fn info(&self) -> ImageInfo {
            ImageInfo::default()
        }
    }

    #[test]
    fn small_reads_come_from_cached_chunks_and_match_the_source() {
        let data: Vec<u8> = (0..(3 * CHUNK + 1000)).map(|i| (i * 7 % 251) as u8).collect();
        let c = ReadCache::new(Counted(data.clone(), AtomicUsize::new(0)));
        // Reads inside one chunk, across a boundary, and in the short last chunk.
        for (off, len) in [(10u64, 100usize), (CHUNK - 50, 100), (3 * CHUNK + 900, 100), (20, 4000)] {
            let mut b = vec![0u8; len];
            c.read_at(&mut b, off).unwrap();
            assert_eq!(b, &data[off as usize..off as usize + len]);
        }
        assert_eq!(c.inner.1.load(Ordering::Relaxed), 3, "chunks 0, 1 and 3 read once each");
        let mut big = vec![0u8; CHUNK as usize];
        c.read_at(&mut big, 5).unwrap();
        assert_eq!(big, &data[5..5 + CHUNK as usize]);
        assert_eq!(
            c.inner.1.load(Ordering::Relaxed),
            4,
            "a chunk-sized read goes straight through"
        );
        let mut past = vec![0u8; 10];
        assert!(c.read_at(&mut past, 3 * CHUNK + 995).is_err());
    }
}
