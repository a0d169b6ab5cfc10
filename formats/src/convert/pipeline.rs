//! Stream sources: a reader thread reads and decodes chunks into batches of whole clusters,
//! rayon processes each batch (zero detection, compression), then the batch is laid out in
//! order and its data written in parallel. Random-access sources go to [`super::device`].
use super::output::{run_task, Output};
use super::zero::is_zero;
use super::{ConvertOptions, ConvertStats, Progress, Source};
use crate::disk::{BlockDevice, ChunkData, DiskError, StreamSource};
use crate::qcow2::codec;
use rayon::prelude::*;
use std::fs::File;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};


/// Work for the processing stage.
enum Batch {
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
    let mut output = Output::new(file, path, size, opts)?;
    let s = match source {
        Source::Device(d) => {
            // A plain raw file is copied inside the kernel; only cluster heads are read.
            let raw = Some(d).filter(|_| opts.compression.is_none()).and_then(raw_file);
            return super::device::run(d, raw.as_ref(), output, opts, progress);
        }
        Source::Stream(s) => s,
    };
    let (batch_tx, batch_rx) = sync_channel::<Batch>(1);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || batch_stream(s, cs, opts.batch_bytes, &batch_tx));
        // On this thread, never on a rayon worker: the stage blocks on the channel, and the
        // reader's decoding needs a free worker. Two conversions at once on a two-thread pool
        // (two tests, or two guests of a batch) each parked a worker in `recv` and deadlocked.
        let stage = Stage { pool: &BufferPool::default(), size, opts, progress };
        let processed = stage.run(batch_rx, &mut output);
        // A reader error closes the channel early; it is the one to report.
        let r = reader.join().unwrap_or_else(|_| Err(DiskError::unsupported(path, "reader thread panicked")));
        r?;
        let stats = processed?;
        output.finish()?;
        progress(size, size);
        Ok(stats)
    })
}

fn send<T>(tx: &SyncSender<T>, v: T) -> bool {
    tx.send(v).is_ok()
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
        let aligned = offset.is_multiple_of(cs) && (len.is_multiple_of(cs) || offset + len == self.size);
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

/// The processing stage: per batch, reads (device) and classifies / compresses every
/// cluster in parallel, lays the results out in order, then writes the data in parallel.
struct Stage<'a> {
    pool: &'a BufferPool,
    size: u64,
    opts: &'a ConvertOptions,
    progress: Progress<'a>,
}

impl Stage<'_> {
    /// Returns the stats once the reader signals the end; an error otherwise.
    fn run(&self, rx: Receiver<Batch>, output: &mut Output) -> Result<ConvertStats, DiskError> {
        let mut stats = ConvertStats { virtual_size: self.size, ..Default::default() };
        let mut tasks = Vec::new();
        for batch in rx {
            let segs = match batch {
                Batch::Chunks(segs) => segs.into_par_iter().map(|s| process(s, self.opts)).collect::<Vec<_>>(),
                Batch::End => return Ok(stats),
            };
            tasks.clear();
            for (i, p) in segs.iter().enumerate() {
                output.plan(i, p, &mut stats, &mut tasks)?;
            }
            let (file, path) = output.target();
            tasks.par_iter().try_for_each(|t| match segs.get(t.seg) {
                Some(p) => run_task(t, p, None, file, path),
                None => Ok(()),
            })?;
            let cs = self.opts.cluster_size;
            let end = segs.last().map_or(0, |s| (s.first * cs + s.len).min(self.size));
            for p in segs {
                self.pool.give(p.buf);
            }
            (self.progress)(end, self.size);
        }
        // The reader stopped without the end marker: it failed, and `run` reports why.
        Err(DiskError::unsupported(Path::new("source"), "read ended early"))
    }
}

pub fn process(seg: Segment, opts: &ConvertOptions) -> Processed {
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

/// The file behind a plain raw image, when the device is one.
fn raw_file(dev: &dyn BlockDevice) -> Option<File> {
    let info = dev.info();
    if info.format != "raw" || info.files.len() != 1 {
        return None;
    }
    let f = File::open(info.files.first()?).ok()?;
    (f.metadata().ok()?.len() == dev.size()).then_some(f)
}

/// Segment buffers handed back by the writer for reuse, so steady state allocates (and
/// page-faults) nothing. Holds at most a few batches' worth.
#[derive(Default)]
pub struct BufferPool(std::sync::Mutex<Vec<Vec<u8>>>);

impl BufferPool {
    const MAX: usize = 24;

    pub fn take(&self, len: usize) -> Vec<u8> {
        let v = self.0.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match v {
            Some(mut v) => {
                // Old bytes stay: every caller overwrites the whole buffer (read_at fills it).
                v.truncate(len);
                v.resize(len, 0);
                v
            }
            None => vec![0u8; len],
        }
    }

    pub fn give(&self, v: Vec<u8>) {
        let mut pool = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < Self::MAX && v.capacity() > 0 {
            pool.push(v);
        }
    }
}
