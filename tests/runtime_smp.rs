//! SMP: the `smp` micro-guest wakes every AP with INIT-SIPI-SIPI through a real-mode
//! trampoline (as Linux does) and prints each CPU's local APIC ID and whether CPUID (leaves 1
//! and 0xB) agrees. Under QEMU (TCG, `-smp` with the same topology) and on Ferry's runtime the
//! lines are identical and equal the topology's APIC IDs, for 1, 2, 8 and 64 vCPUs and a
//! 2-socket × 3-core layout whose APIC IDs have a gap.
mod runtime_support;
use ferry_runtime::ExitReason;
use runtime_support::*;

/// The lines the guest prints for `sockets` × `cores` × `threads` (QEMU's APIC ID layout: each
/// level padded to a power of two).
fn expected(sockets: u32, cores: u32, threads: u32) -> String {
    let bits = |n: u32| if n <= 1 { 0 } else { 32 - (n - 1).leading_zeros() };
    let (tb, cb) = (bits(threads), bits(cores));
    let mut s = format!("smp: cpus={}\n", sockets * cores * threads);
    for p in 0..sockets {
        for c in 0..cores {
            for t in 0..threads {
                s += &format!("smp: apic {} cpuid agrees\n", (p << (cb + tb)) | (c << tb) | t);
            }
        }
    }
    s
}

fn check(sockets: u32, cores: u32, threads: u32) {
    let n = sockets * cores * threads;
    let elf = guest("smp");
    let want = expected(sockets, cores, threads);
    if qemu_available() {
        let smp = format!("{n},sockets={sockets},cores={cores},threads={threads}");
        let args: Vec<String> = ["-machine", "q35", "-m", "128", "-smp", &smp, "-append", &n.to_string()].iter().map(|s| s.to_string()).collect();
        let q = qemu(&args, &elf, "tcg");
        assert_eq!(q.serial.split_once("smp: ").map(|(_, t)| format!("smp: {t}")).unwrap_or(q.serial.clone()), want, "QEMU -smp {smp}");
        assert_eq!(q.exit_code, Some(0x33 * 2 + 1));
    }
    if !kvm_available() {
        return;
    }
    let v = serde_json::json!({
        "spec_version": 1, "name": "smp", "profile": "q35-v1", "memory_mib": 128, "vcpus": n,
        "topology": {"sockets": sockets, "cores": cores, "threads": threads},
        "firmware": "bios", "boot": {"kernel": elf, "cmdline": n.to_string()}, "devices": []
    });
    let spec = ferry_formats::layout::MachineSpec::from_json(&v.to_string()).expect("spec");
    let out = run_spec(&spec);
    assert_eq!(text(&out.console), want, "runtime, {n} vCPUs");
    assert_eq!(out.reason, ExitReason::DebugExit(0x33));
}

#[test]
fn one_vcpu() {
    check(1, 1, 1);
}

#[test]
fn two_vcpus() {
    check(1, 2, 1);
}

#[test]
fn eight_vcpus_as_two_sockets_of_two_cores_of_two_threads() {
    check(2, 2, 2);
}

#[test]
fn sixty_four_vcpus() {
    check(1, 64, 1);
}

#[test]
fn two_sockets_of_three_cores_leave_a_gap_in_apic_ids() {
    check(2, 3, 1);
}

/// With 4 vCPUs QEMU's virtio-blk-pci has 4 request queues (num-queues defaults to the vCPU
/// count) and 5 MSI-X vectors; the runtime presents the same: the pciscan tables agree, and the
/// blk micro-guest still completes its requests.
#[test]
fn virtio_blk_has_a_queue_per_vcpu_as_on_qemu() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.raw");
    test_disk(&disk);
    let scan = guest("pciscan");
    let mut v = spec_json(&scan, &disk, "q35-v1", [4, 3, 5, 6]);
    v["vcpus"] = 4.into();
    let spec = ferry_formats::layout::MachineSpec::from_json(&v.to_string()).expect("spec");
    let mut qemu_table = None;
    if qemu_available() {
        let q = qemu(&qemu_args(&spec), &scan, "tcg");
        assert!(q.serial.contains("00:04.0 1af4:1042"), "{}", q.serial);
        qemu_table = Some(q.serial);
    }
    if !kvm_available() {
        return;
    }
    let out = run_spec(&spec);
    let ours = text(&out.console);
    if let Some(q) = qemu_table {
        assert_eq!(ours, q, "pciscan tables differ with 4 vCPUs");
    }
    let blk = guest("blk");
    v["boot"]["kernel"] = serde_json::json!(blk);
    let spec = ferry_formats::layout::MachineSpec::from_json(&v.to_string()).expect("spec");
    let out = run_spec(&spec);
    assert_eq!(out.reason, ExitReason::DebugExit(0x20));
    assert!(text(&out.console).contains("write sector 3 status 0 flush status 0"), "{}", text(&out.console));
}
