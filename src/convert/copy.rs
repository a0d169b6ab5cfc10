//! The disk-copy step of `ferry convert`, kept apart from everything else: it takes the
//! resolved source disks and the output paths, and writes the output images.
//!
//! Sources are [`DiskSource`]s: a plain file or block device (`File`/`Block`, with the
//! format the description states or None to probe), a member stored uncompressed inside an
//! archive (`InPlace`: archive path, byte offset, length: open it in place, no temp copy),
//! a member of a compressed archive (`Streamed`: readable front to back only, see
//! `ferry_formats::ovf::open_stream`), `Chunked` files and `Gzip`-wrapped files.
//!
//! The conversion engine (`ferry_formats::convert`) is built in parallel and not linked on
//! this branch: [`copy_one`] is the single function to wire to it.

use anyhow::bail;
use clap::ValueEnum;
use ferry_formats::model::DiskSource;
use std::path::{Path, PathBuf};

/// `-of`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Qcow2,
    Raw,
}

impl OutputFormat {
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Qcow2 => "qcow2",
            OutputFormat::Raw => "raw",
        }
    }
}

/// `-oa`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputAllocation {
    Sparse,
    Preallocated,
}

/// One source disk to copy to one output image.
#[derive(Clone, Debug)]
pub struct CopyJob {
    pub source: DiskSource,
    /// "vmdk", "raw", "qcow2" when the description says; None = probe.
    pub source_format: Option<String>,
    /// Final output path (`DIR/NAME-sda`).
    pub output: PathBuf,
    pub format: OutputFormat,
    pub allocation: OutputAllocation,
}

fn check_resolved(src: &DiskSource) -> anyhow::Result<()> {
    match src {
        DiskSource::Unresolved { reference } => {
            bail!("disk {reference:?} is not on this host: map its datastore with --datastore-dir or --datastore NAME=DIR")
        }
        DiskSource::Chunked { chunks } => chunks.iter().try_for_each(check_resolved),
        DiskSource::Gzip { inner } => check_resolved(inner),
        _ => Ok(()),
    }
}

/// Copies every job's source to its output: each to `.NAME.part` first, renamed when complete.
pub fn copy_disks(jobs: &[CopyJob]) -> anyhow::Result<()> {
    for job in jobs {
        check_resolved(&job.source)?;
    }
    for job in jobs {
        let name = job.output.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = job.output.with_file_name(format!(".{name}.part"));
        if let Err(e) = copy_one(job, &tmp) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, &job.output)?;
    }
    Ok(())
}

/// Copies one source disk to `tmp` in the job's format and allocation. THE function to wire
/// to the conversion engine (`ferry_formats::convert`).
pub fn copy_one(job: &CopyJob, tmp: &Path) -> anyhow::Result<()> {
    let _ = tmp;
    let alloc = match job.allocation {
        OutputAllocation::Sparse => "sparse",
        OutputAllocation::Preallocated => "preallocated",
    };
    bail!(
        "disk copy engine not linked in this build: cannot copy {} ({}) to {} ({}, {alloc}); use --no-copy to write only the descriptions",
        job.source.describe(),
        job.source_format.as_deref().unwrap_or("probe"),
        job.output.display(),
        job.format.name()
    )
}
