//! The conversion engine: copies any readable disk (a [`BlockDevice`] or a front-to-back
//! [`StreamSource`]) to a qcow2 or raw file.
//!
//! Three stages run at once: a reader thread cuts the source into batches (reading a stream
//! source's chunks), rayon workers read / inflate / zero-detect / compress each batch's
//! clusters in parallel, and one writer thread appends the results in guest order. The
//! source's allocation map lets unallocated and zero ranges be skipped without reading.
//! At most a few batches are in flight, so memory does not grow with the disk.
//!
//! Output goes to a temporary file next to the final path, renamed only when complete; on
//! error it is removed, so an interrupted run leaves nothing at the final path.
pub(crate) mod copy;
mod device;
mod output;
mod pipeline;
pub mod temp;
mod zero;

use crate::disk::{BlockDevice, DiskError, StreamSource};
use crate::qcow2::{CompressionType, Preallocation};
use std::path::Path;
pub use temp::TempOutput;

/// What to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Qcow2,
    Raw,
}

/// Conversion options; `Default` is qcow2, 64 KiB clusters, no compression, no fsync.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    pub format: OutputFormat,
    /// Compress qcow2 clusters with this codec.
    pub compression: Option<CompressionType>,
    /// Codec level (default: zlib 6, zstd 3, as qemu).
    pub level: Option<u32>,
    pub preallocation: Preallocation,
    /// qcow2 cluster size, and the unit of zero detection (a power of two, 512 B–2 MiB).
    pub cluster_size: u64,
    /// fsync the output (and its directory) before renaming it into place.
    pub flush: bool,
    /// Bytes of source data per batch handed to the workers.
    pub batch_bytes: usize,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            format: OutputFormat::Qcow2,
            compression: None,
            level: None,
            preallocation: Preallocation::Off,
            cluster_size: 65536,
            flush: false,
            batch_bytes: 16 << 20,
        }
    }
}

/// What to read.
pub enum Source<'a> {
    /// A random-access image; its `map` is used to skip holes.
    Device(&'a dyn BlockDevice),
    /// A front-to-back image (a streamOptimized VMDK inside an OVA).
    Stream(Box<dyn StreamSource + 'a>),
}

/// Counts of what a conversion did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConvertStats {
    /// Virtual size of the disk.
    pub virtual_size: u64,
    /// Clusters written with data (plain or compressed).
    pub data_clusters: u64,
    /// Of those, clusters stored compressed.
    pub compressed_clusters: u64,
    /// Clusters read but found to be all zeros.
    pub zero_clusters: u64,
}

/// A progress callback: `(bytes done, total bytes)` of the virtual disk.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// Converts `source` into a new file at `output` (replaced only on success).
pub fn convert(
    source: Source<'_>,
    output: &Path,
    opts: &ConvertOptions,
    progress: Progress<'_>,
) -> Result<ConvertStats, DiskError> {
    if !opts.cluster_size.is_power_of_two() || !(512..=2 << 20).contains(&opts.cluster_size) {
        return Err(DiskError::invalid(output, "cluster_size", opts.cluster_size, "must be a power of two, 512 B to 2 MiB"));
    }
    if opts.compression.is_some() && opts.preallocation != Preallocation::Off {
        return Err(DiskError::invalid(output, "preallocation", "with compression", "compressed images cannot be preallocated"));
    }
    if opts.compression.is_some() && opts.format == OutputFormat::Raw {
        return Err(DiskError::invalid(output, "compression", "with raw output", "only qcow2 output can be compressed"));
    }
    let temp = TempOutput::create(output, 0o644)?;
    let file = temp.file().try_clone().map_err(|e| DiskError::io(temp.path(), "dup", e))?;
    let stats = pipeline::run(source, file, temp.path(), opts, progress)?;
    temp.commit(output, opts.flush)?;
    Ok(stats)
}

#[cfg(test)]
mod tests;
