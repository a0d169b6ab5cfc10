//! `ferry run`'s sandbox (Landlock + per-thread seccomp), proved with the runtime's test hook
//! `FERRY_SANDBOX_PROBE`: after the restriction the main thread opens a file outside the
//! policy (EACCES from Landlock) and one inside it (allowed), and the first vCPU, device-I/O
//! and monitor threads each try `openat` and `socket(AF_INET)` (EPERM from their filters; the
//! monitor may open hot-plugged disks, so its open meets Landlock's EACCES instead). A
//! micro-guest doing virtio-blk I/O gives the same console and exit code with and without the
//! sandbox.
mod runtime_support;
use runtime_support::*;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn blk_spec(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let elf = guest("blk");
    let disk = dir.join("disk.raw");
    test_disk(&disk);
    let mut v = spec_json(&elf, &disk, "q35-v1", [4, 3, 5, 6]);
    v["devices"] = serde_json::json!([v["devices"][0].clone()]);
    let spec = dir.join("spec.json");
    std::fs::write(&spec, v.to_string()).expect("write spec");
    (spec, disk)
}

fn run(spec: &std::path::Path, console: &std::path::Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "--no-reboot", "--timeout", "60", "--console"])
        .arg(console)
        .args(extra)
        .arg(spec)
        .output()
        .expect("ferry run");
    (out.status.code(), std::fs::read_to_string(console).unwrap_or_default(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_guest_doing_disk_io_runs_the_same_inside_the_sandbox() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (spec, _) = blk_spec(dir.path());
    // The guest reads sectors 0, 1 and one past 4 GiB and writes sector 3: both runs read the
    // same data.
    let (code_free, console_free, _) = run(&spec, &dir.path().join("free.log"), &["--no-sandbox"]);
    let (code, console, err) = run(&spec, &dir.path().join("boxed.log"), &[]);
    assert_eq!(code, code_free, "{err}");
    assert_eq!(console, console_free);
    assert!(console.contains("write sector 3 status 0 flush status 0"), "{console}");
}

#[test]
fn forbidden_opens_and_syscalls_are_refused_in_every_thread_class() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (spec, disk) = blk_spec(dir.path());
    let qmp = dir.path().join("qmp.sock");
    let probe = format!("open:/etc/hostname,open:{},thread", disk.display());
    let child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "-S", "--no-reboot", "--timeout", "60", "--console"])
        .arg(dir.path().join("console.log"))
        .arg("--qmp")
        .arg(&qmp)
        .arg(&spec)
        .env("FERRY_SANDBOX_PROBE", &probe)
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferry run");
    // Talk QMP (the monitor thread's probe runs when it starts), then let the guest run.
    let start = Instant::now();
    let stream = loop {
        if let Ok(s) = UnixStream::connect(&qmp) {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no QMP socket");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut w = stream;
    let mut line = String::new();
    reader.read_line(&mut line).expect("greeting");
    for cmd in ["qmp_capabilities", "query-status", "cont"] {
        writeln!(w, "{{\"execute\": \"{cmd}\"}}").expect("send");
        // Events (RESUME after `cont`) may come before the reply, as on QEMU: skip them.
        loop {
            line.clear();
            reader.read_line(&mut line).expect("reply");
            if !line.contains("\"event\"") {
                break;
            }
        }
        assert!(line.contains("\"return\""), "{cmd}: {line}");
    }
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0x20), "{err}");
    assert!(err.contains("main thread: open /etc/hostname: Permission denied (os error 13)"), "{err}");
    assert!(err.contains(&format!("main thread: open {}: ok", disk.display())), "{err}");
    assert!(err.contains("landlock Full") || err.contains("landlock Partial"), "{err}");
    // The monitor may open files (hot-plugged disks): Landlock refuses this one (EACCES); the
    // others may not open at all (EPERM from seccomp).
    for (class, open) in [("vcpu", "Operation not permitted (os error 1)"), ("io", "Operation not permitted (os error 1)"), ("monitor", "Permission denied (os error 13)")] {
        let want = format!("{class} thread: open /etc/hostname: {open}; socket(AF_INET): Operation not permitted (os error 1)");
        assert!(err.contains(&want), "{class}: {err}");
    }
}

/// The VMM needs no root: as `nobody` with only /dev/kvm's group (`setpriv`), inside the
/// sandbox, the micro-guest boots; the guest files are the only other files it can open.
#[test]
fn runs_as_an_unprivileged_user_with_only_dev_kvm() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !kvm_available() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_ferry");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let kvm_gid = std::fs::metadata("/dev/kvm").map(|m| m.gid()).unwrap_or(0);
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv").args(["--reuid=65534", "--regid=65534", &format!("--groups={kvm_gid}")]).args(args).output()
    };
    if !root || !as_nobody(&["test", "-x", bin]).is_ok_and(|o| o.status.success()) {
        eprintln!("SKIP: needs root and setpriv to drop to nobody, and {bin} reachable by nobody");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let elf = dir.path().join("hello.elf");
    std::fs::copy(guest("hello"), &elf).expect("copy");
    let disk = dir.path().join("disk.raw");
    test_disk(&disk);
    std::fs::set_permissions(&disk, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let spec = dir.path().join("spec.json");
    let mut v = spec_json(&elf, &disk, "q35-v1", [4, 3, 5, 6]);
    v["devices"] = serde_json::json!([v["devices"][0].clone()]);
    std::fs::write(&spec, v.to_string()).expect("write spec");
    let out = as_nobody(&[bin, "run", "--no-reboot", "--timeout", "60", spec.to_str().expect("utf-8")]).expect("setpriv");
    assert_eq!(out.status.code(), Some(0x31), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ferry micro-guest: hello"));
}
