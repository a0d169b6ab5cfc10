//! The identical-ABI proof: the pciscan micro-guest prints one line per PCI function (IDs,
//! class, revision, header type, pin, BAR sizes by probing, capability chain, header CRC);
//! under Ferry's runtime and under QEMU (TCG) with the same devices the tables must be equal.
mod runtime_support;
use ferry_formats::layout::MachineSpec;
use ferry_runtime::{run_machine, Controller, ExitReason, VmConfig};
use runtime_support::*;
use std::time::Duration;

fn scan(profile: &str, slots: [u8; 4]) {
    let elf = guest("pciscan");
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.raw");
    sparse_disk(&disk, 8 << 30);
    let mut v = spec_json(&elf, &disk, profile, slots);
    if let Some(devs) = v["devices"].as_array_mut() {
        // Every `ferry convert -o ferry` spec has a balloon (the profile's balloon slot).
        devs.push(serde_json::json!({"id": "balloon0", "addr": {"bus": 0, "slot": 7, "function": 0}, "type": "virtio-balloon"}));
    }
    let spec = MachineSpec::from_json(&v.to_string()).expect("spec");
    let mut qemu_table = None;
    if qemu_available() {
        let q = qemu(&qemu_args(&spec), &elf, "tcg");
        assert_eq!(q.exit_code, Some(0x10 * 2 + 1), "QEMU run failed: {}", q.serial);
        assert!(q.serial.contains("pci scan end"));
        qemu_table = Some(q.serial);
    }
    if !kvm_available() {
        return;
    }
    let mut cfg = VmConfig::from_spec(&spec).expect("config");
    cfg.no_reboot = true;
    let out = run_machine(&cfg, &Controller::new(false), Some(Duration::from_secs(60))).expect("boot");
    assert_eq!(out.reason, ExitReason::DebugExit(0x10));
    let ours = text(&out.console);
    eprintln!("{ours}");
    if let Some(q) = qemu_table {
        assert_eq!(ours, q, "PCI tables differ between Ferry's runtime and QEMU");
    }
}

#[test]
fn q35_pci_table_matches_qemu() {
    scan("q35-v1", [4, 3, 5, 6]);
}

#[test]
fn pc_pci_table_matches_qemu() {
    scan("pc-v1", [3, 4, 5, 6]);
}
