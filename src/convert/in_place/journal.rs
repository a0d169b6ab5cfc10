//! The redo journal of `ferry convert --in-place`: `.TARGET.ferry-in-place` next to the first
//! target image. Layout: a 4 KiB header (magic, version, writer's PID), the data records
//! (every byte the conversion writes into the images, appended in order), a JSON index (for
//! each target: where each final range's bytes lie in the journal, the file's length before
//! and after; the description files), and a 64-byte trailer (magic, index position and
//! length, SHA-256 of everything before it). The journal is complete only when the trailer
//! is present and its checksum matches: the trailer is written after the rest is fsynced,
//! then fsynced itself, and that is the commit point. Applying it is idempotent: every range
//! is a plain overwrite.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const MAGIC: &[u8; 8] = b"FERRYIPJ";
const TRAILER_MAGIC: &[u8; 8] = b"FERRYIPC";
const VERSION: u32 = 1;
const HEADER: u64 = 4096;
const TRAILER: u64 = 64;
/// An index larger than this is refused (it would describe millions of ranges).
const MAX_INDEX: u64 = 256 << 20;
/// Bytes copied per read/write when applying.
const CHUNK: u64 = 4 << 20;

/// The journal of `target` (the first image of a conversion).
pub fn path_for(target: &Path) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    target.with_file_name(format!(".{name}.ferry-in-place"))
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetIndex {
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    pub len_before: u64,
    pub len_after: u64,
    /// `[target offset, length, journal position]`, in target order, non-overlapping.
    pub ranges: Vec<[u64; 3]>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FileIndex {
    pub path: PathBuf,
    pub executable: bool,
    pub jpos: u64,
    pub len: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Index {
    pub targets: Vec<TargetIndex>,
    pub files: Vec<FileIndex>,
}

struct WriterState {
    end: u64,
    hash: Sha256,
}

/// A journal being written.
pub struct JournalWriter {
    path: PathBuf,
    file: File,
    state: Mutex<WriterState>,
}

impl JournalWriter {
    /// Creates the journal (`O_EXCL|O_NOFOLLOW`, mode 0600) and fsyncs its directory, so it
    /// exists on disk before any byte of a target can change.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("{}: create in-place journal", path.display()))?;
        let mut head = vec![0u8; HEADER as usize];
        head[..8].copy_from_slice(MAGIC);
        head[8..12].copy_from_slice(&VERSION.to_le_bytes());
        head[12..16].copy_from_slice(&std::process::id().to_le_bytes());
        file.write_all_at(&head, 0).with_context(|| format!("{}: write", path.display()))?;
        sync_dir(path)?;
        let mut hash = Sha256::new();
        hash.update(&head);
        Ok(JournalWriter { path: path.to_path_buf(), file, state: Mutex::new(WriterState { end: HEADER, hash }) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WriterState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `data`; returns where it lies in the journal.
    pub fn append(&self, data: &[u8]) -> io::Result<u64> {
        let mut st = self.lock();
        let at = st.end;
        self.file.write_all_at(data, at)?;
        st.hash.update(data);
        st.end += data.len() as u64;
        Ok(at)
    }

    pub fn read_at(&self, buf: &mut [u8], jpos: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, jpos)
    }

    /// Writes the index, fsyncs, then writes and fsyncs the trailer: the commit point.
    /// `before_trailer` runs between the two (the tests' crash point).
    pub fn commit(&self, index: &Index, before_trailer: impl FnOnce()) -> anyhow::Result<()> {
        let shown = self.path.display();
        let text = serde_json::to_vec(index)?;
        let index_pos = self.append(&text).with_context(|| format!("{shown}: write index"))?;
        self.file.sync_all().with_context(|| format!("{shown}: fsync"))?;
        before_trailer();
        let st = self.lock();
        let digest = st.hash.clone().finalize();
        let mut tr = [0u8; TRAILER as usize];
        tr[..8].copy_from_slice(TRAILER_MAGIC);
        tr[8..16].copy_from_slice(&index_pos.to_le_bytes());
        tr[16..24].copy_from_slice(&(text.len() as u64).to_le_bytes());
        tr[24..56].copy_from_slice(&digest);
        self.file.write_all_at(&tr, st.end).with_context(|| format!("{shown}: write trailer"))?;
        self.file.sync_all().with_context(|| format!("{shown}: fsync"))?;
        Ok(())
    }
}

/// What a journal found on disk holds.
pub enum Found {
    /// Committed: it must be applied.
    Complete(Index),
    /// Never committed, written by `pid`: the targets were not touched.
    Incomplete { pid: u32 },
}

/// Reads and verifies the journal at `path` (opened read-only, `O_NOFOLLOW`).
pub fn read(path: &Path) -> anyhow::Result<(Found, File)> {
    let shown = path.display();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("{shown}: open in-place journal"))?;
    let meta = file.metadata().with_context(|| format!("{shown}: stat"))?;
    if !meta.is_file() {
        bail!("{shown}: the in-place journal is not a regular file");
    }
    let len = meta.len();
    let mut head = [0u8; 16];
    if len < HEADER || file.read_exact_at(&mut head, 0).is_err() || &head[..8] != MAGIC {
        // Torn before its header reached the disk: nothing was applied.
        return Ok((Found::Incomplete { pid: 0 }, file));
    }
    let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if version != VERSION {
        bail!("{shown}: in-place journal version {version} is not supported (this ferry writes {VERSION})");
    }
    let pid = u32::from_le_bytes([head[12], head[13], head[14], head[15]]);
    let incomplete = Ok((Found::Incomplete { pid }, file.try_clone()?));
    if len < HEADER + TRAILER {
        return incomplete;
    }
    let mut tr = [0u8; TRAILER as usize];
    file.read_exact_at(&mut tr, len - TRAILER).with_context(|| format!("{shown}: read"))?;
    let word = |i: usize| u64::from_le_bytes(tr[i..i + 8].try_into().unwrap_or([0; 8]));
    let (index_pos, index_len) = (word(8), word(16));
    if &tr[..8] != TRAILER_MAGIC || index_pos < HEADER || index_len > MAX_INDEX || index_pos.checked_add(index_len) != Some(len - TRAILER) {
        return incomplete;
    }
    // The checksum covers everything before the trailer.
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK as usize];
    let mut pos = 0;
    while pos < index_pos + index_len {
        let n = (index_pos + index_len - pos).min(CHUNK) as usize;
        file.read_exact_at(&mut buf[..n], pos).with_context(|| format!("{shown}: read"))?;
        hash.update(&buf[..n]);
        pos += n as u64;
    }
    if hash.finalize().as_slice() != &tr[24..56] {
        return incomplete;
    }
    let mut text = vec![0u8; index_len as usize];
    file.read_exact_at(&mut text, index_pos).with_context(|| format!("{shown}: read index"))?;
    let index: Index = serde_json::from_slice(&text).with_context(|| format!("{shown}: index"))?;
    for t in &index.targets {
        if t.ranges.iter().any(|&[_, l, j]| j < HEADER || j.checked_add(l).is_none_or(|e| e > index_pos)) {
            bail!("{shown}: a range of {} lies outside the journal's data", t.path.display());
        }
    }
    if index.files.iter().any(|f| f.jpos < HEADER || f.jpos.checked_add(f.len).is_none_or(|e| e > index_pos) || f.len > MAX_INDEX) {
        bail!("{shown}: a description file lies outside the journal's data");
    }
    Ok((Found::Complete(index), file))
}

/// Applies a complete journal: every range written into its target (grown to its final
/// length first), the targets fsynced, the description files written (temporary, fsync,
/// rename). Idempotent. `midway` runs after the first half of the first target's ranges.
pub fn apply(path: &Path, journal: &File, index: &Index, midway: impl Fn()) -> anyhow::Result<u64> {
    let shown = path.display();
    // Every target must still be the file the journal was made for.
    let mut files = Vec::new();
    for t in &index.targets {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&t.path)
            .with_context(|| format!("{shown}: open target {}", t.path.display()))?;
        let m = f.metadata().with_context(|| format!("{}: stat", t.path.display()))?;
        if (m.dev(), m.ino()) != (t.dev, t.ino) || !(m.len() == t.len_before || m.len() == t.len_after) {
            bail!(
                "{shown}: {} is no longer the image this in-place journal was written for (replaced or resized): remove the journal to discard that conversion",
                t.path.display()
            );
        }
        files.push(f);
    }
    let mut buf = vec![0u8; CHUNK as usize];
    let mut written = 0u64;
    for (i, (t, f)) in index.targets.iter().zip(&files).enumerate() {
        if f.metadata()?.len() < t.len_after {
            f.set_len(t.len_after).with_context(|| format!("{}: extend", t.path.display()))?;
        }
        for (k, &[off, len, jpos]) in t.ranges.iter().enumerate() {
            if i == 0 && k == t.ranges.len() / 2 {
                midway();
            }
            let mut done = 0;
            while done < len {
                let n = (len - done).min(CHUNK) as usize;
                journal.read_exact_at(&mut buf[..n], jpos + done).with_context(|| format!("{shown}: read"))?;
                f.write_all_at(&buf[..n], off + done).with_context(|| format!("{}: write at {}", t.path.display(), off + done))?;
                done += n as u64;
            }
            written += len;
        }
    }
    for (t, f) in index.targets.iter().zip(&files) {
        f.sync_all().with_context(|| format!("{}: fsync", t.path.display()))?;
    }
    for d in &index.files {
        let mut data = vec![0u8; d.len as usize];
        journal.read_exact_at(&mut data, d.jpos).with_context(|| format!("{shown}: read"))?;
        let temp = ferry_formats::convert::temp::TempOutput::create(&d.path, if d.executable { 0o755 } else { 0o644 })?;
        temp.file().write_all_at(&data, 0).with_context(|| format!("{}: write", temp.path().display()))?;
        temp.commit(&d.path, true)?;
    }
    Ok(written)
}

/// Removes the journal and fsyncs its directory.
pub fn remove(path: &Path) -> anyhow::Result<()> {
    std::fs::remove_file(path).with_context(|| format!("{}: remove in-place journal", path.display()))?;
    sync_dir(path)
}

fn sync_dir(path: &Path) -> anyhow::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("{}: fsync", dir.display()))
}
