//! ACPI: the runtime's tables disassembled by ACPICA's `iasl -d` (and the DSDT recompiled), and
//! one micro-guest (`testdata/microguests/acpi.c`) that walks them, arms the power button and
//! enters S5 when QMP `system_powerdown` presses it — on the runtime and on QEMU, same lines.
mod runtime_support;
use ferry_runtime::cpuid::CpuTopology;
use ferry_runtime::pci::Machine;
use runtime_support::*;
use std::io::{BufRead, BufReader};
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
    for profile in [Machine::Q35, Machine::Pc] {
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
                "APIC" => {
                    &["Local Apic Address : FEE00000", "Address : FEC00000", "Source : 00", "Interrupt : 00000002", "Source : 09", "Trigger Mode : 3"]
                }
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
                let gpe = if profile == Machine::Q35 { "00000620" } else { "0000AFE0" };
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
                let hid = if profile == Machine::Q35 { "EisaId (\"PNP0A08\")" } else { "EisaId (\"PNP0A03\")" };
                assert!(dsl.contains(hid), "{profile:?}: {dsl}");
                // INTx as QEMU routes it: q35 slot 2 INTA → GSI 22, INTD → 21, the root-port slots
                // 0x1b INTA → 16 and 0x1e INTA → 20 (QEMU's _PRT); pc slot 2 INTA → 10, INTD → 11.
                let prt: &[&str] = if profile == Machine::Q35 {
                    &[
                        "Name (_PRT, Package (0x80)",
                        "Package (0x04) { 0x0002FFFF, Zero, Zero, 0x16 }",
                        "Package (0x04) { 0x0002FFFF, 0x03, Zero, 0x15 }",
                        "Package (0x04) { 0x001BFFFF, Zero, Zero, 0x10 }",
                        "Package (0x04) { 0x001EFFFF, Zero, Zero, 0x14 }",
                    ]
                } else {
                    &[
                        "Name (_PRT, Package (0x80)",
                        "Package (0x04) { 0x0002FFFF, Zero, Zero, 0x0A }",
                        "Package (0x04) { 0x0002FFFF, 0x03, Zero, 0x0A }",
                    ]
                };
                for p in prt {
                    assert!(squeezed.contains(p), "{profile:?}: {p}: {dsl}");
                }
                // q35's host bridge answers the PCIe _OSC like QEMU's pc-q35-7.2 (control mask 0x1E).
                let osc = "Method (_OSC, 4, NotSerialized)";
                assert_eq!(dsl.contains(osc), profile == Machine::Q35, "{profile:?}: {dsl}");
                assert_eq!(dsl.contains("ToUUID (\"33db4d5b-1ff7-401c-9657-7441c03dd766\""), profile == Machine::Q35, "{dsl}");
                assert_eq!(squeezed.contains("Local0 = (CDW3 & 0x1E)"), profile == Machine::Q35, "{dsl}");
                // pc: QEMU's ACPI PCI hotplug objects, a slot device from 3 up (not the host
                // bridge, PIIX3 or VGA), and the GPE handler; q35's pcie.0 has none.
                let hotplug = [
                    "OperationRegion (PCST, SystemIO, 0xAE00, 0x08)",
                    "OperationRegion (SEJ, SystemIO, 0xAE08, 0x04)",
                    "OperationRegion (BNMR, SystemIO, 0xAE10, 0x04)",
                    "Mutex (BLCK, 0x00)",
                    "Method (PCEJ, 2, NotSerialized)",
                    "Name (BSEL, Zero)",
                    "Device (S18) { Name (_ADR, 0x00030000) Name (_SUN, 0x03) Method (_EJ0, 1, NotSerialized) { PCEJ (BSEL, _SUN) } }",
                    "Device (SF8) { Name (_ADR, 0x001F0000) Name (_SUN, 0x1F)",
                    "Method (DVNT, 2, NotSerialized)",
                    "Notify (S18, Arg1)",
                    "Method (PCNT, 0, NotSerialized) { BNUM = BSEL DVNT (PCIU, One) DVNT (PCID, 0x03) }",
                    "If ((Arg0 & 0x08)) { Notify (S18, Arg1) }",
                    "Scope (\\_GPE) { Name (_HID, \"ACPI0006\") Method (_E01, 0, NotSerialized) { Acquire (\\_SB.PCI0.BLCK, 0xFFFF) \\_SB.PCI0.PCNT () Release (\\_SB.PCI0.BLCK) } }",
                ];
                let bare: String = dsl.lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join(" ");
                let mut bare: String = bare.split_whitespace().collect::<Vec<_>>().join(" ");
                while let Some(a) = bare.find(" /*") {
                    let Some(b) = bare[a..].find("*/") else { break };
                    bare.replace_range(a..a + b + 2, "");
                }
                for h in hotplug {
                    assert_eq!(bare.contains(h), profile == Machine::Pc, "{profile:?}: {h}: {dsl}");
                }
                for absent in ["Device (S00)", "Device (S08)", "Device (S10)"] {
                    assert!(!dsl.contains(absent), "{profile:?}: {absent}: {dsl}");
                }
                // The disassembly must compile back without errors.
                let out = Command::new("iasl").arg("-p").arg(dir.path().join("recompiled")).arg(dir.path().join("dsdt.dsl")).output().expect("iasl");
                assert!(out.status.success(), "iasl compile: {}", String::from_utf8_lossy(&out.stdout));
            }
            seen.push(sig.clone());
        }
        seen.sort();
        let want: &[&str] = if profile == Machine::Q35 {
            &["APIC", "DSDT", "FACP", "FACS", "MCFG", "RSD PTR ", "XSDT"]
        } else {
            &["APIC", "DSDT", "FACP", "FACS", "RSD PTR ", "XSDT"]
        };
        assert_eq!(seen, want);
    }
}

/// pc's hotplug slots that hold a device at boot are defined before the empty ones, as in
/// QEMU's DSDT (a guest walks and registers them in that order); q35 has none.
#[test]
fn occupied_hotplug_slots_come_first() {
    if !iasl_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let topo = CpuTopology::flat(1);
    let hp = ferry_runtime::acpi::Hotplug { slots: !0b111, present: (1 << 4) | (1 << 14), bridges: Vec::new() };
    let t = ferry_runtime::acpi::build_with(Machine::Pc, &topo, hp.clone()).expect("tables");
    let dsdt = &t.tables.iter().find(|x| x.0 == "DSDT").expect("dsdt").2;
    let dsl = disassemble(dir.path(), "dsdt", dsdt);
    let at = |d: &str| dsl.find(&format!("Device ({d})")).unwrap_or_else(|| panic!("no {d}: {dsl}"));
    assert!(at("S20") < at("S70") && at("S70") < at("S18") && at("S18") < at("S28") && at("S28") < at("SF8"), "{dsl}");
    // A PCI bridge at slot 0x1f (BSEL 1) holding a device at its slot 2: its own slot devices
    // (all 32, the present one first), DVNT and PCNT, called from the root bus's PCNT.
    let br = ferry_runtime::acpi::Hotplug { slots: !0b111 & !(1 << 31), present: 0, bridges: vec![ferry_runtime::acpi::BridgeHotplug { slot: 31, present: 1 << 2 }] };
    let t = ferry_runtime::acpi::build_with(Machine::Pc, &topo, br).expect("tables");
    let dsdt = &t.tables.iter().find(|x| x.0 == "DSDT").expect("dsdt").2;
    let dsl = disassemble(dir.path(), "bridge", dsdt);
    let squeezed: String = dsl.lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join(" ");
    let squeezed: String = squeezed.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(squeezed.contains("Device (SF8) { Name (_ADR, 0x001F0000) Name (BSEL, One) Device (S10) { Name (_ADR, 0x00020000) Name (_SUN, 0x02)"), "{dsl}");
    assert!(squeezed.contains("Device (S00) { Name (_ADR, Zero) Name (_SUN, Zero) Method (_EJ0, 1, NotSerialized) { PCEJ (BSEL, _SUN) } }"), "{dsl}");
    assert!(squeezed.contains("\\_SB.PCI0.SF8.PCNT () }"), "{dsl}");
    assert_eq!(dsl.matches("Method (PCNT, 0, NotSerialized)").count(), 2, "{dsl}");
    let t = ferry_runtime::acpi::build_with(Machine::Q35, &topo, hp).expect("tables");
    let dsdt = &t.tables.iter().find(|x| x.0 == "DSDT").expect("dsdt").2;
    assert!(!disassemble(dir.path(), "q35", dsdt).contains("PCEJ"));
}

fn qmp_client_available() -> bool {
    let ok = Command::new("python3").args(["-c", "import qemu.qmp"]).status().is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIP: python3 module qemu.qmp missing (pip install qemu.qmp)");
    }
    ok
}

/// One engine's run of the `acpi` micro-guest: its "acpi: " lines and the QMP events.
struct PowerRun {
    lines: Vec<String>,
    events: serde_json::Value,
}

/// Waits for "acpi: ready" on the child's serial (stdout), presses the power button over
/// QMP at `sock`, and collects everything until the child exits.
fn power_cycle(mut child: Child, sock: &Path, engine: &str) -> PowerRun {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let line = line.replace('\r', "");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(l) => {
                let ready = l == "acpi: ready";
                lines.push(l);
                if ready {
                    break;
                }
            }
            Err(e) => {
                let _ = child.kill();
                panic!("{engine}: no 'acpi: ready' ({e}); serial so far:\n{}", lines.join("\n"));
            }
        }
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/runtime_support/acpi_powerdown.py");
    let out = Command::new("python3").arg(script).arg(sock).output().expect("python3");
    assert!(out.status.success(), "{engine}: qmp script: {}", String::from_utf8_lossy(&out.stderr));
    let events: serde_json::Value = serde_json::from_slice(&out.stdout).expect("events JSON");
    let st = child.wait().expect("wait");
    let _ = reader.join();
    lines.extend(rx.try_iter());
    assert!(st.success(), "{engine}: exit {st}; serial:\n{}", lines.join("\n"));
    PowerRun { lines, events }
}

/// The lines that must agree between engines (table lists, FADT revision, SMI port and the
/// measured timer rate legitimately differ).
fn comparable(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.starts_with("acpi: "))
        .filter(|l| !l.starts_with("acpi: tables") && !l.starts_with("acpi: fadt-rev") && !l.starts_with("acpi: pmtmr_hz"))
        .cloned()
        .collect()
}

#[test]
fn power_button_and_s5_same_on_runtime_and_qemu() {
    if !qmp_client_available() {
        return;
    }
    let elf = guest("acpi");
    for (profile, machine) in [("q35-v1", "q35"), ("pc-v1", "pc")] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut runs = Vec::new();
        if kvm_available() {
            let spec = serde_json::json!({
                "spec_version": 1, "name": "acpi", "profile": profile, "memory_mib": 128, "vcpus": 2,
                "firmware": "bios", "boot": {"kernel": elf, "cmdline": ""}, "devices": [],
            });
            let spec_path = dir.path().join("spec.json");
            std::fs::write(&spec_path, spec.to_string()).expect("spec");
            let sock = dir.path().join("ferry.sock");
            let child = Command::new(env!("CARGO_BIN_EXE_ferry"))
                .args(["run", "--console", "-", "--qmp"])
                .arg(&sock)
                .arg(&spec_path)
                .stdout(Stdio::piped())
                .spawn()
                .expect("ferry run");
            runs.push(("ferry", power_cycle(child, &sock, "ferry")));
        }
        if qemu_available() {
            let sock = dir.path().join("qemu.sock");
            let child = Command::new("qemu-system-x86_64")
                .args(["-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot", "-accel", "tcg"])
                .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-machine", machine, "-m", "128", "-smp", "2"])
                .arg("-qmp")
                .arg(format!("unix:{},server=on,wait=off", sock.display()))
                .arg("-kernel")
                .arg(&elf)
                .stdout(Stdio::piped())
                .spawn()
                .expect("qemu");
            runs.push(("qemu", power_cycle(child, &sock, "qemu")));
        }
        for (engine, r) in &runs {
            let text = r.lines.join("\n");
            eprintln!("{profile} {engine}:\n{text}\nevents: {}", r.events);
            for want in [
                "acpi: DSDT ok",
                "acpi: sci=0x09",
                "acpi: pm1a_evt=0x0600",
                "acpi: pm1a_cnt=0x0604",
                "acpi: pm_tmr=0x0608",
                "acpi: cpus=2",
                "acpi: s5_slp_typ=0",
                "acpi: sci_en=0x1",
                "acpi: sci_pending_before=0x0",
                "acpi: power button pressed",
                "acpi: sci delivered to vector 0x29",
                "acpi: pwrbtn_sts_after_clear=0x0",
                "acpi: entering S5",
            ] {
                assert!(r.lines.iter().any(|l| l == want), "{profile} {engine}: no {want:?} in:\n{text}");
            }
            assert!(r.lines.iter().any(|l| l.starts_with("acpi: pmtmr_hz=") && l.ends_with("(ok)")), "{profile} {engine}: PM timer rate:\n{text}");
            assert!(!text.contains("still running after S5"), "{profile} {engine}");
            let names: Vec<&str> = r.events.as_array().map(|a| a.iter().filter_map(|e| e["event"].as_str()).collect()).unwrap_or_default();
            assert_eq!(names, ["POWERDOWN", "SHUTDOWN"], "{profile} {engine}: {}", r.events);
            assert_eq!(r.events[1]["data"], serde_json::json!({"guest": true, "reason": "guest-shutdown"}), "{profile} {engine}");
        }
        if let [(_, a), (_, b)] = &runs[..] {
            assert_eq!(comparable(&a.lines), comparable(&b.lines), "{profile}: runtime and QEMU see different ACPI hardware");
        }
    }
}

/// virtio-rng with MSI-X off: the legacy interrupt reaches the IOAPIC pin QEMU routes it to,
/// is level-triggered (held until the ISR read, which drops it) — same lines on QEMU q35 and pc.
#[test]
fn intx_level_interrupt_same_on_runtime_and_qemu() {
    let elf = guest("intx");
    let slots = [2u8, 3, 4, 5];
    for (profile, machine, bus, gsis) in [("q35-v1", "q35", "pcie.0", [22, 23, 20, 21]), ("pc-v1", "pc", "pci.0", [10, 11, 11, 10])] {
        let mut runs = Vec::new();
        if kvm_available() {
            let devices: Vec<_> = slots
                .iter()
                .map(|s| serde_json::json!({"id": format!("rng{s}"), "addr": {"bus": 0, "slot": s, "function": 0}, "type": "virtio-rng"}))
                .collect();
            let spec = serde_json::json!({
                "spec_version": 1, "name": "intx", "profile": profile, "memory_mib": 128, "vcpus": 1,
                "firmware": "bios", "boot": {"kernel": elf, "cmdline": ""}, "devices": devices,
            });
            let spec = ferry_formats::layout::MachineSpec::from_json(&spec.to_string()).expect("spec");
            let out = run_spec(&spec);
            assert_eq!(out.reason, ferry_runtime::ExitReason::DebugExit(0x30), "{}", text(&out.console));
            runs.push(("ferry", text(&out.console)));
        }
        if qemu_available() {
            let mut args: Vec<String> = ["-machine", machine, "-m", "128"].iter().map(|s| s.to_string()).collect();
            for s in slots {
                args.extend(["-device".to_string(), format!("virtio-rng-pci-non-transitional,bus={bus},addr=0x{s:x}")]);
            }
            let r = qemu(&args, &elf, "tcg");
            assert_eq!(r.exit_code, Some(0x61), "{}", r.serial);
            runs.push(("qemu", r.serial));
        }
        for (engine, out) in &runs {
            eprintln!("{profile} {engine}:\n{out}");
            for (s, gsi) in slots.iter().zip(gsis) {
                let want = format!(
                "intx: slot={s} pin=1 msix_enabled=0 gsi={gsi} lapic_irr=1 status_int=1 held=1 isr=1 isr_reread=0 status_int_after=0 redelivered=0 second=1 disabled=0 status_int_disabled=1 reenabled=1 msix_on=0"
            );
                assert!(out.lines().any(|l| l == want), "{profile} {engine}: no {want:?} in:\n{out}");
            }
        }
        if let [(_, a), (_, b)] = &runs[..] {
            let pick = |t: &str| t.lines().filter(|l| l.starts_with("intx: ")).map(str::to_string).collect::<Vec<_>>();
            assert_eq!(pick(a), pick(b), "{profile}");
        }
    }
}

/// An initramfs whose /init prints the kernel's ACPI view and powers off (busybox).
fn poweroff_initramfs(dir: &Path) -> Option<std::path::PathBuf> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"].into_iter().map(Path::new).find(|p| p.exists())?;
    let tree = dir.join("initramfs");
    for d in ["bin", "proc", "dev"] {
        std::fs::create_dir_all(tree.join(d)).ok()?;
    }
    std::fs::copy(busybox, tree.join("bin/busybox")).ok()?;
    let init = "#!/bin/busybox sh\n/bin/busybox mount -t proc proc /proc\n\
        echo ferry-acpi: sci $(/bin/busybox grep -c acpi /proc/interrupts)\n\
        echo ferry-acpi: poweroff\n/bin/busybox poweroff -f\n";
    std::fs::write(tree.join("init"), init).ok()?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tree.join("init"), std::fs::Permissions::from_mode(0o755)).ok()?;
    let img = dir.join("initramfs.cpio");
    let list = Command::new("sh").arg("-c").arg(format!("cd {} && find . | cpio -o -H newc --quiet > {}", tree.display(), img.display())).status().ok()?;
    list.success().then_some(img)
}

/// What a kernel that likes the tables prints, on both engines (the last three come from
/// user space, which kvm_pvm cannot run for this kernel: checked where it runs).
const LINUX_ACPI_LINES: &[&str] = &[
    "ACPI: PM-Timer IO Port: 0x608",
    "ACPI: INT_SRC_OVR (bus 0 bus_irq 0 global_irq 2 dfl dfl)",
    "ACPI: INT_SRC_OVR (bus 0 bus_irq 9 global_irq 9 high level)",
    "ACPI: Using ACPI (MADT) for SMP configuration information",
    "PCI: MMCONFIG at [mem 0xb0000000-0xbfffffff] reserved in E820",
    "ACPI: Interpreter enabled",
    "ACPI: PM: (supports S0 S5)",
    "ACPI: Using IOAPIC for interrupt routing",
    "ACPI: PCI Root Bridge [PCI0] (domain 0000 [bus 00-ff])",
    "acpi PNP0A08:00: _OSC: OS supports",
    "pci_bus 0000:00: root bus resource [io  0x0d00-0xffff window]",
    "pci_bus 0000:00: root bus resource [mem 0xc0000000-0xfebfffff window]",
    "pnp: PnP ACPI init",
    "clocksource: acpi_pm: mask: 0xffffff",
    "ACPI: button: Power Button [PWRF]",
    "ttyS0 at I/O 0x3f8 (irq = 4, base_baud = 115200) is a 16550A",
    "i8042: PNP: PS/2 Controller [PNP0303:KBD",
    "serio: i8042 KBD port at 0x60,0x64 irq 1",
    "ferry-acpi: sci 1",
    "ferry-acpi: poweroff",
    "reboot: Power down",
];

/// Linux 6.1 with ACPI on the runtime's tables: the fixed hardware, IOAPIC routing, PCI root
/// bridge (MMCONFIG from the MCFG), PnP devices, power button and PM timer come up without ACPI
/// errors, and `poweroff -f` leaves through `\_S5` → PM1a_CNT → SHUTDOWN; QEMU TCG q35 (with
/// its own tables) prints the same lines. On kvm_pvm this kernel's user space faults, so there
/// the runtime is checked up to init, and the init panic must reboot (`reboot=acpi`: the FADT
/// reset register). The kernel is built into the cache on first use (`tiny-kernel-acpi.sh`,
/// needs linux-source-6.1).
#[test]
fn linux_accepts_the_tables_and_powers_off_through_s5() {
    let Some(kernel) = acpi_tiny_kernel() else {
        eprintln!("SKIP: the ACPI tiny kernel is not cached and linux-source-6.1 is not installed to build it");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(initrd) = poweroff_initramfs(dir.path()) else {
        eprintln!("SKIP: busybox or cpio missing");
        return;
    };
    let cmdline = "console=ttyS0 noxsave clearcpuid=308,151,288,534,298,145,158,306,114,141 reboot=acpi panic=1";
    let mut runs = Vec::new();
    if qemu_available() {
        let args: Vec<String> = ["-machine", "q35", "-m", "256", "-smp", "1", "-append", cmdline, "-initrd"]
            .iter()
            .map(|s| s.to_string())
            .chain([initrd.display().to_string()])
            .collect();
        let r = qemu(&args, &kernel, "tcg");
        assert_eq!(r.exit_code, Some(0), "QEMU: {}", r.serial);
        runs.push(("qemu", r.serial));
    }
    if kvm_available() {
        let spec = serde_json::json!({
            "spec_version": 1, "name": "linux-acpi", "profile": "q35-v1", "memory_mib": 256, "vcpus": 1,
            "firmware": "bios", "boot": {"kernel": kernel, "initrd": initrd, "cmdline": cmdline},
            "devices": [{"id": "rng0", "addr": {"bus": 0, "slot": 3, "function": 0}, "type": "virtio-rng"}],
        });
        let spec = ferry_formats::layout::MachineSpec::from_json(&spec.to_string()).expect("spec");
        let mut cfg = ferry_runtime::VmConfig::from_spec(&spec).expect("config");
        cfg.no_reboot = true;
        let ctl = ferry_runtime::Controller::new(false);
        let events = ctl.subscribe();
        let out = ferry_runtime::run_machine(&cfg, &ctl, Some(Duration::from_secs(300))).expect("boot");
        let serial = text(&out.console);
        let user_space_faults = ferry_runtime::host_is_pvm() && serial.contains("Attempted to kill init");
        let (reason, event) = if user_space_faults {
            (ferry_runtime::ExitReason::Reset, serde_json::json!({"guest": true, "reason": "guest-reset"}))
        } else {
            (ferry_runtime::ExitReason::Shutdown, serde_json::json!({"guest": true, "reason": "guest-shutdown"}))
        };
        assert_eq!(out.reason, reason, "runtime ({} s): {serial}", out.elapsed.as_secs());
        let shutdown: Vec<_> = events.try_iter().filter(|e| e["event"] == "SHUTDOWN").collect();
        assert_eq!(shutdown.len(), 1);
        assert_eq!(shutdown[0]["data"], event);
        eprintln!("runtime: {reason:?} after {:.1} s (user space faulted: {user_space_faults})", out.elapsed.as_secs_f64());
        runs.push((if user_space_faults { "ferry-kernel-only" } else { "ferry" }, serial));
    }
    for (engine, serial) in &runs {
        let checked = if *engine == "ferry-kernel-only" { &LINUX_ACPI_LINES[..LINUX_ACPI_LINES.len() - 3] } else { LINUX_ACPI_LINES };
        for want in checked {
            assert!(serial.contains(want), "{engine}: no {want:?} in:\n{serial}");
        }
        for bad in ["ACPI Error", "ACPI BIOS Error", "ACPI Warning", "ACPI BIOS Warning", "AE_NOT_FOUND", "Firmware Bug"] {
            assert!(!serial.contains(bad), "{engine}: {bad:?} in:\n{serial}");
        }
    }
}
