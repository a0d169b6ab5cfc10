//! Micro-guests booted through PVH on Ferry's runtime, and the same ELF under QEMU (TCG).
mod runtime_support;
use ferry_runtime::{run_machine, Controller, ExitReason, VmConfig};
use runtime_support::*;
use std::path::Path;
use std::time::Duration;

fn config(kernel: &Path) -> VmConfig {
    VmConfig {
        name: "micro".into(),
        memory_mib: 128,
        topology: ferry_runtime::cpuid::CpuTopology::flat(1),
        profile: ferry_formats::layout::Profile::builtin("q35-v1").expect("profile"),
        kernel: kernel.to_path_buf(),
        initrd: None,
        guest_root: None,
        images: None,
        cmdline: String::new(),
        devices: Vec::new(),
        smbios_uuid: None,
        console: ferry_runtime::ConsoleSink::None,
        no_reboot: true,
        channel_socket: None,
        firmware: None,
    }
}

#[test]
fn serial_hello_on_runtime_and_qemu() {
    let elf = guest("hello");
    let want = "ferry micro-guest: hello\npvh magic 336ec578\n";
    if qemu_available() {
        let q = qemu(&["-machine".into(), "q35".into()], &elf, "tcg");
        assert_eq!(q.serial, want);
        assert_eq!(q.exit_code, Some(0x31 * 2 + 1));
    }
    if !kvm_available() {
        return;
    }
    let out = run_machine(&config(&elf), &Controller::new(false), Some(Duration::from_secs(20))).expect("boot");
    assert_eq!(out.reason, ExitReason::DebugExit(0x31));
    assert_eq!(text(&out.console), want);
    let codes: Vec<u8> = out.markers.iter().map(|m| m.0).collect();
    assert_eq!(codes, vec![1, 2]);
}

#[test]
fn i8042_reset_ends_the_boot() {
    let elf = guest("reset");
    if qemu_available() {
        let q = qemu(&["-machine".into(), "q35".into()], &elf, "tcg");
        assert_eq!(q.serial, "resetting via i8042\n");
        assert_eq!(q.exit_code, Some(0), "QEMU -no-reboot exits 0 on reset");
    }
    if !kvm_available() {
        return;
    }
    let out = run_machine(&config(&elf), &Controller::new(false), Some(Duration::from_secs(20))).expect("boot");
    assert_eq!(out.reason, ExitReason::Reset);
    assert_eq!(text(&out.console), "resetting via i8042\n");
}

#[test]
fn smbios_uuid_cpuid_and_mp_table_with_four_vcpus() {
    let elf = guest("firmware");
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.raw");
    sparse_disk(&disk, 1 << 20);
    let mut v = spec_json(&elf, &disk, "q35-v1", [4, 3, 5, 6]);
    v["vcpus"] = 4.into();
    v["devices"] = serde_json::json!([]);
    let spec = ferry_formats::layout::MachineSpec::from_json(&v.to_string()).expect("spec");
    // SMBIOS stores the first three UUID fields little-endian.
    let uuid = "smbios type1 uuid 0b4f1f8ed4522b4c9a7e2d6a4f5b9c01\n";
    let cpu = "cpuid1 hypervisor 1 apic 1 initial-apic-id 0 logical 4\n";
    if qemu_available() {
        let q = qemu(&qemu_args(&spec), &elf, "tcg");
        assert!(q.serial.starts_with(uuid) && q.serial.ends_with(cpu), "QEMU printed:\n{}", q.serial);
    }
    if !kvm_available() {
        return;
    }
    let out = run_spec(&spec);
    assert_eq!(out.reason, ExitReason::DebugExit(0x40));
    assert_eq!(text(&out.console), format!("{uuid}mptable cpus 00(bsp) 01 02 03\n{cpu}"));
}

#[test]
fn virtio_net_mac_and_rng_entropy_match_qemu() {
    let elf = guest("netrng");
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.raw");
    sparse_disk(&disk, 1 << 20);
    let v = spec_json(&elf, &disk, "q35-v1", [4, 3, 5, 6]);
    let spec = ferry_formats::layout::MachineSpec::from_json(&v.to_string()).expect("spec");
    let want = "net mac 52:54:00:12:34:56 link 1\nrng submit 0 len 64 random\n";
    if qemu_available() {
        let q = qemu(&qemu_args(&spec), &elf, "tcg");
        assert_eq!(q.serial, want);
    }
    if !kvm_available() {
        return;
    }
    let out = run_spec(&spec);
    assert_eq!(out.reason, ExitReason::DebugExit(0x50));
    assert_eq!(text(&out.console), want);
}
