//! `ferry run` and `ferry validate` on micro-guest specs (the binary, end to end).
mod runtime_support;
use runtime_support::*;
use std::process::Command;

#[test]
fn run_boots_a_spec_and_exits_with_the_guest_code() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = write_spec(dir.path(), "pciscan");
    let log = dir.path().join("console.log");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "--no-reboot", "--timeout", "60", "--console"])
        .arg(&log)
        .arg(&spec)
        .output()
        .expect("run ferry");
    assert_eq!(out.status.code(), Some(0x10), "{}", String::from_utf8_lossy(&out.stderr));
    let console = std::fs::read_to_string(&log).expect("log");
    assert!(console.contains("00:04.0 1af4:1042 sub 1af4:1100 class 010000"), "{console}");
    assert!(console.contains("00:1f.2 8086:2922"), "{console}");
}

#[test]
fn run_rejects_a_bad_spec_naming_the_file_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("bad.json");
    std::fs::write(&spec, r#"{"spec_version":1,"name":"x","profile":"q99","memory_mib":64,"vcpus":1,"firmware":"bios","boot":{"kernel":"/nonexistent","cmdline":""},"devices":[]}"#).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry")).arg("run").arg(&spec).output().expect("run ferry");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json") && err.contains("invalid profile q99"), "{err}");
}

fn validate(spec: &std::path::Path, engine: &str, marker: &str, timeout: &str) -> (Option<i32>, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["validate", "--json", "--engine", engine, "--expect", "marker", "--timeout", timeout, "--marker", marker])
        .arg(spec)
        .output()
        .expect("run ferry");
    let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), report, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn validate_reaches_the_marker_on_both_engines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = write_spec(dir.path(), "blk");
    let mut engines = Vec::new();
    if qemu_available() {
        engines.push("qemu");
    }
    if kvm_available() {
        engines.push("ferry");
    }
    for engine in engines {
        let (code, report, err) = validate(&spec, engine, "serial status 0 FERRY-DISK-0", "60");
        assert_eq!(code, Some(0), "{engine}: {err}");
        assert_eq!(report["passed"], true, "{report}");
        assert_eq!(report["milestones"][0]["reached"], true, "{report}");
    }
}

#[test]
fn validate_fails_naming_the_missing_milestone() {
    if !qemu_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = write_spec(dir.path(), "hello");
    let (code, report, err) = validate(&spec, "qemu", "this text never appears", "20");
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(report["passed"], false);
    assert_eq!(report["failed_milestone"], "marker");
    assert!(err.contains("milestone \"marker\""), "{err}");
}
