//! ACPI: the runtime's tables disassembled by ACPICA's `iasl -d` (and the DSDT recompiled), and
//! one micro-guest (`testdata/microguests/acpi.c`) that walks them, arms the power button and
//! enters S5 when QMP `system_powerdown` presses it — on the runtime and on QEMU, same lines.
mod runtime_support;
use ferry_runtime::cpuid::CpuTopology;
use ferry_runtime::pci::Profile;
use runtime_support::*;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn iasl_available() -> bool {
    let ok = Command::new("iasl").arg("-v").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP: iasl missing (apt-get install acpica-tools)");
    }
    ok
}

/// Disassembles `blob` with `iasl -d`; returns the .dsl text, failing on any error or warning.
fn disassemble(dir: &Path, name: &str, blob: &[u8]) -> String {
    let dat = dir.join(format!("{name}.dat"));
    std::fs::write(&dat, blob).expect("write table");
    let out = Command::new("iasl").arg("-d").arg(&dat).output().expect("iasl");
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "iasl -d {name}: {log}");
    let dsl = std::fs::read_to_string(dir.join(format!("{name}.dsl"))).expect("dsl");
    for bad in ["Incorrect checksum", "Error", "Warning", "Invalid", "**** Unknown"] {
        assert!(!dsl.contains(bad), "{name}: iasl says {bad}:\n{dsl}");
    }
    dsl
}

#[test]
fn iasl_accepts_every_table() {
    if !iasl_available() {
        return;
    }
    let topo = CpuTopology { sockets: 2, cores: 2, threads: 1 };
    for profile in [Profile::Q35V1, Profile::PcV1] {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = ferry_runtime::acpi::build(profile, &topo).expect("tables");
        let mut seen = Vec::new();
        for (sig, at, blob) in &t.tables {
            if sig == "RSD PTR " {
                // iasl -d takes no bare RSDP: checked by hand (both checksums, revision, XSDT).
                let sum = |b: &[u8]| b.iter().fold(0u8, |a, x| a.wrapping_add(*x));
                assert_eq!((blob.len(), sum(&blob[..20]), sum(blob), blob[15]), (36, 0, 0, 2));
                assert_eq!(*at, ferry_runtime::layout::ACPI_START);
                let xsdt = u64::from_le_bytes(blob[24..32].try_into().expect("8 bytes"));
                assert!(t.tables.iter().any(|(s, a, _)| s == "XSDT" && *a == xsdt));
                seen.push(sig.clone());
                continue;
            }
            let name = sig.trim().replace(' ', "_").to_lowercase();
            let dsl = disassemble(dir.path(), &name, blob);
            let expect: &[&str] = match sig.as_str() {
                "XSDT" => &["ACPI Table Address   0", "ACPI Table Address   1"],
                "FACP" => &[
                    "SCI Interrupt : 0009",
                    "PM1A Event Block Address : 00000600",
                    "PM1A Control Block Address : 00000604",
                    "PM Timer Block Address : 00000608",
                    "Control Method Power Button (V1) : 0",
                    "32-bit PM Timer (V1) : 0",
                    "Hardware Reduced (V5) : 0",
                    "SMI Command Port : 00000000",
                ],
                "FACS" => &["Signature : \"FACS\""],
                "APIC" => &[
                    "Local Apic Address : FEE00000",
                    "Address : FEC00000",
                    "Source : 00",
                    "Interrupt : 00000002",
                    "Source : 09",
                    "Trigger Mode : 3",
                ],
                "MCFG" => &["Base Address : 00000000B0000000", "End Bus Number : FF"],
                "DSDT" => &[
                    "Device (PCI0)",
                    "WordBusNumber",
                    "0x00FF,             // Range Maximum",
                    "0xC0000000,         // Range Minimum",
                    "0xFEBFFFFF,         // Range Maximum",
                    "Device (COM1)",
                    "EisaId (\"PNP0501\")",
                    "0x03F8,             // Range Minimum",
                    "0x00000004,",
                    "Name (_S5, Package (0x04)",
                ],
                other => panic!("unexpected table {other}"),
            };
            let squeezed: String = dsl.split_whitespace().collect::<Vec<_>>().join(" ");
            for e in expect {
                let e2: String = e.split_whitespace().collect::<Vec<_>>().join(" ");
                assert!(squeezed.contains(&e2), "{profile:?} {sig}: missing {e:?} in:\n{dsl}");
            }
            if sig == "FACP" {
                let gpe = if profile == Profile::Q35V1 { "00000620" } else { "0000AFE0" };
                assert!(squeezed.contains(&format!("GPE0 Block Address : {gpe}")), "{profile:?}: {dsl}");
            }
            if sig == "XSDT" {
                for (s2, a2, _) in t.tables.iter().filter(|x| ["FACP", "APIC", "MCFG"].contains(&x.0.as_str())) {
                    assert!(dsl.contains(&format!(": {a2:016X}")), "XSDT lacks {s2} at {a2:#x}: {dsl}");
                }
            }
            if sig == "APIC" {
                assert_eq!(dsl.matches("Subtable Type : 00 [Processor Local APIC]").count(), 4, "{dsl}");
            }
            if sig == "DSDT" {
                let hid = if profile == Profile::Q35V1 { "EisaId (\"PNP0A08\")" } else { "EisaId (\"PNP0A03\")" };
                assert!(dsl.contains(hid), "{profile:?}: {dsl}");
                // The disassembly must compile back without errors.
                let out = Command::new("iasl").arg("-p").arg(dir.path().join("recompiled")).arg(dir.path().join("dsdt.dsl")).output().expect("iasl");
                assert!(out.status.success(), "iasl compile: {}", String::from_utf8_lossy(&out.stdout));
            }
            seen.push(sig.clone());
        }
        seen.sort();
        let want: &[&str] = if profile == Profile::Q35V1 {
            &["APIC", "DSDT", "FACP", "FACS", "MCFG", "RSD PTR ", "XSDT"]
        } else {
            &["APIC", "DSDT", "FACP", "FACS", "RSD PTR ", "XSDT"]
        };
        assert_eq!(seen, want);
    }
}
