//! The writer stage: qcow2 (one pass) or raw (sparse) output of processed batches.
use super::pipeline::{Out, Processed};
use super::{ConvertOptions, ConvertStats, OutputFormat};
use crate::disk::DiskError;
use crate::qcow2::writer::ClusterWrite;
use crate::qcow2::{CompressionType, Preallocation, Qcow2Writer, WriterOptions};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Where processed clusters go.
pub enum Output {
    Qcow2(Box<Qcow2Writer>),
    Raw { file: File, path: PathBuf, size: u64, cs: u64 },
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
                Ok(Output::Raw { file, path: path.to_path_buf(), size, cs: opts.cluster_size })
            }
        }
    }

    /// Writes one processed segment; segments arrive in ascending order.
    pub fn write(&mut self, p: &Processed, raw: Option<&File>, stats: &mut ConvertStats) -> Result<(), DiskError> {
        let mut i = 0usize;
        let n = p.kinds.len();
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
                    let cs = p.cs as usize;
                    if let (Some(src), Some(fo)) = (raw, p.file_offset) {
                        let from = i as u64 * p.cs;
                        let n = (j as u64 * p.cs).min(p.len) - from;
                        match self {
                            Output::Qcow2(w) => w.copy_plain_run(p.first + i as u64, src, fo + from, n)?,
                            Output::Raw { file, path, .. } => {
                                crate::convert::copy::copy_range(src, fo + from, file, fo + from, n)
                                    .map_err(|e| DiskError::io(path, "copy", e))?
                            }
                        }
                        i = j;
                        continue;
                    }
                    let data = &p.buf[i * cs..(j * cs).min(p.buf.len())];
                    match self {
                        Output::Qcow2(w) => w.write_plain_run(p.first + i as u64, data)?,
                        Output::Raw { file, path, size, cs } => {
                            let at = (p.first + i as u64) * *cs;
                            let len = (data.len() as u64).min(size.saturating_sub(at)) as usize;
                            file.write_all_at(&data[..len], at).map_err(|e| DiskError::io(path, "write", e))?;
                        }
                    }
                    i = j;
                }
            }
        }
        Ok(())
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
