//! Temporaries and signals (issue 10 point 6): SIGTERM and SIGINT remove the temporary being
//! written; after SIGKILL the next run into the same directory removes the stale temporary of
//! the dead process and says so.
mod safety_support;
use safety_support::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `ferry img convert -c -O qcow2 SRC OUT` (slow enough to be interrupted).
fn start(src: &Path, out: &Path) -> Child {
    Command::new("timeout")
        .args(["-s", "KILL", "300", env!("CARGO_BIN_EXE_ferry"), "img", "convert", "-c", "-O", "qcow2"])
        .arg(src)
        .arg(out)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ferry")
}

/// Waits until a temporary appears in `dir`; false if the run ended first.
fn wait_for_temp(child: &mut Child, dir: &Path) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(120) {
        if !temps(dir).is_empty() {
            // Let it write a little.
            std::thread::sleep(Duration::from_millis(300));
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// The PID of ferry under `timeout` (its only child).
fn ferry_pid(child: &Child) -> String {
    let out = Command::new("pgrep").args(["-P", &child.id().to_string()]).output().expect("pgrep");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn signal(pid: &str, sig: &str) {
    assert!(Command::new("kill").args(["-s", sig, pid]).status().unwrap().success());
}

#[test]
fn sigterm_and_sigint_remove_the_temporary() {
    let top = tempfile::tempdir().unwrap();
    let d = top.path();
    let src = d.join("src.raw");
    raw(&src, 256 << 20);
    let sum = sha(&src);
    for (sig, code) in [("TERM", 143), ("INT", 130)] {
        let out = d.join("out.qcow2");
        let mut child = start(&src, &out);
        assert!(wait_for_temp(&mut child, d), "no temporary appeared: the conversion was too quick");
        signal(&ferry_pid(&child), sig);
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{err}");
        assert!(err.contains(&format!("interrupted by SIG{sig}: removed 1 temporary file(s)")), "{err}");
        assert!(temps(d).is_empty(), "{:?}", temps(d));
        assert!(!out.exists());
    }
    assert_eq!(sha(&src), sum);
}

#[test]
fn stale_temporaries_of_killed_runs_are_removed() {
    let top = tempfile::tempdir().unwrap();
    let d = top.path();
    let src = d.join("src.raw");
    raw(&src, 256 << 20);
    let out = d.join("out.qcow2");
    let mut child = start(&src, &out);
    assert!(wait_for_temp(&mut child, d), "no temporary appeared: the conversion was too quick");
    signal(&ferry_pid(&child), "KILL");
    child.wait().unwrap();
    let left = temps(d);
    assert_eq!(left.len(), 1, "SIGKILL leaves its temporary: {left:?}");
    // Next run into the same directory.
    let small = d.join("small.raw");
    raw(&small, 1 << 20);
    let (code, _, err) = ferry_t(60, &["img", "convert", "-O", "qcow2", s(&small), s(&d.join("other.qcow2"))]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("removed stale temporary file") && err.contains(&left[0]), "{err}");
    assert!(temps(d).is_empty());
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
