//! `device_add` / `device_del` over QMP, the same conversation (PyPI `qemu.qmp` client,
//! `tests/runtime_support/qmp_hotplug.py`) against QEMU started by the emitted NAME.sh and
//! against `ferry run` on the emitted NAME.ferry.json (guest: the idle micro-guest).
//!
//! * q35 (`pcie.0`, a PCIe root complex): QEMU refuses every hotplug on the root bus; the
//!   runtime must give the very same answers (class and text) for every step.
//! * pc (`pci.0`, ACPI PCI hotplug through PIIX4): QEMU accepts device_add and device_del; the
//!   runtime refuses with a GenericError naming the missing ACPI hotplug pieces. Steps QEMU
//!   refuses for other reasons (unknown model, bus or id, no driver) agree.
mod runtime_abi_support;
mod runtime_support;
use runtime_abi_support::*;
use runtime_support::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};

fn qmp_client_available() -> bool {
    let ok = Command::new("python3").args(["-c", "import qemu.qmp"]).status().is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIP: python3 module qemu.qmp missing (pip install qemu.qmp)");
    }
    ok
}

fn converse(sock: &Path, bus: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/runtime_support/qmp_hotplug.py");
    let out = Command::new("python3").arg(script).arg(sock).arg(bus).output().expect("python3");
    assert!(out.status.success(), "qmp script: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("summary JSON")
}

/// The answers of QEMU (the emitted script) and of the runtime (None without /dev/kvm).
fn answers(profile: &str) -> Option<(Value, Option<Value>)> {
    if !qemu_tools() || !qmp_client_available() {
        return None;
    }
    let bus = profile_json(profile)["root_bus"].as_str().expect("root_bus").to_string();
    let elf = guest("idle");
    let g = emit(profile);
    let sock = g.out.join("qemu.sock");
    let mut child = g
        .script(&["-display", "none", "-qmp", &format!("unix:{},server=on,wait=off", sock.display()), "-kernel"])
        .arg(&elf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("run the emitted script");
    let qemu = converse(&sock, &bus);
    let st = child.wait().expect("wait qemu");
    assert!(st.success(), "QEMU exit after quit: {st}");
    eprintln!("{profile} QEMU: {qemu}");
    if !kvm_available() {
        return Some((qemu, None));
    }
    let sock = g.out.join("ferry.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "--console", "-", "--qmp"])
        .arg(&sock)
        .arg(g.runtime_spec(&elf))
        .stdout(Stdio::null())
        .spawn()
        .expect("ferry run");
    let ours = converse(&sock, &bus);
    let st = child.wait().expect("wait ferry");
    assert!(st.success(), "ferry exit after quit: {st}");
    eprintln!("{profile} ferry: {ours}");
    Some((qemu, Some(ours)))
}

const PLUG_STEPS: [&str; 6] =
    ["add_net_root_bus", "add_net_no_bus", "add_transitional_net_root_bus", "add_blk_root_bus", "del_coldplugged_net", "del_coldplugged_disk"];
const REFUSED_BY_BOTH: [&str; 4] = ["add_blk_unknown_bus", "add_unknown_model", "add_no_driver", "del_unknown_id"];

#[test]
fn q35_root_bus_hotplug_refused_like_qemu() {
    let Some((qemu, ours)) = answers("q35-v1") else { return };
    let refused = json!({"class": "GenericError", "desc": "Bus 'pcie.0' does not support hotplugging"});
    for step in PLUG_STEPS {
        assert_eq!(qemu[step], refused, "QEMU {step}: {qemu}");
    }
    assert_eq!(qemu["del_unknown_id"]["class"], "DeviceNotFound", "{qemu}");
    let Some(ours) = ours else { return };
    for step in PLUG_STEPS.iter().chain(&REFUSED_BY_BOTH) {
        assert_eq!(ours[*step], qemu[*step], "{step}: runtime and QEMU differ");
    }
    assert!(!ours["pci"].as_array().expect("pci").contains(&json!("1a.0")), "{ours}");
}

#[test]
fn pc_acpi_hotplug_accepted_by_qemu_refused_precisely_by_runtime() {
    let Some((qemu, ours)) = answers("pc-v1") else { return };
    for step in PLUG_STEPS {
        assert_eq!(qemu[step], json!({"return": {}}), "QEMU {step}: {qemu}");
    }
    let pci = qemu["pci"].as_array().expect("pci");
    assert!(pci.contains(&json!("1a.0")) && pci.contains(&json!("1b.0")), "QEMU did not plug hpnet/hpblk: {qemu}");
    for step in REFUSED_BY_BOTH {
        assert!(qemu[step]["class"].is_string(), "QEMU {step}: {qemu}");
    }
    let Some(ours) = ours else { return };
    for step in PLUG_STEPS {
        assert_eq!(ours[step]["class"], "GenericError", "{step}: {ours}");
        let desc = ours[step]["desc"].as_str().unwrap_or_default();
        assert!(desc.starts_with("Bus 'pci.0' hotplug is not available in ferry-runtime") && desc.contains("ACPI PCI hotplug"), "{step}: {desc}");
    }
    for step in REFUSED_BY_BOTH {
        assert_eq!(ours[step], qemu[step], "{step}: runtime and QEMU differ");
    }
    assert!(!ours["pci"].as_array().expect("pci").contains(&json!("1a.0")), "{ours}");
}
