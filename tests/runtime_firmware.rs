//! Firmware boot on Ferry's runtime, as QEMU presents it: the distribution's SeaBIOS
//! (`bios-256k.bin`) runs from the reset vector, reads fw_cfg (DMA), installs the runtime's
//! ACPI tables through `etc/table-loader`, the SMBIOS UUID of the spec, follows `bootorder`,
//! finds the virtio-blk disk and boots its MBR: the marker micro-guest
//! (`testdata/microguests/mbr-marker.S`) prints its line and leaves through 0xf4.
//!
//! Oracles: the guest's own output, and SeaBIOS's debug console (port 0x402) reaching the same
//! milestones in the same order on the runtime and under QEMU (TCG here; `-debugcon`), q35 and
//! pc. Lines that differ by design are not milestones: KVM-only lines (kvmclock, "Running on
//! KVM"), the VGA option ROM and kvmvapic (the runtime has no VGA emulation), RSDT (QEMU) vs
//! XSDT (runtime), the drive's CHS geometry (QEMU's virtio-blk offers VIRTIO_BLK_F_GEOMETRY)
//! and e820 reservations. The PS/2 keyboard's line is checked on its own (SeaBIOS runs it
//! in a thread, so its place varies).
mod runtime_support;
use runtime_support::*;
use std::path::Path;
use std::process::Command;

const SEABIOS: &str = "/usr/share/seabios/bios-256k.bin";
const MARKER: &str = "ferry mbr: booted by firmware";
const UUID: &str = "0c9a3c1e-6f2b-4a55-9d1e-b00710000009";

/// SeaBIOS's milestones, in order, on both engines.
const MILESTONES: &[&str] = &[
    "SeaBIOS (version",
    "Running on QEMU (",
    "Found QEMU fw_cfg",
    "QEMU fw_cfg DMA interface supported",
    "qemu/e820: addr 0x0000000000000000 len 0x0000000008000000 [RAM]",
    "boot order:",
    "1: /pci@i0cf8/scsi@4/disk@0,0",
    "=== PCI bus & bridge init ===",
    "=== PCI device probing ===",
    "=== PCI new allocation pass #2 ===",
    "PCI: init bdf=00:04.0 id=1af4:1042",
    "Found 1 cpu(s) max supported 1 cpu(s)",
    "Copying SMBIOS",
    "table(50434146)=",
    "ACPI: parse DSDT at",
    "Machine UUID 0c9a3c1e-6f2b-4a55-9d1e-b00710000009",
    "found virtio-blk at 00:04.0",
    "pci dev 00:04.0 using modern (1.0) virtio mode",
    "Searching bootorder for: /pci@i0cf8/*@4",
    "All threads complete.",
    "e820 map has",
    "Booting from Hard Disk...",
    "Booting from 0000:7c00",
    MARKER,
];

fn ferry(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferry")).args(args).output().expect("ferry")
}

fn mbr_disk(dir: &Path, boot_code: bool) -> std::path::PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/microguests/mbr-marker.S");
    let (obj, bin) = (dir.join("mbr.o"), dir.join("mbr.bin"));
    for cmd in [
        Command::new("as").arg("--32").arg(&src).arg("-o").arg(&obj).status(),
        Command::new("ld").args(["-m", "elf_i386", "-Ttext", "0x7c00", "--oformat", "binary"]).arg(&obj).arg("-o").arg(&bin).status(),
    ] {
        assert!(cmd.is_ok_and(|s| s.success()), "assembling mbr-marker.S");
    }
    let mut disk = if boot_code { std::fs::read(&bin).expect("mbr") } else { Vec::new() };
    disk.resize(1 << 20, 0);
    let img = dir.join(if boot_code { "mbr.img" } else { "blank.img" });
    std::fs::write(&img, &disk).expect("img");
    img
}

fn spec(dir: &Path, img: &Path, profile: &str) -> String {
    let spec = serde_json::json!({
        "spec_version": 1, "name": "mbr", "profile": profile, "memory_mib": 128, "vcpus": 1, "firmware": "bios",
        "smbios_uuid": UUID,
        "devices": [{"id": "disk0", "addr": {"bus": 0, "slot": 4, "function": 0}, "type": "virtio-blk",
            "file": img, "format": "raw", "serial": "mbr0", "bootindex": 1}]
    });
    let sp = dir.join(format!("{profile}-{}.ferry.json", img.file_stem().and_then(|s| s.to_str()).unwrap_or("x")));
    std::fs::write(&sp, spec.to_string()).expect("spec");
    sp.to_str().expect("utf-8").to_string()
}

/// Asserts every milestone appears in `log`, in order; returns the log.
fn milestones_in_order(log: &Path, what: &str) -> String {
    let text = String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
    let mut at = 0;
    for m in MILESTONES {
        match text[at..].find(m) {
            Some(i) => at += i + m.len(),
            None => panic!("{what}: SeaBIOS milestone {m:?} missing (or out of order) in the debug console:\n{text}"),
        }
    }
    text
}

fn validate(engine: &str, spec: &str, log: &Path) -> std::process::Output {
    let log = log.to_str().expect("utf-8");
    ferry(&["validate", "--engine", engine, "--boot", "firmware", "--firmware-log", log, "--expect", "marker", "--marker", MARKER, "--timeout", "240", spec])
}

/// The MBR micro-guest boots through SeaBIOS on the runtime and under QEMU, on q35 and pc,
/// and SeaBIOS logs the same milestones on both.
#[test]
fn mbr_marker_boots_through_seabios_on_both_engines() {
    if !Path::new(SEABIOS).exists() {
        eprintln!("SKIP: {SEABIOS} not installed (seabios)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = mbr_disk(dir.path(), true);
    let (kvm, qemu) = (kvm_available(), qemu_available());
    for profile in ["q35-v1", "pc-v1"] {
        let s = spec(dir.path(), &img, profile);
        if kvm {
            let log = dir.path().join(format!("{profile}.ferry.log"));
            let o = validate("ferry", &s, &log);
            assert!(o.status.success(), "{profile} on the runtime: {}", String::from_utf8_lossy(&o.stderr));
            let text = milestones_in_order(&log, &format!("{profile} on the runtime"));
            // SeaBIOS's PS/2 thread runs beside the others: present, in no fixed order.
            assert!(text.contains("PS2 keyboard initialized"), "{text}");
            assert!(text.contains(if profile == "q35-v1" { "Running on QEMU (q35)" } else { "Running on QEMU (i440fx)" }), "{text}");
        }
        if qemu {
            let log = dir.path().join(format!("{profile}.qemu.log"));
            let o = validate("qemu", &s, &log);
            assert!(o.status.success(), "{profile} under QEMU: {}", String::from_utf8_lossy(&o.stderr));
            let text = milestones_in_order(&log, &format!("{profile} under QEMU"));
            assert!(text.contains("PS2 keyboard initialized"), "{text}");
        }
    }
    if kvm {
        // `ferry run` ends with the guest's debug-exit code (0x10).
        let s = spec(dir.path(), &img, "q35-v1");
        let o = ferry(&["run", "--boot", "firmware", "--console", "/dev/null", "--timeout", "240", &s]);
        assert_eq!(o.status.code(), Some(0x10), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

/// A disk without boot code is refused before booting, with the MBR message, on both engines;
/// a bad image size and a UEFI spec without an ESP are refused on the runtime in one line.
#[test]
fn firmware_boot_refusals_say_why() {
    if !Path::new(SEABIOS).exists() {
        eprintln!("SKIP: {SEABIOS} not installed (seabios)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = mbr_disk(dir.path(), false);
    let s = spec(dir.path(), &img, "q35-v1");
    for engine in ["ferry", "qemu"] {
        let o = validate(engine, &s, &dir.path().join("x.log"));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("the boot disk has no boot loader in its MBR"), "{engine}: {err}");
    }
    let o = ferry(&["run", "--boot", "firmware", "--firmware", "/nonexistent/bios.bin", &s]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("firmware file not found: /nonexistent/bios.bin (--firmware)"));
    // An image QEMU would not map either (not a multiple of 64 KiB).
    let odd = dir.path().join("odd.bin");
    std::fs::write(&odd, vec![0u8; 1000]).expect("odd");
    let good = spec(dir.path(), &mbr_disk(dir.path(), true), "q35-v1");
    let o = ferry(&["run", "--boot", "firmware", "--firmware", odd.to_str().expect("utf-8"), &good]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("size 1000 bytes is not a multiple of 64 KiB"), "{err}");
    // UEFI: an MBR-only disk has no ESP for OVMF to boot from (pflash: tests/runtime_pflash.rs).
    let uefi = std::fs::read_to_string(&good).expect("spec").replace("\"bios\"", "\"uefi\"");
    let uefi_spec = dir.path().join("uefi.ferry.json");
    std::fs::write(&uefi_spec, uefi).expect("spec");
    let o = ferry(&["run", "--boot", "firmware", "--firmware", odd.to_str().expect("utf-8"), uefi_spec.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("the boot disk has no boot loader in its ESP"), "{err}");
}
