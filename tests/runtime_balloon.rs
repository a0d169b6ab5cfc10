//! virtio-balloon: the `balloon` micro-guest prints the offered features, inflates four
//! patterned pages and one PFN outside RAM, reads the pages back (dropped pages read zero),
//! deflates, reports `actual`, then follows host targets set over QMP (`balloon`) while the
//! host watches `query-balloon`; finally it renegotiates with STATS_VQ (the device holds the
//! newest stats buffer, returns the older), resets its inflate queue alone (RING_RESET) and
//! checks that EVENT_IDX's used_event decides whether a completion is notified.
//! Oracle: QEMU (TCG) running the same guest with `virtio-balloon-pci-non-transitional` and
//! the same QMP script must print the same text.
mod runtime_support;
use ferry_formats::layout::MachineSpec;
use ferry_runtime::{run_machine, Controller, ExitReason, VmConfig};
use runtime_support::*;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

fn balloon_spec(elf: &Path) -> MachineSpec {
    let v = serde_json::json!({
        "spec_version": 1, "name": "micro", "profile": "q35-v1", "memory_mib": 128, "vcpus": 1,
        "firmware": "bios", "boot": {"kernel": elf, "cmdline": ""},
        "devices": [{"id": "balloon0", "addr": {"bus": 0, "slot": 7, "function": 0}, "type": "virtio-balloon"}]
    });
    MachineSpec::from_json(&v.to_string()).expect("spec")
}

/// Talks QMP on `path` while the machine runs: once `query-balloon` shows the guest waiting
/// (actual = 1 page), asks for 127 MiB until the guest gets there, then for 126 MiB. Returns
/// every distinct `actual` seen and the BALLOON_CHANGE events' values.
fn drive(path: PathBuf) -> (Vec<u64>, Vec<u64>) {
    let start = Instant::now();
    let sock = loop {
        match UnixStream::connect(&path) {
            Ok(s) => break s,
            Err(_) if start.elapsed() < Duration::from_secs(30) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("QMP {}: {e}", path.display()),
        }
    };
    sock.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut w = sock.try_clone().expect("clone");
    let mut r = BufReader::new(sock);
    let mut events: Vec<u64> = Vec::new();
    let mut reply = |w: &mut UnixStream, cmd: serde_json::Value, events: &mut Vec<u64>| -> Option<serde_json::Value> {
        writeln!(w, "{cmd}").ok()?;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let v: serde_json::Value = serde_json::from_str(&line).ok()?;
            if v["event"] == "BALLOON_CHANGE" {
                events.extend(v.pointer("/data/actual").and_then(serde_json::Value::as_u64));
            }
            if v.get("event").is_none() && v.get("QMP").is_none() {
                return Some(v);
            }
        }
    };
    let mut seen: Vec<u64> = Vec::new();
    let Some(_) = reply(&mut w, serde_json::json!({"execute": "qmp_capabilities"}), &mut events) else { return (seen, events) };
    let (mut target, mut sent) = (None, None);
    while start.elapsed() < Duration::from_secs(60) {
        // Each target once: a repeated `balloon` raises another config interrupt, which a
        // slow guest would see in a later step's ISR.
        if let Some(t) = target.filter(|t| sent != Some(*t)) {
            if reply(&mut w, serde_json::json!({"execute": "balloon", "arguments": {"value": t}}), &mut events).is_none() {
                break;
            }
            sent = Some(t);
        }
        let Some(q) = reply(&mut w, serde_json::json!({"execute": "query-balloon"}), &mut events) else { break };
        if q.get("error").is_some() && !seen.is_empty() {
            break; // the machine is gone
        }
        if let Some(a) = q.pointer("/return/actual").and_then(serde_json::Value::as_u64) {
            if seen.last() != Some(&a) {
                seen.push(a);
            }
            if a == 128 * MIB - 4096 {
                target = Some(127 * MIB);
            } else if a == 127 * MIB {
                target = Some(126 * MIB);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (seen, events)
}

const WANT: &str = "balloon features 0000010130000012 queues 3\n\
queue size 128 num_pages 0 actual 0\n\
before a5a50040 a5a51040 a5a52040 a5a53040\n\
inflate submit 0 status 0f\n\
inflated 00000000 00000000 00000000 00000000\n\
actual 4\n\
deflate done actual 0 status 0f\n\
reused 600d0000 600d0001 600d0002 600d0003\n\
host target 256 isr 02\n\
host target now 512\n\
stats first: used 0 second: used 1 id 0\n\
queue reset 0 enable 0 size 128 re-enabled reset 0 enable 1\n\
after queue reset inflate 0 page 00000000 status 0f\n\
event_idx submit 00 isr 00 01\n";

#[test]
fn balloon_inflates_deflates_and_follows_qmp_targets_like_qemu() {
    let elf = guest("balloon");
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = balloon_spec(&elf);
    if qemu_available() {
        let path = dir.path().join("qemu.qmp");
        let p2 = path.clone();
        let t = std::thread::spawn(move || drive(p2));
        let mut args = qemu_args(&spec);
        args.extend(["-qmp".into(), format!("unix:{},server=on,wait=off", path.display())]);
        let q = qemu(&args, &elf, "tcg");
        let (seen, events) = t.join().expect("qmp thread");
        assert_eq!(q.exit_code, Some(0x60 * 2 + 1), "QEMU printed:\n{}", q.serial);
        assert_eq!(q.serial, WANT, "QEMU printed:\n{}", q.serial);
        assert!(seen.contains(&(127 * MIB)), "QEMU query-balloon values {seen:?}");
        // QEMU's monitor rate-limits BALLOON_CHANGE to one a second, so only some arrive.
        let guest_values = [128 * MIB - 4 * 4096, 128 * MIB, 128 * MIB - 4096, 127 * MIB];
        assert!(!events.is_empty() && events.iter().all(|e| guest_values.contains(e)), "QEMU BALLOON_CHANGE values {events:?}");
    }
    if !kvm_available() {
        return;
    }
    let path = dir.path().join("ferry.qmp");
    let ctl = Controller::new(false);
    let _qmp = ferry_runtime::qmp::serve(&path, ctl.clone()).expect("qmp");
    let t = std::thread::spawn(move || drive(path));
    let mut cfg = VmConfig::from_spec(&spec).expect("config");
    cfg.no_reboot = true;
    let out = run_machine(&cfg, &ctl, Some(Duration::from_secs(60))).expect("boot");
    let (seen, events) = t.join().expect("qmp thread");
    assert_eq!(out.reason, ExitReason::DebugExit(0x60), "{}", text(&out.console));
    assert_eq!(text(&out.console), WANT);
    assert!(seen.contains(&(127 * MIB)), "runtime query-balloon values {seen:?}");
    // Ours are not rate-limited: the change the client asked for arrives, and is the last.
    assert_eq!(events.last(), Some(&(127 * MIB)), "runtime BALLOON_CHANGE values {events:?}");
}

/// A spec written by `ferry convert -o ferry` (which always places `balloon0` at the
/// profile's balloon slot) runs with `ferry run` once given a kernel: the micro-guest's PCI
/// scan finds the balloon where the spec put it.
#[test]
fn ferry_run_boots_a_converted_spec_with_its_balloon() {
    if !kvm_available() {
        return;
    }
    let elf = guest("pciscan");
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("blank.raw");
    sparse_disk(&disk, 64 << 20);
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).expect("mkdir");
    let conv = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["convert", "-i", "disk"])
        .arg(&disk)
        .args(["-o", "ferry", "-os"])
        .arg(&out_dir)
        .output()
        .expect("ferry convert");
    assert!(conv.status.success(), "{}", String::from_utf8_lossy(&conv.stderr));
    let spec_path = out_dir.join("blank.ferry.json");
    let mut spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&spec_path).expect("spec")).expect("json");
    let balloon = spec["devices"].as_array().and_then(|d| d.iter().find(|d| d["type"] == "virtio-balloon")).cloned().expect("balloon in spec");
    let slot = balloon["addr"]["slot"].as_u64().expect("slot");
    spec["boot"] = serde_json::json!({"kernel": elf, "cmdline": ""});
    std::fs::write(&spec_path, spec.to_string()).expect("write spec");
    let log = dir.path().join("console.log");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "--no-reboot", "--timeout", "60", "--console"])
        .arg(&log)
        .arg(&spec_path)
        .output()
        .expect("ferry run");
    assert_eq!(run.status.code(), Some(0x10), "{}", String::from_utf8_lossy(&run.stderr));
    let console = std::fs::read_to_string(&log).expect("log");
    let row = format!("00:{slot:02x}.0 1af4:1045 sub 1af4:1100 class 00ff00");
    assert!(console.contains(&row), "no {row:?} in:\n{console}");
}
