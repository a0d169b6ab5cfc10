//! `ferry convert --in-place`: the cutover step of a warm migration (virt-v2v-in-place's
//! equivalent). The guest is converted on overlays as usual, then only the blocks the
//! conversion changed are written into the disk images themselves (qcow2 or raw, as synced
//! by `ferry img sync`); nothing is copied and the descriptions name those images.
//!
//! Crash safety, as a database's redo log: everything the write-back would do to the images
//! (edited blocks and, for qcow2, the new clusters, L2 and refcount updates `Qcow2Rw` makes,
//! all recorded through [`recorder::Recorder`] without touching the image) and the
//! description files go to a journal next to the first image, which is fsynced and then
//! committed by its checksummed trailer ([`journal`]). Only then is it applied, the images
//! fsynced and the journal removed. A later `ferry convert --in-place` or `ferry img sync` on
//! the image first [`recover`]s: a committed journal is applied again (idempotent), an
//! uncommitted one is discarded (the images were never touched).

pub mod format;
mod journal;
mod recorder;

use super::CopyJob;
use anyhow::{bail, Context};
use ferry_formats::disk::{probe_format, BlockDevice, Extent, ExtentKind, ImageFormat, WritableDevice};
use ferry_formats::model::DiskSource;
use ferry_formats::qcow2::{HostFile, Qcow2Rw};
use recorder::Recorder;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// The crash points the tests kill the process at (`FERRY_CRASH_AT`): `journaled` (all
/// written, not committed), `committed` (before any byte of an image changes), `applying`
/// (half the ranges of the first image written).
fn crash_point(name: &str) {
    if std::env::var_os("FERRY_CRASH_AT").is_some_and(|v| v == name) {
        // SAFETY: raise() only sends a signal to this process; SIGKILL cannot be caught, so
        // no handler runs and no Rust state is observed afterwards.
        unsafe {
            libc::raise(libc::SIGKILL);
        }
    }
}

/// Finishes or discards what an interrupted in-place conversion left for `target`:
/// returns the journal applied, if one was committed. A journal being written by a live
/// process is an error.
pub fn recover(target: &Path) -> anyhow::Result<Option<PathBuf>> {
    let Ok(meta) = std::fs::metadata(target) else { return Ok(None) };
    let id = (meta.dev(), meta.ino());
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let own = journal::path_for(target);
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(None) };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.') && n.to_string_lossy().ends_with(".ferry-in-place")))
        .collect();
    found.sort();
    for jpath in found {
        let mine = jpath.file_name() == own.file_name();
        let (state, file) = match journal::read(&jpath) {
            Ok(r) => r,
            // Another image's journal that cannot be read is that image's business.
            Err(_) if !mine => continue,
            Err(e) => return Err(e),
        };
        match state {
            journal::Found::Complete(index) => {
                if !index.targets.iter().any(|t| (t.dev, t.ino) == id) {
                    continue;
                }
                eprintln!("ferry: finishing the interrupted in-place conversion recorded in {}", jpath.display());
                journal::apply(&jpath, &file, &index, || {})?;
                journal::remove(&jpath)?;
                return Ok(Some(jpath));
            }
            journal::Found::Incomplete { pid } => {
                if !mine {
                    continue;
                }
                // SAFETY: kill() with signal 0 only checks that the process exists.
                if pid != 0 && pid != std::process::id() && unsafe { libc::kill(pid as libc::pid_t, 0) } == 0 {
                    bail!("{}: an in-place conversion by ferry process {pid} is running on {}", jpath.display(), target.display());
                }
                journal::remove(&jpath)?;
                eprintln!(
                    "ferry: discarded the uncommitted in-place journal {} ({} was not changed)",
                    jpath.display(),
                    target.display()
                );
            }
        }
    }
    Ok(None)
}

/// A file the conversion writes next to the images: path, bytes, executable.
pub type Description = (PathBuf, Vec<u8>, bool);

/// Journals what each `(overlay, edited ranges)` pair changed in its image and the
/// `descriptions`, commits the journal, applies it and removes it. One JSON object per image.
pub fn commit(edits: &[(&dyn BlockDevice, Vec<Extent>)], images: &[PathBuf], descriptions: &[Description]) -> anyhow::Result<Vec<serde_json::Value>> {
    let Some(first) = images.first() else { bail!("--in-place: the guest has no disk") };
    let jpath = journal::path_for(first);
    let jw = Arc::new(journal::JournalWriter::create(&jpath)?);
    let mut result = write_journal(&jw, edits, images, descriptions);
    let index = match result.as_mut() {
        Ok((index, _)) => std::mem::take(index),
        Err(_) => {
            // Nothing was committed: the images are untouched.
            let _ = journal::remove(&jpath);
            return result.map(|_| Vec::new());
        }
    };
    let stats = result.map(|(_, s)| s).unwrap_or_default();
    if let Err(e) = jw.commit(&index, || crash_point("journaled")) {
        // Not committed (a torn trailer fails its checksum): the images are untouched.
        let _ = journal::remove(&jpath);
        return Err(e);
    }
    crash_point("committed");
    let file = std::fs::File::open(jw.path()).with_context(|| format!("{}: open", jw.path().display()))?;
    journal::apply(&jpath, &file, &index, || crash_point("applying"))?;
    journal::remove(&jpath)?;
    Ok(stats)
}

/// Writes bytes at a guest offset of one image (through its journal).
type WriteAt = Box<dyn Fn(&[u8], u64) -> anyhow::Result<()>>;

fn write_journal(
    jw: &Arc<journal::JournalWriter>,
    edits: &[(&dyn BlockDevice, Vec<Extent>)],
    images: &[PathBuf],
    descriptions: &[Description],
) -> anyhow::Result<(journal::Index, Vec<serde_json::Value>)> {
    let mut index = journal::Index::default();
    let mut stats = Vec::new();
    for ((overlay, edited), path) in edits.iter().zip(images) {
        let t = std::time::Instant::now();
        let base = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .with_context(|| format!("{}: open", path.display()))?;
        let meta = base.metadata().with_context(|| format!("{}: stat", path.display()))?;
        if !meta.is_file() {
            bail!("{}: --in-place needs a regular file", path.display());
        }
        let rec = Recorder::new(base, jw.clone()).with_context(|| format!("{}: stat", path.display()))?;
        let target: WriteAt = match probe_format(path)? {
            ImageFormat::Qcow2 => {
                let q = Qcow2Rw::open_on(path, Box::new(rec.clone()))?;
                Box::new(move |buf, pos| Ok(q.write_at(buf, pos)?))
            }
            _ => {
                let r = rec.clone();
                Box::new(move |buf, pos| Ok(r.write_all_at(buf, pos)?))
            }
        };
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
                target(&buf, pos).with_context(|| format!("{}: journal the write at {pos}", path.display()))?;
                pos += n as u64;
                written += n as u64;
            }
        }
        drop(target);
        let (pieces, len_before, len_after) = rec.finish();
        let journaled: u64 = pieces.iter().map(|(s, p)| p.end - s).sum();
        index.targets.push(journal::TargetIndex {
            path: std::path::absolute(path).unwrap_or(path.clone()),
            dev: meta.dev(),
            ino: meta.ino(),
            len_before,
            len_after,
            ranges: pieces.iter().map(|(s, p)| [*s, p.end - s, p.jpos]).collect(),
        });
        stats.push(serde_json::json!({
            "in-place": path, "written-bytes": written, "ranges": edited.len(),
            "journaled-bytes": journaled, "seconds": t.elapsed().as_secs_f64(),
        }));
    }
    for (path, data, executable) in descriptions {
        let jpos = jw.append(data).with_context(|| format!("{}: write", jw.path().display()))?;
        index.files.push(journal::FileIndex {
            path: std::path::absolute(path).unwrap_or(path.clone()),
            executable: *executable,
            jpos,
            len: data.len() as u64,
        });
    }
    Ok((index, stats))
}
