//! The three conversion stages: batching (reader thread), parallel processing (rayon), and
//! ordered writing (writer thread), joined by channels one batch deep.
use super::output::Output;
use super::{ConvertOptions, ConvertStats, Progress, Source};
use crate::disk::{BlockDevice, ChunkData, DiskError, ExtentKind, StreamSource};
use crate::qcow2::codec;
use rayon::prelude::*;
use std::fs::File;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Clusters per device read.
const SEGMENT_CLUSTERS: u64 = 16;
/// Virtual bytes mapped at a time.
const MAP_WINDOW: u64 = 1 << 30;

/// Work for the processing stage.
enum Batch {
    /// Cluster runs `(first cluster, count)` to read from a device.
    Reads(Vec<(u64, u64)>),
    /// Stream chunks already read, to decode and assemble.
    Chunks(Vec<Segment>),
    /// The source was read completely.
    End,
}

/// Bytes of whole clusters starting at cluster `first` (the last may be short).
pub struct Segment {
    pub first: u64,
    pub buf: Vec<u8>,
}

/// What became of each cluster of a segment.
pub enum Out {
    Zero,
    Plain,
    Compressed(Vec<u8>),
}

/// A processed segment: its bytes and one [`Out`] per cluster.
pub struct Processed {
    pub first: u64,
    pub cs: u64,
    /// Bytes of the segment (the last cluster may be short).
    pub len: u64,
    /// The bytes, unless they are to be copied from the raw source file.
    pub buf: Vec<u8>,
    /// Where the bytes are in the raw source file, when `buf` is empty.
    pub file_offset: Option<u64>,
    pub kinds: Vec<Out>,
}

/// Runs the conversion into `file` (the temporary output at `path`).
pub fn run(
    source: Source<'_>,
    file: File,
    path: &Path,
    opts: &ConvertOptions,
    progress: Progress<'_>,
) -> Result<ConvertStats, DiskError> {
    let size = match &source {
        Source::Device(d) => d.size(),
        Source::Stream(s) => s.size(),
    };
    let cs = opts.cluster_size;
    let output = Output::new(file, path, size, opts)?;
    let (batch_tx, batch_rx) = sync_channel::<Batch>(1);
    let (done_tx, done_rx) = sync_channel::<Option<(Vec<Processed>, u64)>>(1);
    let dev = match &source {
        Source::Device(d) => Some(*d),
        Source::Stream(_) => None,
    };
    // A plain raw file is copied inside the kernel; only cluster heads are read to find zeros.
    let raw = dev.filter(|_| opts.compression.is_none()).and_then(raw_file);
    let raw = raw.as_ref();
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || match source {
            Source::Device(d) => batch_device(d, cs, opts.batch_bytes, &batch_tx),
            Source::Stream(s) => batch_stream(s, cs, opts.batch_bytes, &batch_tx),
        });
        let writer = scope.spawn(move || write_all(output, done_rx, size, raw, progress));
        let processed = process_all(dev, raw, batch_rx, done_tx, size, opts);
        // The first error wins; the others are consequences (closed channels).
        let w = writer.join().unwrap_or_else(|_| Err(DiskError::unsupported(path, "writer thread panicked")));
        let r = reader.join().unwrap_or_else(|_| Err(DiskError::unsupported(path, "reader thread panicked")));
        r?;
        processed?;
        w
    })
}

fn send<T>(tx: &SyncSender<T>, v: T) -> bool {
    tx.send(v).is_ok()
}

/// Cuts the device's data ranges (from its map) into batches of cluster runs.
fn batch_device(dev: &dyn BlockDevice, cs: u64, batch_bytes: usize, tx: &SyncSender<Batch>) -> Result<(), DiskError> {
    let size = dev.size();
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut in_batch = 0u64;
    let mut pos = 0u64;
    let mut last_end = 0u64; // first cluster not yet queued
    while pos < size {
        let len = MAP_WINDOW.min(size - pos);
        for e in dev.map(pos, len)? {
            if e.kind != ExtentKind::Data {
                continue;
            }
            let mut c = (e.offset / cs).max(last_end);
            let end = (e.offset + e.length).div_ceil(cs);
            while c < end {
                let n = SEGMENT_CLUSTERS.min(end - c);
                runs.push((c, n));
                in_batch += n * cs;
                c += n;
                if in_batch >= batch_bytes as u64 {
                    if !send(tx, Batch::Reads(std::mem::take(&mut runs))) {
                        return Ok(());
                    }
                    in_batch = 0;
                }
            }
            last_end = last_end.max(end);
        }
        pos += len;
    }
    if !runs.is_empty() && !send(tx, Batch::Reads(runs)) {
        return Ok(());
    }
    send(tx, Batch::End);
    Ok(())
}

/// Reads a stream's chunks, decodes them in parallel, and assembles whole clusters.
fn batch_stream(
    mut s: Box<dyn StreamSource + '_>,
    cs: u64,
    batch_bytes: usize,
    tx: &SyncSender<Batch>,
) -> Result<(), DiskError> {
    let size = s.size();
    let path = s.path().to_path_buf();
    let mut asm = Assembler { cs, size, pending: None, out: Vec::new() };
    let mut chunks = Vec::new();
    let mut bytes = 0u64;
    let mut next_offset = 0u64;
    loop {
        let chunk = s.next_chunk()?;
        let end_of_stream = chunk.is_none();
        if let Some(c) = chunk {
            if c.offset < next_offset || c.offset.checked_add(c.length).is_none_or(|e| e > size) {
                return Err(DiskError::invalid(&path, "chunk offset", c.offset, "out of order or past the end of the disk"));
            }
            next_offset = c.offset + c.length;
            if !matches!(c.data, ChunkData::Zero) {
                bytes += c.length;
                chunks.push(c);
            }
        }
        if bytes >= batch_bytes as u64 || (end_of_stream && !chunks.is_empty()) {
            let decoded: Vec<Result<(u64, Vec<u8>), DiskError>> = std::mem::take(&mut chunks)
                .into_par_iter()
                .map(|c| {
                    let off = c.offset;
                    c.into_plain(&path).map(|v| (off, v))
                })
                .collect();
            for d in decoded {
                let (off, data) = d?;
                asm.add(off, data);
            }
            bytes = 0;
            if !asm.out.is_empty() && !send(tx, Batch::Chunks(std::mem::take(&mut asm.out))) {
                return Ok(());
            }
        }
        if end_of_stream {
            asm.flush();
            if !asm.out.is_empty() && !send(tx, Batch::Chunks(asm.out)) {
                return Ok(());
            }
            send(tx, Batch::End);
            return Ok(());
        }
    }
}

/// Gathers decoded chunks into segments of whole clusters, moving aligned ones.
struct Assembler {
    cs: u64,
    size: u64,
    pending: Option<(u64, Vec<u8>)>,
    out: Vec<Segment>,
}

impl Assembler {
    fn flush(&mut self) {
        if let Some((first, buf)) = self.pending.take() {
            self.out.push(Segment { first, buf });
        }
    }

    fn add(&mut self, offset: u64, data: Vec<u8>) {
        let cs = self.cs;
        let len = data.len() as u64;
        if self.pending.as_ref().is_some_and(|p| p.0 < offset / cs) {
            self.flush();
        }
        let aligned = offset % cs == 0 && (len % cs == 0 || offset + len == self.size);
        if aligned && self.pending.is_none() {
            self.out.push(Segment { first: offset / cs, buf: data });
            return;
        }
        let mut at = 0u64;
        while at < len {
            let pos = offset + at;
            let c = pos / cs;
            if self.pending.as_ref().is_some_and(|p| p.0 != c) {
                self.flush();
            }
            let cluster_len = cs.min(self.size - c * cs) as usize;
            let p = self.pending.get_or_insert_with(|| (c, vec![0u8; cluster_len]));
            let from = (pos % cs) as usize;
            let n = ((cs - pos % cs).min(len - at) as usize).min(cluster_len.saturating_sub(from));
            if n == 0 {
                break;
            }
            p.1[from..from + n].copy_from_slice(&data[at as usize..at as usize + n]);
            at += n as u64;
        }
    }
}

/// The processing stage: reads (device) and classifies / compresses every cluster.
fn process_all(
    dev: Option<&dyn BlockDevice>,
    raw: Option<&File>,
    rx: Receiver<Batch>,
    tx: SyncSender<Option<(Vec<Processed>, u64)>>,
    size: u64,
    opts: &ConvertOptions,
) -> Result<(), DiskError> {
    let cs = opts.cluster_size;
    for batch in rx {
        let segs: Vec<Result<Processed, DiskError>> = match batch {
            Batch::Reads(runs) => runs
                .into_par_iter()
                .map(|(first, n)| {
                    let off = first * cs;
                    let len = (n * cs).min(size - off) as usize;
                    if let Some(f) = raw {
                        let kinds = classify_file(f, off, len as u64, cs)
                            .map_err(|e| DiskError::io(Path::new("source"), "read", e))?;
                        return Ok(Processed { first, cs, len: len as u64, buf: Vec::new(), file_offset: Some(off), kinds });
                    }
                    let mut buf = vec![0u8; len];
                    if let Some(d) = dev {
                        d.read_at(&mut buf, off)?;
                    }
                    Ok(process(Segment { first, buf }, opts))
                })
                .collect(),
            Batch::Chunks(segs) => segs.into_par_iter().map(|s| Ok(process(s, opts))).collect(),
            Batch::End => {
                // Only a complete run tells the writer to finish the file.
                let _ = tx.send(None);
                return Ok(());
            }
        };
        let segs = segs.into_iter().collect::<Result<Vec<_>, _>>()?;
        let end = segs.last().map_or(0, |s| (s.first * cs + s.buf.len() as u64).min(size));
        if tx.send(Some((segs, end))).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

fn process(seg: Segment, opts: &ConvertOptions) -> Processed {
    let cs = opts.cluster_size as usize;
    let level = opts.level.unwrap_or(match opts.compression {
        Some(crate::qcow2::CompressionType::Zstd) => 3,
        _ => 6,
    });
    let mut kinds = Vec::with_capacity(seg.buf.len().div_ceil(cs));
    let mut scratch = Vec::new();
    for chunk in seg.buf.chunks(cs) {
        if is_zero(chunk) {
            kinds.push(Out::Zero);
            continue;
        }
        let Some(kind) = opts.compression else {
            kinds.push(Out::Plain);
            continue;
        };
        let padded;
        let full: &[u8] = if chunk.len() == cs {
            chunk
        } else {
            padded = [chunk, &vec![0u8; cs - chunk.len()]].concat();
            &padded
        };
        match codec::compress(kind, level, full, &mut scratch) {
            Some(_) => kinds.push(Out::Compressed(std::mem::take(&mut scratch))),
            None => kinds.push(Out::Plain),
        }
    }
    Processed { first: seg.first, cs: opts.cluster_size, len: seg.buf.len() as u64, buf: seg.buf, file_offset: None, kinds }
}

/// True when every byte is zero.
pub fn is_zero(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(64);
    for c in &mut chunks {
        let mut acc = 0u64;
        for w in c.chunks_exact(8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            acc |= u64::from_ne_bytes(a);
        }
        if acc != 0 {
            return false;
        }
    }
    chunks.remainder().iter().all(|&x| x == 0)
}

/// The writer stage.
fn write_all(
    mut output: Output,
    rx: Receiver<Option<(Vec<Processed>, u64)>>,
    size: u64,
    raw: Option<&File>,
    progress: Progress<'_>,
) -> Result<ConvertStats, DiskError> {
    let mut stats = ConvertStats { virtual_size: size, ..Default::default() };
    for msg in rx {
        let Some((segs, end)) = msg else {
            output.finish()?;
            progress(size, size);
            return Ok(stats);
        };
        for p in &segs {
            output.write(p, raw, &mut stats)?;
        }
        progress(end, size);
    }
    // The processing stage stopped early; its error is reported by `run`.
    Ok(stats)
}

/// The file behind a plain raw image, when the device is one.
fn raw_file(dev: &dyn BlockDevice) -> Option<File> {
    let info = dev.info();
    if info.format != "raw" || info.files.len() != 1 {
        return None;
    }
    let f = File::open(info.files.first()?).ok()?;
    (f.metadata().ok()?.len() == dev.size()).then_some(f)
}

/// Classifies the clusters of `[off, off + len)` of a raw file: a cluster whose first 4 KiB
/// hold a non-zero byte is data; otherwise the whole cluster is read and checked.
fn classify_file(f: &File, off: u64, len: u64, cs: u64) -> std::io::Result<Vec<Out>> {
    use std::os::unix::fs::FileExt;
    let mut head = [0u8; 4096];
    let mut whole = Vec::new();
    let mut kinds = Vec::with_capacity(len.div_ceil(cs) as usize);
    let mut at = 0u64;
    while at < len {
        let n = cs.min(len - at);
        let h = n.min(head.len() as u64) as usize;
        f.read_exact_at(&mut head[..h], off + at)?;
        let zero = is_zero(&head[..h]) && {
            whole.resize(n as usize, 0);
            f.read_exact_at(&mut whole, off + at)?;
            is_zero(&whole)
        };
        kinds.push(if zero { Out::Zero } else { Out::Plain });
        at += n;
    }
    Ok(kinds)
}
