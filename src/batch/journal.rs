//! The resume journal: one small JSON file per VM next to its outputs,
//! `OUTDIR/.NAME.ferry-batch.json`, replaced atomically (a temporary written with O_EXCL,
//! fsynced, renamed over it, the directory fsynced). It records the VM's state, the identity
//! of its inputs (each file's size and mtime, a hash of its `ferry convert` arguments) and
//! the outputs the run wrote. A rerun skips a VM whose journal says `done` with the same
//! identity and whose outputs are all present; anything else is redone from a clean state.

use ferry_formats::model::DiskSource;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Journals larger than this are not read (treated as absent: the VM is redone).
const MAX_JOURNAL_BYTES: u64 = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i128,
}

/// What the outputs were made from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub inputs: Vec<InputFile>,
    /// SHA-256 of the `ferry convert` arguments (and the validate options) and Ferry's version.
    pub config_sha256: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Running,
    Done,
    Failed,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Journal {
    pub name: String,
    pub state: State,
    pub identity: Identity,
    /// Files this run wrote (absolute paths).
    #[serde(default)]
    pub outputs: Vec<PathBuf>,
    /// The steps' report entries of the run that finished (for a skipped VM's report).
    #[serde(default)]
    pub steps: Vec<super::report::Step>,
    /// The `ferry convert` child of a running VM: its spool files are named for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The SOURCE_DATE_EPOCH the conversion stamps, fixed at the VM's first attempt so a
    /// redo writes the bytes the interrupted attempt would have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<i64>,
}

pub fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.ferry-batch.json"))
}

/// Reads a journal; None when absent, unreadable or not a journal (the VM is then redone).
pub fn read(dir: &Path, name: &str) -> Option<Journal> {
    let p = path(dir, name);
    let meta = std::fs::symlink_metadata(&p).ok()?;
    if !meta.is_file() || meta.len() > MAX_JOURNAL_BYTES {
        return None;
    }
    serde_json::from_slice(&std::fs::read(&p).ok()?).ok()
}

/// Writes `data` to `path` atomically: a new temporary (O_EXCL, never through a symlink),
/// fsync, rename over `path`, fsync of the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}-{}", std::process::id(), unique()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(0o644)
        .open(&tmp)?;
    let res = f.write_all(data).and_then(|_| f.sync_all()).and_then(|_| std::fs::rename(&tmp, path));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res?;
    std::fs::File::open(dir)?.sync_all()
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

pub fn write(dir: &Path, j: &Journal) -> anyhow::Result<()> {
    let p = path(dir, &j.name);
    let mut data = serde_json::to_vec_pretty(j)?;
    data.push(b'\n');
    write_atomic(&p, &data).map_err(|e| anyhow::anyhow!("{}: cannot write journal: {e}", p.display()))
}

/// The host files a disk source reads.
fn source_files(s: &DiskSource, out: &mut Vec<PathBuf>) {
    match s {
        DiskSource::File { path } | DiskSource::Block { path } => out.push(path.clone()),
        DiskSource::InPlace { archive, .. }
        | DiskSource::SparseInPlace { archive, .. }
        | DiskSource::Streamed { archive, .. } => out.push(archive.clone()),
        DiskSource::Chunked { chunks } => chunks.iter().for_each(|c| source_files(c, out)),
        DiskSource::Gzip { inner } => source_files(inner, out),
        DiskSource::Unresolved { .. } | DiskSource::Blank { .. } => {}
    }
}

fn stat(p: &Path) -> anyhow::Result<InputFile> {
    let m = std::fs::metadata(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    let size = if m.file_type().is_file() { m.len() } else { block_size(p).unwrap_or(m.len()) };
    Ok(InputFile { path: p.to_path_buf(), size, mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()) })
}

/// A block device's size (its end, found by seeking).
fn block_size(p: &Path) -> Option<u64> {
    use std::io::Seek;
    std::fs::File::open(p).ok()?.seek(std::io::SeekFrom::End(0)).ok()
}

/// Reads the VM's description (not its disks' contents) and stats every file it names.
/// Also returns the bytes of its disks, the weight `--shard` balances.
pub fn identity(entry: &super::manifest::Entry) -> anyhow::Result<(Identity, u64)> {
    let vm = crate::convert::input::read(&entry.convert)?;
    let mut files: Vec<PathBuf> = entry.convert.source.clone();
    let mut disks = Vec::new();
    for d in &vm.disks {
        source_files(&d.source, &mut disks);
    }
    files.extend(disks.iter().cloned());
    files.dedup();
    let inputs = files.iter().map(|p| stat(p)).collect::<anyhow::Result<Vec<_>>>()?;
    let bytes = inputs.iter().filter(|f| disks.contains(&f.path) || vm.disks.is_empty()).map(|f| f.size).sum();
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    for a in &entry.argv {
        h.update(a.as_encoded_bytes());
        h.update([0]);
    }
    if let Some(v) = &entry.validate {
        for a in &v.args {
            h.update(a.as_bytes());
            h.update([0]);
        }
    }
    let hex = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((Identity { inputs, config_sha256: hex }, bytes))
}

/// Removes temporaries an interrupted journal write of VM `name` left (by other processes).
pub fn clean_temps(dir: &Path, name: &str) {
    let prefix = format!(".{}.tmp-", path(dir, name).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    let mine = format!("{prefix}{}-", std::process::id());
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for ent in rd.flatten() {
        let file = ent.file_name();
        if let Some(s) = file.to_str() {
            if s.starts_with(&prefix) && !s.starts_with(&mine) {
                let _ = std::fs::remove_file(ent.path());
            }
        }
    }
}

/// Whether `file` (a directory entry name) is an output of VM `name`, or a temporary of
/// one: `NAME.xml`, `NAME.sh`, `NAME.ferry.json`, `NAME-sdX`, and `.OUTPUT.part*`.
pub fn is_output_name(file: &str, name: &str) -> bool {
    let base = match file.strip_prefix('.') {
        Some(rest) => match rest.find(".part") {
            Some(i) => &rest[..i],
            None => return false,
        },
        None => file,
    };
    if let Some(ext) = base.strip_prefix(name) {
        if matches!(ext, ".xml" | ".sh" | ".ferry.json") {
            return true;
        }
        if let Some(sd) = ext.strip_prefix("-sd") {
            return !sd.is_empty() && sd.bytes().all(|b| b.is_ascii_lowercase());
        }
    }
    false
}

/// Removes what an interrupted or outdated run of VM `name` left in `dir`: its outputs and
/// temporaries, and the spool files of its convert process `pid`. Only called when a
/// journal shows Ferry wrote there before.
pub fn clean(dir: &Path, name: &str, pid: Option<u32>) -> anyhow::Result<Vec<PathBuf>> {
    let spool = pid.map(|p| format!(".ferry-spool-{p}-"));
    let mut removed = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    for ent in rd.flatten() {
        let file = ent.file_name();
        let Some(s) = file.to_str() else { continue };
        if is_output_name(s, name) || spool.as_deref().is_some_and(|p| s.starts_with(p)) {
            let p = ent.path();
            std::fs::remove_file(&p).map_err(|e| anyhow::anyhow!("{}: cannot remove: {e}", p.display()))?;
            removed.push(p);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names() {
        for yes in ["web.xml", "web.sh", "web.ferry.json", "web-sda", "web-sdab", ".web-sda.part-123", ".web.xml.part"] {
            assert!(is_output_name(yes, "web"), "{yes}");
        }
        for no in ["web-sda-sda", "web-sdx.xml", "web2.xml", "web-sd", "web-sdA", ".web-sda", "x.xml", ".web.ferry-batch.json"] {
            assert!(!is_output_name(no, "web"), "{no}");
        }
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("j.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
