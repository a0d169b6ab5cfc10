//! The redo journal of `ferry convert --in-place`: `.TARGET.ferry-in-place` next to the first
//! target image. Layout: a 4 KiB header (magic, version, writer's PID), the data records
//! (every byte the conversion writes into the images, appended in order), a JSON index (for
//! each target: where each final range's bytes lie in the journal, the file's length before
//! and after; the description files), and a 64-byte trailer (magic, index position and
//! length, SHA-256 of everything before it). The journal is complete only when the trailer
//! is present and its checksum matches: the trailer is written after the rest is fsynced,
//! then fsynced itself, and that is the commit point. Applying it is idempotent: every range
//! is a plain overwrite.

pub use super::format::{FileIndex, Found, Index, TargetIndex};
use super::format::{self, CHUNK, HEADER};
use anyhow::{bail, Context};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The journal of `target` (the first image of a conversion).
pub fn path_for(target: &Path) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    target.with_file_name(format!(".{name}.ferry-in-place"))
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
        let head = format::header(std::process::id());
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
        let tr = format::trailer(index_pos, text.len() as u64, &digest);
        self.file.write_all_at(&tr, st.end).with_context(|| format!("{shown}: write trailer"))?;
        self.file.sync_all().with_context(|| format!("{shown}: fsync"))?;
        Ok(())
    }
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
    let found = format::parse(meta.len(), &mut |buf, off| file.read_exact_at(buf, off)).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    Ok((found, file))
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
