//! The identical-ABI proof, through what Ferry emits: a VMware guest (BIOS, three disks, three
//! NICs) is converted with `ferry convert -o qemu` and `-o ferry`. The pciscan micro-guest
//! prints one line per PCI function (IDs, class, revision, header type, pin, BAR sizes by
//! probing, capability chain, header CRC), once under QEMU TCG started by the emitted NAME.sh
//! (extra arguments `-kernel pciscan.elf ...` pass through its `"$@"`), once on Ferry's runtime
//! started by `ferry run` on the emitted NAME.ferry.json (its `boot` set to the same ELF). The
//! tables must be identical, every row (the VGA adapter is a data-only function on the
//! runtime: it is headless, but the slot's ABI is QEMU's). The same holds for transitional
//! devices (`--virtio legacy`).
mod runtime_abi_support;
mod runtime_support;
use runtime_abi_support::*;
use runtime_support::*;
use std::process::Stdio;

fn scan(profile: &str, extra: &[&str]) {
    if !qemu_tools() {
        return;
    }
    let elf = guest("pciscan");
    let g = emit_with(profile, extra);

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
        let line = format!("00:{:02x}.0 1af4:", d["addr"]["slot"].as_u64().expect("slot"));
        assert!(qemu_table.contains(&line), "{}: no {line} in QEMU's table", d["id"]);
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
