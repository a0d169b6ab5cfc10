//! Each VM's steps run as child processes of this same binary (`ferry convert`, `ferry
//! validate`): a crash, a panic or an abort in one VM cannot touch another, and the children
//! die with the batch (PR_SET_PDEATHSIG), so a killed batch leaves no writer behind.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// At most this much of a child's stdout (its JSON report) is kept.
const MAX_STDOUT: u64 = 16 << 20;
/// The tail of a child's stderr kept for the failure message.
const STDERR_TAIL: usize = 8 << 10;

pub struct Outcome {
    pub ok: bool,
    pub stdout: Vec<u8>,
    /// The last lines of stderr, control characters escaped.
    pub message: String,
}

/// Escapes control characters (but newlines and tabs) so messages are safe in JSON and XML.
pub fn clean_message(s: &str) -> String {
    s.chars()
        .flat_map(|c| if c.is_control() && c != '\n' && c != '\t' { c.escape_debug().collect::<Vec<_>>() } else { vec![c] })
        .collect()
}

/// Runs `ferry ARGS` (with SOURCE_DATE_EPOCH=`epoch` when given); `started(pid)` is called once the child exists.
pub fn run(args: &[OsString], epoch: Option<i64>, started: &mut dyn FnMut(u32)) -> anyhow::Result<Outcome> {
    let exe = std::env::current_exe().map_err(|e| anyhow::anyhow!("cannot find the ferry executable: {e}"))?;
    let mut cmd = Command::new(exe);
    if let Some(t) = epoch {
        cmd.env("SOURCE_DATE_EPOCH", t.to_string());
    }
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and calls only prctl and
    // getppid, both async-signal-safe; it touches no memory shared with the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The batch died between fork and prctl: do not run orphaned.
            if libc::getppid() == 1 {
                return Err(std::io::Error::other("the batch exited"));
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| anyhow::anyhow!("cannot start ferry {:?}: {e}", args.first()))?;
    let pid = child.id();
    started(pid);
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.take(MAX_STDOUT).read_to_end(&mut buf);
            // Drain the rest so the child never blocks on a full pipe.
            let _ = std::io::copy(o, &mut std::io::sink());
        }
        buf
    });
    let mut tail: Vec<u8> = Vec::new();
    if let Some(e) = err.as_mut() {
        let mut chunk = [0u8; 8192];
        loop {
            match e.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    tail.extend_from_slice(&chunk[..n]);
                    if tail.len() > 2 * STDERR_TAIL {
                        tail.drain(..tail.len() - STDERR_TAIL);
                    }
                }
            }
        }
    }
    let status = child.wait().map_err(|e| anyhow::anyhow!("waiting for ferry: {e}"))?;
    let stdout = reader.join().unwrap_or_default();
    if tail.len() > STDERR_TAIL {
        tail.drain(..tail.len() - STDERR_TAIL);
    }
    let mut message = clean_message(String::from_utf8_lossy(&tail).trim());
    if !status.success() && message.is_empty() {
        message = format!("ferry exited with {status}");
    }
    Ok(Outcome { ok: status.success(), stdout, message })
}
