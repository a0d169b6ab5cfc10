//! How outputs come to exist: a temporary `.NAME.part-PID` next to the final name, created
//! with `O_CREAT|O_EXCL|O_NOFOLLOW` (never through a planted file or symlink), renamed into
//! place only when complete and removed otherwise. Live temporaries are listed so a signal
//! can remove them; [`remove_stale`] removes those a killed process left behind.
use crate::disk::{opened_source, DiskError};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Temporaries of this process not yet renamed or removed.
static LIVE: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
/// Set once [`remove_live`] ran: no temporary may be created after it.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// An output under construction, removed on drop unless committed.
#[derive(Debug)]
pub struct TempOutput {
    file: File,
    path: PathBuf,
    done: bool,
}

/// `.NAME.part-PID` for `output`.
fn temp_path(output: &Path) -> Result<PathBuf, DiskError> {
    let name = output
        .file_name()
        .ok_or_else(|| DiskError::invalid(output, "output path", output.display(), "has no file name"))?;
    let mut temp_name = OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".part-{}", std::process::id()));
    Ok(output.with_file_name(temp_name))
}

impl TempOutput {
    /// Creates the temporary for `output` with permissions `mode` (read-write).
    pub fn create(output: &Path, mode: u32) -> Result<Self, DiskError> {
        check_not_source(output)?;
        let path = temp_path(output)?;
        let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
        if CLOSED.load(Ordering::SeqCst) {
            return Err(DiskError::refused(&path, "interrupted: no new output is created"));
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| DiskError::io(&path, "create", e))?;
        live.insert(path.clone());
        drop(live);
        Ok(TempOutput { file, path, done: false })
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the temporary to `output` (after an fsync of it, and of the directory after,
    /// when `flush`).
    pub fn commit(mut self, output: &Path, flush: bool) -> Result<(), DiskError> {
        if flush {
            self.file.sync_all().map_err(|e| DiskError::io(&self.path, "fsync", e))?;
        }
        check_not_source(output)?;
        // Under the lock, so a signal's cleanup sees the temporary either live or renamed.
        let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
        if CLOSED.load(Ordering::SeqCst) {
            return Err(DiskError::refused(output, "interrupted: not renamed into place"));
        }
        std::fs::rename(&self.path, output).map_err(|e| DiskError::io(output, "rename into place", e))?;
        self.done = true;
        live.remove(&self.path);
        drop(live);
        if flush {
            let dir = output.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            if let Ok(d) = File::open(dir) {
                d.sync_all().map_err(|e| DiskError::io(dir, "fsync", e))?;
            }
        }
        Ok(())
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
            LIVE.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.path);
        }
    }
}

/// Removes every live temporary of this process (on SIGTERM / SIGINT) and refuses new ones;
/// returns the paths removed.
pub fn remove_live() -> Vec<PathBuf> {
    let mut guard = LIVE.lock().unwrap_or_else(|p| p.into_inner());
    CLOSED.store(true, Ordering::SeqCst);
    let live = std::mem::take(&mut *guard);
    drop(guard);
    live.into_iter().filter(|p| std::fs::remove_file(p).is_ok()).collect()
}

/// Refuses an `output` that is, by device and inode (through symlinks and hard links), a
/// source file this process has opened: a disk, an extent, a parent or a backing file.
pub fn check_not_source(output: &Path) -> Result<(), DiskError> {
    let Ok(meta) = std::fs::metadata(output) else { return Ok(()) };
    match opened_source((meta.dev(), meta.ino())) {
        Some(src) if src == output => {
            Err(DiskError::refused(output, "the output is a source of this conversion: refusing to overwrite it"))
        }
        Some(src) => Err(DiskError::refused(
            output,
            format!(
                "the output is the source file {} (same device and inode): refusing to overwrite it",
                src.display()
            ),
        )),
        None => Ok(()),
    }
}

/// Removes the `.NAME.part-PID` temporaries in `dir` whose process no longer exists, and
/// returns their paths. Symlinks and other non-files of that shape are left alone.
pub fn remove_stale(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = stale_pid(&name.to_string_lossy()) else { continue };
        if pid == std::process::id() || process_exists(pid) {
            continue;
        }
        if e.file_type().is_ok_and(|t| t.is_file()) && std::fs::remove_file(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    removed.sort();
    removed
}

/// The PID of a `.NAME.part-PID` file name.
fn stale_pid(name: &str) -> Option<u32> {
    let (head, pid) = name.rsplit_once(".part-")?;
    if !head.starts_with('.') || head.len() < 2 || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok().filter(|&p| p > 0)
}

fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: kill with signal 0 only checks that the process exists; it sends nothing.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_names() {
        assert_eq!(stale_pid(".g-sda.part-123"), Some(123));
        assert_eq!(stale_pid(".g.xml.part-7"), Some(7));
        assert_eq!(stale_pid("g-sda.part-123"), None);
        assert_eq!(stale_pid(".g.part-"), None);
        assert_eq!(stale_pid(".g.part-12a"), None);
        assert_eq!(stale_pid(".part-12"), None);
    }

    #[test]
    fn temp_refuses_planted_symlink_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("o");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, temp_path(&out).unwrap()).unwrap();
        let e = TempOutput::create(&out, 0o644).unwrap_err().to_string();
        assert!(e.contains("create"), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        std::fs::remove_file(temp_path(&out).unwrap()).unwrap();
        let t = TempOutput::create(&out, 0o644).unwrap();
        let p = t.path().to_path_buf();
        assert!(p.exists());
        drop(t);
        assert!(!p.exists());
        let t = TempOutput::create(&out, 0o644).unwrap();
        t.commit(&out, true).unwrap();
        assert!(out.exists() && !p.exists());
    }

    #[test]
    fn stale_temps_of_dead_processes_go() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.path().join(format!(".g-sda.part-{dead}"));
        let live = dir.path().join(format!(".g-sda.part-{}", std::process::id()));
        let other = dir.path().join("g-sda.part-1");
        for p in [&stale, &live, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        assert_eq!(remove_stale(dir.path()), vec![stale.clone()]);
        assert!(!stale.exists() && live.exists() && other.exists());
    }
}
