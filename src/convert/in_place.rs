//! `ferry convert --in-place`: the cutover step of a warm migration (virt-v2v-in-place's
//! equivalent). The guest is converted on overlays as usual, then only the blocks the
//! conversion changed are written back into the disk images themselves (qcow2 or raw, as
//! synced by `ferry img sync`); nothing is copied and the descriptions name those images.

use super::CopyJob;
use anyhow::{bail, Context};
use ferry_formats::disk::{probe_format, BlockDevice, ExtentKind, ImageFormat, WritableDevice};
use ferry_formats::model::DiskSource;
use ferry_formats::qcow2::Qcow2Rw;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The image files an in-place conversion writes: each disk must be a plain qcow2 or raw
/// file (no VMDK, no archive member).
pub fn targets(jobs: &[CopyJob]) -> anyhow::Result<Vec<PathBuf>> {
    jobs.iter()
        .map(|j| match &j.source {
            DiskSource::File { path } => match probe_format(path)? {
                ImageFormat::Qcow2 | ImageFormat::Raw => Ok(path.clone()),
                other => bail!(
                    "{}: --in-place needs a qcow2 or raw image, not {} (copy it with ferry img convert first)",
                    path.display(),
                    other.name()
                ),
            },
            other => bail!("{}: --in-place needs a plain image file", other.describe()),
        })
        .collect()
}

enum Target {
    Qcow2(Box<Qcow2Rw>),
    Raw(std::fs::File),
}

fn open(path: &Path) -> anyhow::Result<Target> {
    use std::os::unix::fs::OpenOptionsExt;
    Ok(match probe_format(path)? {
        ImageFormat::Qcow2 => Target::Qcow2(Box::new(Qcow2Rw::open(path)?)),
        _ => Target::Raw(
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .with_context(|| format!("{}: open for writing", path.display()))?,
        ),
    })
}

/// Writes what `overlay` changed into `path`; returns the bytes written.
pub fn write_back(overlay: &dyn BlockDevice, edited: &[ferry_formats::disk::Extent], path: &Path) -> anyhow::Result<u64> {
    let target = open(path)?;
    let mut buf = Vec::new();
    let mut written = 0u64;
    for e in edited {
        let mut pos = e.offset;
        while pos < e.offset + e.length {
            let n = (e.offset + e.length - pos).min(4 << 20) as usize;
            buf.resize(n, 0);
            if e.kind == ExtentKind::Zero {
                buf.fill(0);
            } else {
                overlay.read_at(&mut buf, pos)?;
            }
            match &target {
                Target::Qcow2(q) => q.write_at(&buf, pos)?,
                Target::Raw(f) => f.write_all_at(&buf, pos).with_context(|| format!("{}: write", path.display()))?,
            }
            pos += n as u64;
            written += n as u64;
        }
    }
    match &target {
        Target::Qcow2(q) => q.flush()?,
        Target::Raw(f) => f.sync_all().with_context(|| format!("{}: fsync", path.display()))?,
    }
    Ok(written)
}
