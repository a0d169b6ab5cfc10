//! SIGTERM, SIGINT and SIGHUP during a command that writes outputs: the temporaries it is
//! writing are removed and Ferry exits 128+signal. The signals are blocked in every thread
//! and taken by one thread with `sigwait`, so the cleanup runs as ordinary code, not in a
//! signal handler. (Children started with `std::process::Command` get a clean mask.)
use ferry_formats::convert::temp;

const SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// Installs the handling; call first thing, before any other thread starts.
pub fn remove_temps_on_signal() {
    // SAFETY: sigset_t is plain data that sigemptyset initialises; pthread_sigmask only
    // changes this thread's mask (threads started later inherit it).
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in SIGNALS {
            libc::sigaddset(&mut set, s);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        set
    };
    let spawned = std::thread::Builder::new().name("signals".into()).spawn(move || loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: sigwait reads the initialised set and writes the signal number to a local.
        if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
            continue;
        }
        let removed = temp::remove_live();
        let name = match sig {
            libc::SIGTERM => "SIGTERM",
            libc::SIGINT => "SIGINT",
            _ => "SIGHUP",
        };
        eprintln!("ferry: interrupted by {name}: removed {} temporary file(s)", removed.len());
        std::process::exit(128 + sig);
    });
    if spawned.is_err() {
        // No thread to take them: let the signals act as before.
        // SAFETY: unblocks the same set in this thread.
        unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    }
}

/// Removes the temporaries that killed runs left in `dir` (`.NAME.part-PID` of a PID that
/// no longer exists), saying so on stderr.
pub fn remove_stale_temps(dir: &std::path::Path) {
    for p in temp::remove_stale(dir) {
        eprintln!("ferry: removed stale temporary file {} (its process is gone)", p.display().to_string().escape_debug());
    }
}
