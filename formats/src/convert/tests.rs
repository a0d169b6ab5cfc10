//! Unit tests of the conversion engine with hand-made sources; the output is read back with
//! Ferry's own readers here (the integration tests use qemu-img as the oracle).
use super::*;
use crate::disk::{open_image, Chunk, ChunkData, Extent, ExtentKind, ImageFormat, ImageInfo};
use flate2::{Compress, Compression, FlushCompress};

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|i| {
            if i % 3000 < 1000 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            } else {
                (i / 100) as u8
            }
        })
        .collect()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::fast(), true);
    let mut out = Vec::with_capacity(data.len() + 1024);
    c.compress_vec(data, &mut out, FlushCompress::Finish).unwrap();
    out
}

/// A stream source over prepared chunks that fails after `fail_after` chunks.
struct Chunks {
    size: u64,
    chunks: std::vec::IntoIter<Chunk>,
    fail_after: Option<usize>,
    served: usize,
}

impl StreamSource for Chunks {
    fn size(&self) -> u64 {
        self.size
    }
    fn path(&self) -> &Path {
        Path::new("test-stream")
    }
    fn next_chunk(&mut self) -> Result<Option<Chunk>, DiskError> {
        if self.fail_after == Some(self.served) {
            return Err(DiskError::invalid(Path::new("test-stream"), "grain marker", self.served, "broken on purpose"));
        }
        self.served += 1;
        Ok(self.chunks.next())
    }
}

/// The disk the stream describes, and the stream: aligned compressed grains, a misaligned
/// plain chunk straddling clusters, a zero chunk, and a short tail.
fn stream_disk() -> (Vec<u8>, Vec<Chunk>) {
    let size = 5 * 65536 * 40 + 1000;
    let mut disk = vec![0u8; size];
    let mut chunks = Vec::new();
    for g in [0usize, 1, 7, 8, 20, 33] {
        let data = pattern(65536, g as u32);
        disk[g * 65536..(g + 1) * 65536].copy_from_slice(&data);
        let bytes = deflate(&data);
        chunks.push(Chunk { offset: (g * 65536) as u64, length: 65536, data: ChunkData::Grain(bytes) });
    }
    chunks.insert(4, Chunk { offset: 9 * 65536, length: 65536 * 3, data: ChunkData::Zero });
    let odd = pattern(70000, 99);
    let at = 34 * 65536 + 1234;
    disk[at..at + odd.len()].copy_from_slice(&odd);
    chunks.push(Chunk { offset: at as u64, length: odd.len() as u64, data: ChunkData::Plain(odd) });
    let tail = pattern(1000, 7);
    disk[size - 1000..].copy_from_slice(&tail);
    chunks.push(Chunk { offset: (size - 1000) as u64, length: 1000, data: ChunkData::Plain(tail) });
    (disk, chunks)
}

fn read_all(path: &Path, format: ImageFormat) -> Vec<u8> {
    let img = open_image(path, Some(format)).unwrap();
    let mut out = vec![0u8; img.size() as usize];
    img.read_at(&mut out, 0).unwrap();
    out
}

#[test]
fn stream_source_to_qcow2_and_raw() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, _) = stream_disk();
    for (format, compression, name) in [
        (OutputFormat::Qcow2, None, "plain.qcow2"),
        (OutputFormat::Qcow2, Some(CompressionType::Zlib), "zlib.qcow2"),
        (OutputFormat::Qcow2, Some(CompressionType::Zstd), "zstd.qcow2"),
        (OutputFormat::Raw, None, "out.raw"),
    ] {
        let (_, chunks) = stream_disk();
        let src = Chunks { size: disk.len() as u64, chunks: chunks.into_iter(), fail_after: None, served: 0 };
        let out = dir.path().join(name);
        let opts = ConvertOptions { format, compression, batch_bytes: 100_000, ..Default::default() };
        let seen = std::sync::Mutex::new(0u64);
        let stats = convert(Source::Stream(Box::new(src)), &out, &opts, &|d, t| {
            assert!(d <= t);
            *seen.lock().unwrap() = d;
        })
        .unwrap();
        assert_eq!(*seen.lock().unwrap(), disk.len() as u64);
        assert_eq!(stats.virtual_size, disk.len() as u64);
        let fmt = if format == OutputFormat::Raw { ImageFormat::Raw } else { ImageFormat::Qcow2 };
        assert!(read_all(&out, fmt) == disk, "{name} differs from the stream's disk");
        if compression.is_some() {
            assert!(stats.compressed_clusters > 0);
        }
    }
}

#[test]
fn failing_source_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, chunks) = stream_disk();
    let src = Chunks { size: disk.len() as u64, chunks: chunks.into_iter(), fail_after: Some(5), served: 0 };
    let out = dir.path().join("out.qcow2");
    let opts = ConvertOptions { batch_bytes: 65536, ..Default::default() };
    let err = convert(Source::Stream(Box::new(src)), &out, &opts, &|_, _| {}).unwrap_err();
    assert_eq!(err.to_string(), "test-stream: invalid grain marker 5: broken on purpose");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A device that reads a pattern but fails past `bad`.
struct Flaky {
    size: u64,
    bad: u64,
}

impl BlockDevice for Flaky {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        if offset + buf.len() as u64 > self.bad {
            return Err(DiskError::invalid(Path::new("flaky"), "sector", offset / 512, "unreadable"));
        }
        buf.fill(0x5a);
        Ok(())
    }
    fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
        Ok(vec![Extent { offset, length, kind: ExtentKind::Data }])
    }
    fn info(&self) -> ImageInfo {
        ImageInfo::default()
    }
}

#[test]
fn failing_device_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.raw");
    std::fs::write(&out, b"old").unwrap();
    let dev = Flaky { size: 64 << 20, bad: 40 << 20 };
    for format in [OutputFormat::Raw, OutputFormat::Qcow2] {
        let opts = ConvertOptions { format, batch_bytes: 1 << 20, ..Default::default() };
        let err = convert(Source::Device(&dev), &out, &opts, &|_, _| {}).unwrap_err();
        assert!(err.to_string().starts_with("flaky: invalid sector "), "{err}");
        // The previous file is untouched and no temporary file is left.
        assert_eq!(std::fs::read(&out).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

#[test]
fn zero_detection() {
    assert!(zero::is_zero(&[0u8; 65536]));
    let mut v = vec![0u8; 65536];
    v[65535] = 1;
    assert!(!zero::is_zero(&v));
    v[65535] = 0;
    v[3] = 1;
    assert!(!zero::is_zero(&v));
    assert!(zero::is_zero(&[0u8; 7]));
}
