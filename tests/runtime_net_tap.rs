//! virtio-net over a tap device: the nettap micro-guest sends a frame the host receives on the
//! tap (AF_PACKET peer) and receives the host's reply; the same guest and peer under QEMU
//! (`-netdev tap`) print the same lines. Needs root (CAP_NET_ADMIN) for `ip tuntap`.
mod runtime_support;
use runtime_support::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct TapDev(String);

impl Drop for TapDev {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["tuntap", "del", "dev", &self.0, "mode", "tap"]).status();
    }
}

fn make_tap() -> Option<TapDev> {
    // One name per test: the tests of this file run in parallel in one process.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("fyt{}x{n}", std::process::id() % 100_000);
    let ok = Command::new("ip").args(["tuntap", "add", "dev", &name, "mode", "tap"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIP: cannot create a tap device (needs root and /dev/net/tun)");
        return None;
    }
    let dev = TapDev(name);
    Command::new("ip").args(["link", "set", "dev", &dev.0, "up"]).status().ok()?;
    Some(dev)
}

/// Starts the AF_PACKET peer and waits until it is bound.
fn peer(tap: &str) -> Child {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/runtime_support/tap_peer.py");
    let mut child = Command::new("python3").arg(script).arg(tap).stdout(Stdio::piped()).spawn().expect("python3");
    let mut line = String::new();
    if let Some(out) = child.stdout.as_mut() {
        BufReader::new(out).read_line(&mut line).expect("peer output");
    }
    assert_eq!(line.trim(), "ready");
    child
}

fn peer_result(mut child: Child) -> String {
    let _ = child.kill();
    let out = child.wait_with_output().expect("peer");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn frames_cross_the_tap_both_ways() {
    exchange("nettap", None, "virtio-net-pci-non-transitional");
}

/// The same exchange through the legacy interface of a transitional virtio-net (10-byte
/// headers on the guest side, 12 on the tap): QEMU's `virtio-net-pci-transitional` and the
/// runtime print the same lines and the host peer gets the frame.
#[test]
fn legacy_frames_cross_the_tap_both_ways() {
    exchange("legacynet", Some("transitional"), "virtio-net-pci-transitional");
}

/// Boots micro-guest `name` with one virtio-net at 00:03.0 on a fresh tap, under QEMU
/// (`qemu_device`) and on the runtime (spec `model`): both print the same lines and the
/// host peer receives the guest's frame each time.
fn exchange(name: &str, model: Option<&str>, qemu_device: &str) {
    let Some(tap) = make_tap() else { return };
    let elf = guest(name);
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.raw");
    sparse_disk(&disk, 1 << 20);
    let mut v = spec_json(&elf, &disk, "q35-v1", [4, 3, 5, 6]);
    let mut net = serde_json::json!({"id": "net0", "addr": {"bus": 0, "slot": 3, "function": 0}, "type": "virtio-net",
        "mac": "52:54:00:12:34:56", "backend": {"kind": "tap", "name": tap.0}});
    if let Some(m) = model {
        net["model"] = m.into();
    }
    v["devices"] = serde_json::json!([net]);
    let spec = ferry_formats::layout::MachineSpec::from_json(&v.to_string()).expect("spec");
    let want = "tx done\nrx ferry-rx-frame len-ok 1\n";
    if qemu_available() {
        let p = peer(&tap.0);
        let mut args = vec!["-machine".to_string(), "q35".into(), "-m".into(), "128".into()];
        args.extend(["-netdev".into(), format!("tap,id=n0,ifname={},script=no,downscript=no", tap.0)]);
        args.extend(["-device".into(), format!("{qemu_device},netdev=n0,bus=pcie.0,addr=0x3,mac=52:54:00:12:34:56")]);
        let q = qemu(&args, &elf, "tcg");
        assert_eq!(q.serial, want);
        assert!(peer_result(p).contains("got ferry-tx-frame"));
    }
    if !kvm_available() {
        return;
    }
    let p = peer(&tap.0);
    let out = run_spec(&spec);
    assert_eq!(text(&out.console), want);
    assert!(peer_result(p).contains("got ferry-tx-frame"));
}
