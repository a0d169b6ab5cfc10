//! Random-access sources: a few worker threads each take the next run of data clusters from
//! the source's map, read and process it (zero detection, compression), lay it out in the
//! output when its turn comes (a short critical section, in guest order), and write its data
//! outside the lock. No batch barriers: a worker that is slow or preempted holds up only its
//! successors' layout, never everyone's I/O. Memory: one segment per worker.
use super::output::{run_task, Output};
use super::pipeline::{process, BufferPool, Processed, Segment};
use super::zero::classify_file;
use super::{ConvertOptions, ConvertStats, Progress};
use crate::disk::{BlockDevice, DiskError, ExtentKind};
use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

/// Clusters per segment.
const SEGMENT_CLUSTERS: u64 = 16;
/// Virtual bytes mapped at a time.
const MAP_WINDOW: u64 = 1 << 30;

/// Hands out `(sequence, first cluster, clusters)` runs of data in guest order.
struct Feed<'a> {
    dev: &'a dyn BlockDevice,
    cs: u64,
    pos: u64,
    last_end: u64,
    queue: VecDeque<(u64, u64)>,
    seq: u64,
}

impl Feed<'_> {
    fn next(&mut self) -> Result<Option<(u64, u64, u64)>, DiskError> {
        let size = self.dev.size();
        while self.queue.is_empty() && self.pos < size {
            let len = MAP_WINDOW.min(size - self.pos);
            for e in self.dev.map(self.pos, len)? {
                if e.kind != ExtentKind::Data {
                    continue;
                }
                let mut c = (e.offset / self.cs).max(self.last_end);
                let end = (e.offset + e.length).div_ceil(self.cs);
                while c < end {
                    let n = SEGMENT_CLUSTERS.min(end - c);
                    self.queue.push_back((c, n));
                    c += n;
                }
                self.last_end = self.last_end.max(end);
            }
            self.pos += len;
        }
        Ok(self.queue.pop_front().map(|(first, n)| {
            self.seq += 1;
            (self.seq - 1, first, n)
        }))
    }
}

struct Layout {
    output: Output,
    turn: u64,
    stats: ConvertStats,
}

struct Shared<'a> {
    dev: &'a dyn BlockDevice,
    raw: Option<&'a File>,
    opts: &'a ConvertOptions,
    size: u64,
    pool: BufferPool,
    feed: Mutex<Feed<'a>>,
    layout: Mutex<Layout>,
    turn_changed: Condvar,
    stop: AtomicBool,
    error: Mutex<Option<DiskError>>,
    done: AtomicU64,
    out_file: File,
    out_path: PathBuf,
    progress: Progress<'a>,
    /// Held while writing plain data: the kernel serialises buffered writes to one file anyway
    /// (ext4's inode lock, where waiters spin); waiting here lets the others read meanwhile.
    write_lock: Mutex<()>,
}

/// Converts a random-access source into `output`.
pub fn run(
    dev: &dyn BlockDevice,
    raw: Option<&File>,
    output: Output,
    opts: &ConvertOptions,
    progress: Progress<'_>,
) -> Result<ConvertStats, DiskError> {
    let size = dev.size();
    let (f, p) = output.target();
    let out_path = p.to_path_buf();
    let out_file = f.try_clone().map_err(|e| DiskError::io(&out_path, "open", e))?;
    let shared = Shared {
        dev,
        raw,
        opts,
        size,
        pool: BufferPool::default(),
        feed: Mutex::new(Feed { dev, cs: opts.cluster_size, pos: 0, last_end: 0, queue: VecDeque::new(), seq: 0 }),
        layout: Mutex::new(Layout { output, turn: 0, stats: ConvertStats { virtual_size: size, ..Default::default() } }),
        turn_changed: Condvar::new(),
        stop: AtomicBool::new(false),
        error: Mutex::new(None),
        done: AtomicU64::new(0),
        out_file,
        out_path,
        progress,
        write_lock: Mutex::new(()),
    };
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8) * 2;
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| shared.work());
        }
    });
    if let Some(e) = shared.error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let layout = shared.layout.into_inner().unwrap_or_else(|p| p.into_inner());
    layout.output.finish()?;
    progress(size, size);
    Ok(layout.stats)
}

impl Shared<'_> {
    fn fail(&self, e: DiskError) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(e);
        self.stop.store(true, Ordering::SeqCst);
        drop(slot);
        let _guard = self.layout.lock().unwrap_or_else(|p| p.into_inner());
        self.turn_changed.notify_all();
    }

    fn work(&self) {
        let mut tasks = Vec::new();
        while !self.stop.load(Ordering::SeqCst) {
            let item = self.feed.lock().unwrap_or_else(|p| p.into_inner()).next();
            let (seq, first, n) = match item {
                Ok(Some(x)) => x,
                Ok(None) => return,
                Err(e) => return self.fail(e),
            };
            let p = match self.read(first, n) {
                Ok(p) => p,
                Err(e) => return self.fail(e),
            };
            // Lay the segment out when its turn comes.
            let mut g = self.layout.lock().unwrap_or_else(|p| p.into_inner());
            while g.turn != seq && !self.stop.load(Ordering::SeqCst) {
                g = self.turn_changed.wait(g).unwrap_or_else(|p| p.into_inner());
            }
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            tasks.clear();
            let l = &mut *g;
            let planned = l.output.plan(0, &p, &mut l.stats, &mut tasks);
            g.turn += 1;
            self.turn_changed.notify_all();
            drop(g);
            if let Err(e) = planned {
                return self.fail(e);
            }
            let writing = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
            for t in &tasks {
                if let Err(e) = run_task(t, &p, self.raw, &self.out_file, &self.out_path) {
                    return self.fail(e);
                }
            }
            drop(writing);
            let end = (first * self.opts.cluster_size + p.len).min(self.size);
            let done = self.done.fetch_max(end, Ordering::SeqCst).max(end);
            (self.progress)(done, self.size);
            self.pool.give(p.buf);
        }
    }

    fn read(&self, first: u64, n: u64) -> Result<Processed, DiskError> {
        let cs = self.opts.cluster_size;
        let off = first * cs;
        let len = (n * cs).min(self.size - off) as usize;
        if let Some(f) = self.raw {
            let kinds =
                classify_file(f, off, len as u64, cs).map_err(|e| DiskError::io(Path::new("source"), "read", e))?;
            return Ok(Processed { first, cs, len: len as u64, buf: Vec::new(), file_offset: Some(off), kinds });
        }
        let mut buf = self.pool.take(len);
        self.dev.read_at(&mut buf, off)?;
        Ok(process(Segment { first, buf }, self.opts))
    }
}
