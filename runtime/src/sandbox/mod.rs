//! The VMM's sandbox, Ferry's equivalent of sVirt: after setup a `ferry run` process
//! restricts itself with Landlock (only its disks, console file, sockets and `/dev/kvm` +
//! `/dev/net/tun`: kernel, initrd and firmware were read before; no TCP; no signals or
//! abstract sockets outside its domain) and each VMM thread installs a seccomp-bpf filter for its class (vCPU, device
//! I/O, monitor) allowing only the system calls that class makes. A forbidden call fails with
//! `EPERM`; a forbidden file open with `EACCES`.
//!
//! Landlock must be entered before the VMM starts any thread (a domain covers the thread that
//! enters it and the threads it starts later); seccomp filters are per thread and are installed
//! by [`enter`] at the start of each thread.
mod landlock;
mod seccomp;

pub use landlock::{restrict_files, FilePolicy, LandlockOutcome};
pub use seccomp::ThreadClass;

use std::sync::atomic::{AtomicBool, Ordering};

static SECCOMP_ON: AtomicBool = AtomicBool::new(false);

/// Errors setting up the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Landlock refused the ruleset.
    #[error("landlock: {0}")]
    Landlock(String),
    /// A seccomp filter could not be built or installed.
    #[error("seccomp filter for {0} threads: {1}")]
    Seccomp(&'static str, String),
}

/// From now on, every VMM thread started by the runtime installs its class's filter.
pub fn enable_seccomp() {
    SECCOMP_ON.store(true, Ordering::SeqCst);
}

/// Whether [`enable_seccomp`] was called.
pub fn seccomp_enabled() -> bool {
    SECCOMP_ON.load(Ordering::SeqCst)
}

/// Installs `class`'s filter on the calling thread when the sandbox is on, then runs the
/// test hook (`FERRY_SANDBOX_PROBE` containing `thread`: the first thread of each class tries
/// a forbidden `openat` and `socket` and reports the result on stderr).
pub fn enter(class: ThreadClass) -> Result<(), SandboxError> {
    if !seccomp_enabled() {
        return Ok(());
    }
    seccomp::install(class)?;
    if std::env::var_os("FERRY_SANDBOX_PROBE").is_some_and(|v| v.to_string_lossy().split(',').any(|p| p == "thread")) {
        probe_thread(class);
    }
    Ok(())
}

/// The test hook's forbidden calls, once per class.
fn probe_thread(class: ThreadClass) {
    static DONE: [AtomicBool; 3] = [AtomicBool::new(false), AtomicBool::new(false), AtomicBool::new(false)];
    if DONE[class as usize].swap(true, Ordering::SeqCst) {
        return;
    }
    let open = std::fs::File::open("/etc/hostname").map(|_| "ok".to_string()).unwrap_or_else(|e| e.to_string());
    // SAFETY: socket() only returns a descriptor (closed below) or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    let socket = if fd >= 0 {
        // SAFETY: `fd` was just returned by socket() and is not used elsewhere.
        unsafe { libc::close(fd) };
        "ok".to_string()
    } else {
        std::io::Error::last_os_error().to_string()
    };
    eprintln!("ferry run: sandbox probe: {} thread: open /etc/hostname: {open}; socket(AF_INET): {socket}", class.name());
}
