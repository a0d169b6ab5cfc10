//! The writer stage: qcow2 (one pass) or raw (sparse) output of processed batches.
use super::pipeline::{Out, Processed};
use super::{ConvertOptions, ConvertStats, OutputFormat};
use crate::disk::DiskError;
use crate::qcow2::writer::ClusterWrite;
use crate::qcow2::{CompressionType, Preallocation, Qcow2Writer, WriterOptions};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One piece of plain data to write: `len` bytes from offset `from` of segment `seg` (its
/// buffer, or the raw source file) to offset `dst` of the output.
pub struct Task {
    pub seg: usize,
    pub from: u64,
    pub dst: u64,
    pub len: u64,
}

/// Runs one task.
pub fn run_task(t: &Task, p: &Processed, raw: Option<&File>, out: &File, path: &Path) -> Result<(), DiskError> {
    match (raw, p.file_offset) {
        (Some(src), Some(fo)) => crate::convert::copy::copy_range(src, fo + t.from, out, t.dst, t.len)
            .map_err(|e| DiskError::io(path, "copy", e)),
        _ => {
            let data = p.buf.get(t.from as usize..(t.from + t.len) as usize).unwrap_or_default();
            out.write_all_at(data, t.dst).map_err(|e| DiskError::io(path, "write", e))
        }
    }
}

/// Where processed clusters go.
pub enum Output {
    Qcow2(Box<Qcow2Writer>),
    Raw { file: File, path: PathBuf, size: u64 },
}

impl Output {
    pub fn new(file: File, path: &Path, size: u64, opts: &ConvertOptions) -> Result<Self, DiskError> {
        match opts.format {
            OutputFormat::Qcow2 => {
                let wo = WriterOptions {
                    cluster_bits: opts.cluster_size.trailing_zeros(),
                    compression: opts.compression.unwrap_or(CompressionType::Zlib),
                    preallocation: opts.preallocation,
                };
                Ok(Output::Qcow2(Box::new(Qcow2Writer::new(file, path, size, wo)?)))
            }
            OutputFormat::Raw => {
                file.set_len(size).map_err(|e| DiskError::io(path, "set length", e))?;
                if opts.preallocation == Preallocation::Full && size > 0 {
                    fallocate(&file, size).map_err(|e| DiskError::io(path, "fallocate", e))?;
                }
                Ok(Output::Raw { file, path: path.to_path_buf(), size })
            }
        }
    }

    /// Takes in one processed segment (segments arrive in ascending order): metadata and
    /// compressed clusters are handled here; plain data becomes [`Task`]s to run in parallel.
    pub fn plan(&mut self, seg: usize, p: &Processed, stats: &mut ConvertStats, tasks: &mut Vec<Task>) -> Result<(), DiskError> {
        let mut i = 0usize;
        let n = p.kinds.len();
        let mut pieces = Vec::new();
        while i < n {
            match &p.kinds[i] {
                Out::Zero => {
                    stats.zero_clusters += 1;
                    i += 1;
                }
                Out::Compressed(bytes) => {
                    stats.data_clusters += 1;
                    stats.compressed_clusters += 1;
                    if let Output::Qcow2(w) = self {
                        w.write_cluster(p.first + i as u64, ClusterWrite::Compressed(bytes))?;
                    }
                    i += 1;
                }
                Out::Plain => {
                    let mut j = i;
                    while j < n && matches!(p.kinds[j], Out::Plain) {
                        j += 1;
                    }
                    stats.data_clusters += (j - i) as u64;
                    let from = i as u64 * p.cs;
                    let len = (j as u64 * p.cs).min(p.len) - from;
                    match self {
                        Output::Qcow2(w) => {
                            pieces.clear();
                            w.reserve_plain_run(p.first + i as u64, len, &mut pieces)?;
                            for &(rel, host, n) in &pieces {
                                tasks.push(Task { seg, from: from + rel, dst: host, len: n });
                            }
                        }
                        Output::Raw { size, .. } => {
                            let at = p.first * p.cs + from;
                            let len = len.min(size.saturating_sub(at));
                            tasks.push(Task { seg, from, dst: at, len });
                        }
                    }
                    i = j;
                }
            }
        }
        Ok(())
    }

    /// The file tasks write into, and its name.
    pub fn target(&self) -> (&File, &Path) {
        match self {
            Output::Qcow2(w) => (w.file(), w.path()),
            Output::Raw { file, path, .. } => (file, path),
        }
    }

    /// Completes the file.
    pub fn finish(self) -> Result<(), DiskError> {
        match self {
            Output::Qcow2(w) => w.finish().map(drop),
            Output::Raw { .. } => Ok(()),
        }
    }
}

fn fallocate(file: &File, len: u64) -> std::io::Result<()> {
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
