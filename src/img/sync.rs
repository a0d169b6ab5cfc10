//! `ferry img sync TARGET SOURCE`: one round of warm migration. The target (qcow2 or raw,
//! made by `ferry img convert` from the frozen base) gets only what the source's top image
//! holds: the grains of a delta VMDK (`NAME-000001.vmdk` and its parents), the clusters of a
//! qcow2 overlay, or, with `--changed-blocks FILE`, the ranges a changed-block list names
//! (read through the source's whole chain). Rounds can repeat as the source moves on.
//!
//! Crash safety: each applied range is rewritten whole, so applying a round twice gives the
//! same target. A state file next to the target (`.TARGET.ferry-sync.json`, replaced
//! atomically) says a round is running; the target stays a valid image throughout (qcow2
//! clusters are written before the tables that point at them), and a rerun of the same round
//! finishes it. A different round is refused until the interrupted one is finished. An
//! in-place conversion's journal left next to the target is applied or discarded first.

use anyhow::{bail, Context};
use ferry_formats::disk::{open_image, probe_format, BlockDevice, Extent, ExtentKind, ImageFormat, WritableDevice};
use ferry_formats::qcow2::{Qcow2Image, Qcow2Rw};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Bytes copied per read/write.
const CHUNK: u64 = 4 << 20;
/// Changed-block lists larger than this are refused.
const MAX_LIST_BYTES: u64 = 64 << 20;

#[derive(clap::Args)]
pub struct SyncArgs {
    /// The image being kept up to date (qcow2 or raw), written in place.
    target: PathBuf,
    /// The source's current top image: a delta VMDK, a qcow2 overlay, or (with
    /// --changed-blocks) any image.
    source: PathBuf,
    /// Apply the ranges this file lists instead of the top image's own allocation: one
    /// `OFFSET LENGTH` pair per line (decimal or 0x-hex bytes; `#` starts a comment).
    #[arg(long, value_name = "FILE")]
    changed_blocks: Option<PathBuf>,
    /// Print what was applied as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SourceId {
    path: PathBuf,
    size: u64,
    mtime_ns: i128,
    changed_blocks: Option<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SyncState {
    state: String,
    source: SourceId,
}

fn state_path(target: &Path) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    target.with_file_name(format!(".{name}.ferry-sync.json"))
}

fn source_id(a: &SyncArgs) -> anyhow::Result<SourceId> {
    let m = std::fs::metadata(&a.source).with_context(|| format!("{}", a.source.display()))?;
    Ok(SourceId {
        path: std::path::absolute(&a.source).unwrap_or(a.source.clone()),
        size: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        changed_blocks: a.changed_blocks.as_ref().map(|p| std::path::absolute(p).unwrap_or(p.clone())),
    })
}

/// Parses a number: decimal or 0x-hex.
fn number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Reads a changed-block list; every range must lie within `size`.
pub fn read_changed_blocks(path: &Path, size: u64) -> anyhow::Result<Vec<Extent>> {
    let shown = path.display();
    let m = std::fs::metadata(path).with_context(|| format!("{shown}"))?;
    if m.len() > MAX_LIST_BYTES {
        bail!("{shown}: changed-block list is {} bytes, over the {MAX_LIST_BYTES}-byte limit", m.len());
    }
    let bytes = std::fs::read(path).with_context(|| format!("{shown}"))?;
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = String::from_utf8_lossy(raw);
        let text = line.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        let bad = |why: &str| anyhow::anyhow!("{shown}:{}: range {:?}: {why}", i + 1, text.escape_debug().to_string());
        let mut it = text.split_whitespace();
        let (Some(o), Some(l), None) = (it.next(), it.next(), it.next()) else { return Err(bad("expected OFFSET LENGTH")) };
        let (Some(offset), Some(length)) = (number(o), number(l)) else { return Err(bad("not a number")) };
        if offset.checked_add(length).is_none_or(|e| e > size) {
            return Err(bad(&format!("past the end of the {size}-byte disk")));
        }
        if length > 0 {
            out.push(Extent { offset, length, kind: ExtentKind::Data });
        }
    }
    Ok(out)
}

/// The ranges the source's top image holds itself.
fn own_extents(source: &Path, size: u64) -> anyhow::Result<Vec<Extent>> {
    let map = match probe_format(source)? {
        ImageFormat::Vmdk => ferry_formats::vmdk::open_device(source)?.own_map(0, size)?,
        ImageFormat::Qcow2 => Qcow2Image::open_no_backing(source)?.map(0, size)?,
        ImageFormat::Raw => {
            bail!("{}: a raw image records no changes of its own: give --changed-blocks FILE", source.display())
        }
        other @ (ImageFormat::Vpc | ImageFormat::Vhdx | ImageFormat::Vdi) => bail!(
            "{}: syncing from a {} image is not supported (a delta VMDK, a qcow2 overlay or --changed-blocks FILE)",
            source.display(),
            other.name()
        ),
    };
    Ok(map.into_iter().filter(|e| e.kind != ExtentKind::Unallocated).collect())
}

/// The target opened for writing.
enum Target {
    Qcow2(Box<Qcow2Rw>),
    Raw(std::fs::File, u64),
}

impl Target {
    fn open(path: &Path) -> anyhow::Result<Target> {
        let meta = std::fs::symlink_metadata(path).with_context(|| format!("{}", path.display()))?;
        if !meta.is_file() {
            bail!("{}: the target must be a regular file (not a link or device)", path.display());
        }
        Ok(match probe_format(path)? {
            ImageFormat::Qcow2 => Target::Qcow2(Box::new(Qcow2Rw::open(path)?)),
            ImageFormat::Raw => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags_nofollow()
                    .open(path)
                    .with_context(|| format!("{}: open for writing", path.display()))?;
                Target::Raw(f, meta.len())
            }
            other @ (ImageFormat::Vmdk | ImageFormat::Vpc | ImageFormat::Vhdx | ImageFormat::Vdi) => bail!(
                "{}: a {} target is not supported (sync into qcow2 or raw)",
                path.display(),
                other.name()
            ),
        })
    }

    fn size(&self) -> u64 {
        match self {
            Target::Qcow2(q) => q.size(),
            Target::Raw(_, n) => *n,
        }
    }

    fn write(&self, buf: &[u8], offset: u64) -> anyhow::Result<()> {
        match self {
            Target::Qcow2(q) => Ok(q.write_at(buf, offset)?),
            Target::Raw(f, _) => Ok(f.write_all_at(buf, offset)?),
        }
    }

    fn flush(&self) -> anyhow::Result<()> {
        match self {
            Target::Qcow2(q) => Ok(q.flush()?),
            Target::Raw(f, _) => Ok(f.sync_all()?),
        }
    }
}

trait NoFollow {
    fn custom_flags_nofollow(&mut self) -> &mut Self;
}

impl NoFollow for std::fs::OpenOptions {
    fn custom_flags_nofollow(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NOFOLLOW)
    }
}

pub fn run(a: SyncArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    // An interrupted `convert --in-place` of this image is finished (or discarded) first.
    crate::convert::in_place::recover(&a.target)?;
    let id = source_id(&a)?;
    let sp = state_path(&a.target);
    if let Ok(text) = std::fs::read(&sp) {
        if let Ok(prev) = serde_json::from_slice::<SyncState>(&text) {
            if prev.state == "running" && prev.source != id {
                bail!(
                    "{}: an interrupted sync from {} must be finished first (rerun ferry img sync with that source)",
                    a.target.display(),
                    prev.source.path.display()
                );
            }
            if prev.state == "running" {
                eprintln!("ferry img sync: finishing the interrupted sync from {}", id.path.display());
            }
        }
    }
    let source = open_image(&a.source, None)?;
    let target = Target::open(&a.target)?;
    if target.size() != source.size() {
        bail!("{}: virtual size {} differs from the source's {} ({})", a.target.display(), target.size(), source.size(), a.source.display());
    }
    let extents = match &a.changed_blocks {
        Some(list) => read_changed_blocks(list, source.size())?,
        None => own_extents(&a.source, source.size())?,
    };
    let write_state = |state: &str| -> anyhow::Result<()> {
        let mut data = serde_json::to_vec_pretty(&SyncState { state: state.into(), source: id.clone() })?;
        data.push(b'\n');
        crate::batch::write_atomic(&sp, &data).with_context(|| format!("{}: write sync state", sp.display()))
    };
    write_state("running")?;
    let mut buf = vec![0u8; CHUNK as usize];
    let mut applied = 0u64;
    for e in &extents {
        let mut pos = e.offset;
        let end = e.offset + e.length;
        while pos < end {
            let n = (end - pos).min(CHUNK) as usize;
            if e.kind == ExtentKind::Zero {
                buf[..n].fill(0);
            } else {
                source.read_at(&mut buf[..n], pos)?;
            }
            target.write(&buf[..n], pos).with_context(|| format!("{}: write at {pos}", a.target.display()))?;
            pos += n as u64;
            applied += n as u64;
        }
    }
    target.flush().with_context(|| format!("{}: flush", a.target.display()))?;
    write_state("done")?;
    let secs = started.elapsed().as_secs_f64();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "target": a.target, "source": a.source, "ranges": extents.len(),
                "bytes-applied": applied, "virtual-size": source.size(), "seconds": secs,
            }))?
        );
    } else {
        eprintln!(
            "ferry img sync: applied {} range(s), {} of {} from {} in {secs:.2} s",
            extents.len(),
            super::human_size(applied),
            super::human_size(source.size()),
            a.source.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
