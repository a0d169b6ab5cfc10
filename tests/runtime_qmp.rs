//! The QMP subset, driven by PyPI's `qemu.qmp` client with one script against Ferry's runtime
//! (`ferry run --qmp`) and against QEMU (`-qmp unix:`); the answers must agree.
mod runtime_support;
use runtime_support::*;
use std::path::Path;
use std::process::{Command, Stdio};

fn qmp_client_available() -> bool {
    let ok = Command::new("python3").args(["-c", "import qemu.qmp"]).status().is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIP: python3 module qemu.qmp missing (pip install qemu.qmp)");
    }
    ok
}

fn converse(sock: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/runtime_support/qmp_script.py");
    let out = Command::new("python3").arg(script).arg(sock).output().expect("python3");
    assert!(out.status.success(), "qmp script: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("summary JSON")
}

#[test]
fn same_qmp_script_against_runtime_and_qemu() {
    if !qmp_client_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let elf = guest("idle");
    let disk = dir.path().join("disk.raw");
    sparse_disk(&disk, 1 << 30);
    let spec_v = spec_json(&elf, &disk, "q35-v1", [4, 3, 5, 6]);
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, spec_v.to_string()).expect("spec");
    let mut results = Vec::new();
    if qemu_available() {
        let spec = ferry_formats::layout::MachineSpec::from_json(&spec_v.to_string()).expect("spec");
        let sock = dir.path().join("qemu.sock");
        let mut child = Command::new("qemu-system-x86_64")
            .args(["-nodefaults", "-display", "none", "-accel", "tcg"])
            .args(qemu_args(&spec))
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", sock.display()))
            .arg("-kernel")
            .arg(&elf)
            .stdout(Stdio::null())
            .spawn()
            .expect("qemu");
        let r = converse(&sock);
        let st = child.wait().expect("wait qemu");
        assert!(st.success(), "QEMU exit after quit: {st}");
        results.push(("qemu", r));
    }
    if kvm_available() {
        let sock = dir.path().join("ferry.sock");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["run", "--console", "-", "--qmp"])
            .arg(&sock)
            .arg(&spec_path)
            .stdout(Stdio::null())
            .spawn()
            .expect("ferry run");
        let r = converse(&sock);
        let st = child.wait().expect("wait ferry");
        assert!(st.success(), "ferry exit after quit: {st}");
        results.push(("ferry", r));
    }
    for (engine, r) in &results {
        assert_eq!(r["status0"], "running", "{engine}: {r}");
        assert_eq!(r["status_stopped"], "paused", "{engine}: {r}");
        assert_eq!(r["status_cont"], "running", "{engine}: {r}");
        assert_eq!(r["events"], serde_json::json!(["STOP", "RESUME", "POWERDOWN", "SHUTDOWN"]), "{engine}: {r}");
        assert_eq!(r["block_qdevs"], serde_json::json!(["/machine/peripheral/disk0/virtio-backend"]), "{engine}: {r}");
        assert!(r["pci"].as_array().is_some_and(|a| a.iter().any(|d| d == "04.0 1af4:1042")), "{engine}: {r}");
    }
    if let [(_, a), (_, b)] = &results[..] {
        assert_eq!(a, b, "QEMU and Ferry answered the QMP script differently");
    }
}
