//! The identical-ABI proof, through what Ferry emits: a VMware guest (BIOS, three disks, three
//! NICs) is converted with `ferry convert -o qemu` and `-o ferry`. The pciscan micro-guest
//! prints one line per PCI function (IDs, class, revision, header type, pin, BAR sizes by
//! probing, capability chain, header CRC), once under QEMU TCG started by the emitted NAME.sh
//! (extra arguments `-kernel pciscan.elf ...` pass through its `"$@"`), once on Ferry's runtime
//! started by `ferry run` on the emitted NAME.ferry.json (its `boot` set to the same ELF). The
//! tables must be identical, every row (the VGA adapter is a data-only function on the
//! runtime: it is headless, but the slot's ABI is QEMU's). The same holds for transitional
//! devices (`--virtio legacy`), and for guests large enough to put devices behind PCIe root
//! ports (q35-v2) or a PCI bridge (pc-v2): the micro-guest walks the buses behind bridges.
mod runtime_abi_support;
mod runtime_support;
use runtime_abi_support::*;
use runtime_support::*;
use std::process::Stdio;

fn scan(profile: &str, extra: &[&str]) {
    scan_sized(profile, extra, 3, 3);
}

fn scan_sized(profile: &str, extra: &[&str], disks: usize, nics: usize) {
    if !qemu_tools() {
        return;
    }
    let elf = guest("pciscan");
    let g = emit_sized(profile, extra, disks, nics);

    // QEMU: the emitted script, the micro-guest passed through "$@".
    let q = g
        .script(&["-display", "none", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel"])
        .arg(&elf)
        .stdin(Stdio::null())
        .output()
        .expect("run the emitted script");
    let qemu_table = text(&q.stdout);
    assert_eq!(q.status.code(), Some(0x10 * 2 + 1), "QEMU run failed: {qemu_table}\n{}", String::from_utf8_lossy(&q.stderr));
    assert!(qemu_table.contains("pci scan end"), "{qemu_table}");
    let expected = qemu_table.clone();
    assert!(qemu_table.contains(" 1234:1111 "), "QEMU shows no VGA: {qemu_table}");
    for d in g.spec["devices"].as_array().expect("devices") {
        let a = &d["addr"];
        let line = format!("{:02x}:{:02x}.0 1af4:", a["bus"].as_u64().expect("bus"), a["slot"].as_u64().expect("slot"));
        assert!(qemu_table.contains(&line), "{}: no {line} in QEMU's table", d["id"]);
    }
    let bridges = g.spec["bridges"].as_array().cloned().unwrap_or_default();
    for b in &bridges {
        let (a, bus) = (&b["addr"], b["bus"].as_u64().expect("bus"));
        let line = format!("00:{:02x}.{} 1b36:", a["slot"].as_u64().expect("slot"), a["function"]);
        assert!(qemu_table.contains(&line), "{}: no {line} in QEMU's table", b["id"]);
        assert!(qemu_table.contains(&format!(" buses 00/{bus:02x}/{bus:02x} ")), "{}: bus {bus} not numbered as the spec says", b["id"]);
    }

    if !kvm_available() {
        return;
    }
    // Ferry's runtime: the emitted spec, booting the same micro-guest.
    let console = g.out.join("console.log");
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("run")
        .arg(g.runtime_spec(&elf))
        .args(["--no-reboot", "--timeout", "60", "--console"])
        .arg(&console)
        .output()
        .expect("ferry run");
    let ours = text(&std::fs::read(&console).unwrap_or_default());
    assert_eq!(r.status.code(), Some(0x10), "ferry run: {}\n{ours}", String::from_utf8_lossy(&r.stderr));
    eprintln!("{ours}");
    assert_eq!(ours, expected, "PCI tables differ between `ferry run` and the emitted QEMU script");
}

#[test]
fn q35_pci_table_matches_emitted_qemu_script() {
    scan("q35-v1", &[]);
}

#[test]
fn pc_pci_table_matches_emitted_qemu_script() {
    scan("pc-v1", &[]);
}

/// Transitional devices (`--virtio legacy`): legacy device IDs, subsystem = virtio type,
/// revision 0, I/O BAR 0 sized as QEMU sizes it, the same capability chain.
#[test]
fn q35_transitional_pci_table_matches_emitted_qemu_script() {
    scan("q35-v1", &["--virtio", "legacy"]);
}

#[test]
fn pc_transitional_pci_table_matches_emitted_qemu_script() {
    scan("pc-v1", &["--virtio", "legacy"]);
}

/// The default profiles (v2) on a guest that fits the root bus.
#[test]
fn v2_pci_tables_match_emitted_qemu_script() {
    scan("q35-v2", &[]);
    scan("pc-v2", &[]);
}

/// Room for real VMs: 10 NICs and 24 disks put 2 NICs and 10 disks behind 12 PCIe root ports
/// (q35-v2) or the PCI bridge (pc-v2). The bridges' own headers (IDs, capabilities, extended
/// capabilities through ECAM, bus numbers, write masks) and every device behind them, modern
/// (PCI Express endpoints behind root ports) and transitional, read the same on both engines.
#[test]
fn bridged_pci_tables_match_emitted_qemu_script() {
    for profile in ["q35-v2", "pc-v2"] {
        scan_sized(profile, &[], 24, 10);
        scan_sized(profile, &["--virtio", "legacy"], 24, 10);
    }
}

/// A virtio-blk queue behind a bridge: the `bridgeblk` micro-guest finds the first disk behind
/// a PCIe root port (q35-v2) or the PCI bridge (pc-v2), maps its BARs where firmware (SeaBIOS
/// under QEMU, the runtime's pre-programming) put them inside the bridge's windows, and reads
/// sector 0 through queue 0, modern and transitional. Both engines print the same lines; the
/// CRC is the host file's sector 0.
#[test]
fn disk_behind_a_bridge_serves_a_queue_on_both_engines() {
    if !qemu_tools() {
        return;
    }
    let elf = guest("bridgeblk");
    for (profile, extra, id) in [("q35-v2", &[][..], "1042"), ("pc-v2", &[][..], "1042"), ("q35-v2", &["--virtio", "legacy"][..], "1001"), ("pc-v2", &["--virtio", "legacy"][..], "1001")] {
        let g = emit_sized(profile, extra, 24, 10);
        let devices = g.spec["devices"].as_array().expect("devices");
        let disk = devices.iter().find(|d| d["type"] == "virtio-blk" && d["addr"]["bus"] != 0).expect("a disk behind a bridge");
        let (bus, slot) = (disk["addr"]["bus"].as_u64().expect("bus"), disk["addr"]["slot"].as_u64().expect("slot"));
        // Sector 0 of that disk: a pattern, through qemu-img into its qcow2.
        let sector: Vec<u8> = (0..512u32).map(|i| (i * 7 + 3) as u8).collect();
        let raw = g.out.join("pattern.raw");
        let mut bytes = sector.clone();
        bytes.resize(64 << 20, 0);
        std::fs::write(&raw, &bytes).expect("pattern");
        let file = disk["file"].as_str().expect("file");
        std::fs::remove_file(file).expect("remove");
        let st = std::process::Command::new("qemu-img").args(["convert", "-q", "-f", "raw", "-O", "qcow2"]).arg(&raw).arg(file).status().expect("qemu-img");
        assert!(st.success());
        let want = format!(
            "virtio-blk {id} at {bus:02x}:{slot:02x}.0\ncapacity 0000020000\nread sector 0 submit 0 status 0 used.len 513 crc {:08x}\n",
            crc32(&sector)
        );
        let q = g
            .script(&["-display", "none", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel"])
            .arg(&elf)
            .stdin(Stdio::null())
            .output()
            .expect("run the emitted script");
        assert_eq!(text(&q.stdout), want, "{profile} {extra:?}: QEMU printed:\n{}", String::from_utf8_lossy(&q.stderr));
        if !kvm_available() {
            continue;
        }
        let console = g.out.join("console.log");
        let r = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .arg("run")
            .arg(g.runtime_spec(&elf))
            .args(["--no-reboot", "--timeout", "60", "--console"])
            .arg(&console)
            .output()
            .expect("ferry run");
        let ours = text(&std::fs::read(&console).unwrap_or_default());
        assert_eq!(r.status.code(), Some(0x20), "ferry run: {}\n{ours}", String::from_utf8_lossy(&r.stderr));
        assert_eq!(ours, want, "{profile} {extra:?}: the runtime differs from QEMU");
    }
}
