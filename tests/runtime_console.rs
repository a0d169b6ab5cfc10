//! virtio-console host channel: the `channel` micro-guest opens port 1 (found by its
//! PORT_NAME "org.ferry.channel.0"), waits for the host end, sends a line, echoes back the
//! line the host writes, and waits for the host to hang up. The test is the host: it talks
//! through the unix socket. Oracle: QEMU (TCG) with `-chardev socket,server=on` behind
//! `virtserialport,name=org.ferry.channel.0,nr=1` runs the same guest and the same client.
mod runtime_support;
use runtime_support::*;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const GUEST_SAYS: &str = "port 1 name org.ferry.channel.0\n\
host connected\n\
host wrote ping\n\
host disconnected\n";

/// Connects to the channel socket at `path` once it exists (30 s), with a 30 s read timeout.
fn connect(path: &std::path::Path) -> UnixStream {
    let start = Instant::now();
    let sock = loop {
        match UnixStream::connect(path) {
            Ok(s) => break s,
            Err(_) if start.elapsed() < Duration::from_secs(30) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("{}: {e}", path.display()),
        }
    };
    sock.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    sock
}

/// Connects to `path`, reads the guest's line, writes "ping", reads the echo, hangs up.
fn client(path: PathBuf) -> Vec<String> {
    let sock = connect(&path);
    let mut w = sock.try_clone().expect("clone");
    let mut r = BufReader::new(sock);
    let mut lines = Vec::new();
    let mut line = String::new();
    r.read_line(&mut line).expect("guest line");
    lines.push(std::mem::take(&mut line));
    w.write_all(b"ping\n").expect("write");
    r.read_line(&mut line).expect("echo line");
    lines.push(line);
    lines
}

fn channel_spec(elf: &Path, dir: &Path) -> ferry_formats::layout::MachineSpec {
    let v = serde_json::json!({
        "spec_version": 1, "name": "micro", "profile": "q35-v1", "memory_mib": 128, "vcpus": 1,
        "firmware": "bios", "boot": {"kernel": elf, "cmdline": ""},
        "devices": [{"id": "console0", "addr": {"bus": 0, "slot": 5, "function": 0}, "type": "virtio-console"}]
    });
    std::fs::write(dir.join("spec.json"), v.to_string()).expect("write spec");
    ferry_formats::layout::MachineSpec::from_json(&v.to_string()).expect("spec")
}

#[test]
fn channel_port_talks_both_ways_through_the_socket() {
    let elf = guest("channel");
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = channel_spec(&elf, dir.path());
    let want_client = vec!["hello from the guest\n".to_string(), "echo: ping\n".to_string()];
    if qemu_available() {
        let path = dir.path().join("qemu.sock");
        let mut args = qemu_args(&spec);
        args.extend([
            "-chardev".into(),
            format!("socket,id=ch0,path={},server=on,wait=off", path.display()),
            "-device".into(),
            "virtserialport,chardev=ch0,name=org.ferry.channel.0,bus=console0.0,nr=1".into(),
        ]);
        let t = std::thread::spawn(move || client(path));
        let q = qemu(&args, &elf, "tcg");
        assert_eq!(q.serial, GUEST_SAYS, "QEMU guest printed:\n{}", q.serial);
        assert_eq!(q.exit_code, Some(0x70 * 2 + 1));
        assert_eq!(t.join().expect("client"), want_client);
    }
    if !kvm_available() {
        return;
    }
    let path = dir.path().join("ferry.sock");
    let p2 = path.clone();
    let t = std::thread::spawn(move || client(p2));
    let log = dir.path().join("console.log");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "--no-reboot", "--timeout", "60", "--console"])
        .arg(&log)
        .arg("--console-socket")
        .arg(&path)
        .arg(dir.path().join("spec.json"))
        .output()
        .expect("ferry run");
    let console = text(&std::fs::read(&log).unwrap_or_default());
    assert_eq!(out.status.code(), Some(0x70), "{}\n{console}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(console, GUEST_SAYS);
    assert_eq!(t.join().expect("client"), want_client);
    assert!(!path.exists(), "the socket file is removed when the VM stops");
}

/// The host end outlives a guest reboot: one client connection sees the guest's first boot
/// ask to reboot, then its second boot greet it again on the same connection. The kernel
/// file is replaced (a new inode, as a rebuild does) during the first boot: the second boot
/// loads the bytes read at start-up, as QEMU's -kernel does (CI once saw the sandbox refuse
/// the replaced file at the reboot).
#[test]
fn channel_client_stays_connected_across_a_guest_reboot() {
    if !kvm_available() {
        return; // QEMU's chardev does the same, but the test helper runs QEMU with -no-reboot
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let elf = dir.path().join("channel.elf");
    std::fs::copy(guest("channel"), &elf).expect("copy the micro-guest");
    channel_spec(&elf, dir.path());
    let path = dir.path().join("ferry.sock");
    let p2 = path.clone();
    let elf2 = elf.clone();
    let t = std::thread::spawn(move || {
        let sock = connect(&p2);
        let mut w = sock.try_clone().expect("clone");
        let mut r = BufReader::new(sock);
        let mut lines = Vec::new();
        for say in ["reboot\n", "", "ping\n", ""] {
            let mut line = String::new();
            r.read_line(&mut line).expect("line");
            if lines.is_empty() {
                let new = elf2.with_extension("new");
                std::fs::write(&new, b"not a kernel").expect("write");
                std::fs::rename(&new, &elf2).expect("replace the kernel file");
            }
            lines.push(line);
            w.write_all(say.as_bytes()).expect("write");
        }
        lines
    });
    let log = dir.path().join("console.log");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "--timeout", "60", "--console"])
        .arg(&log)
        .arg("--console-socket")
        .arg(&path)
        .arg(dir.path().join("spec.json"))
        .output()
        .expect("ferry run");
    let console = text(&std::fs::read(&log).unwrap_or_default());
    assert_eq!(out.status.code(), Some(0x70), "{}\n{console}", String::from_utf8_lossy(&out.stderr));
    let lines = t.join().expect("client");
    assert_eq!(lines, ["hello from the guest\n", "echo: reboot\n", "hello from the guest\n", "echo: ping\n"]);
    let boot1 = "port 1 name org.ferry.channel.0\nhost connected\nhost wrote reboot\nrebooting\n";
    assert_eq!(console, format!("{boot1}{GUEST_SAYS}"));
}

#[test]
fn console_socket_that_cannot_be_bound_is_a_one_line_error() {
    if !kvm_available() {
        return; // the machine is built (and the socket bound) only where KVM opens
    }
    let elf = guest("channel");
    let dir = tempfile::tempdir().expect("tempdir");
    channel_spec(&elf, dir.path());
    let bad = dir.path().join("no-such-dir/ch.sock");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "--no-reboot", "--timeout", "5", "--console-socket"])
        .arg(&bad)
        .arg(dir.path().join("spec.json"))
        .output()
        .expect("ferry run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("console0") && err.contains("no-such-dir/ch.sock"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // A machine without a virtio-console has no port to serve.
    let mut spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("spec.json")).expect("spec")).expect("json");
    spec["devices"] = serde_json::json!([]);
    std::fs::write(dir.path().join("spec.json"), spec.to_string()).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "--no-reboot", "--timeout", "5", "--console-socket"])
        .arg(dir.path().join("ch.sock"))
        .arg(dir.path().join("spec.json"))
        .output()
        .expect("ferry run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("has no virtio-console"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
