//! `device_add` / `device_del` over QMP, the same conversation (PyPI `qemu.qmp` client,
//! `tests/runtime_support/qmp_hotplug.py`) against QEMU started by the emitted NAME.sh and
//! against `ferry run` on the emitted NAME.ferry.json (guest: the idle micro-guest).
//!
//! * q35 (`pcie.0`, a PCIe root complex): QEMU refuses every hotplug on the root bus; the
//!   runtime must give the very same answers (class and text) for every step.
//! * pc (`pci.0`, ACPI PCI hotplug through PIIX4): both accept blockdev-add, device_add and
//!   device_del with the same answers and end with the same functions on the bus; steps QEMU
//!   refuses (unknown model, bus or id, no driver) are refused alike.
//! * pc with a Linux guest (the ACPI tiny kernel, `rootwait`) and a PCI bridge: the same
//!   conversation plugs a disk on the root bus, unplugs it (the guest ejects it:
//!   `DEVICE_DELETED`), does the same behind the bridge, and plugs the root disk behind it,
//!   which the kernel then mounts.
//! * pc-v2's PCI bridge with the idle micro-guest: plug, unplug and reset answers agree.
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

/// The emitted script under TCG with a QMP socket at `sock` and `extra` QEMU arguments,
/// booting `kernel`; its serial console goes to `console` (or nowhere).
fn start_qemu(g: &Emitted, sock: &Path, extra: &[&str], kernel: &Path, console: Option<&Path>) -> std::process::Child {
    let qmp = format!("unix:{},server=on,wait=off", sock.display());
    let mut args = extra.to_vec();
    args.extend(["-display", "none", "-qmp", &qmp, "-kernel"]);
    let out = console.map_or_else(Stdio::null, |c| Stdio::from(std::fs::File::create(c).expect("console")));
    g.script(&args).arg(kernel).stdin(Stdio::null()).stdout(out).spawn().expect("run the emitted script")
}

/// `ferry run SPEC` with a QMP socket at `sock` and `extra` arguments; its console goes to
/// `console` (or nowhere).
fn start_ferry(spec: &Path, sock: &Path, extra: &[&std::ffi::OsStr], console: Option<&Path>) -> std::process::Child {
    let out = console.map_or_else(Stdio::null, |c| Stdio::from(std::fs::File::create(c).expect("console")));
    Command::new(env!("CARGO_BIN_EXE_ferry")).args(["run", "--console", "-"]).args(extra).arg("--qmp").arg(sock).arg(spec).stdout(out).spawn().expect("ferry run")
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
    let mut child = start_qemu(&g, &sock, &[], &elf, None);
    let qemu = converse(&sock, &bus);
    let st = child.wait().expect("wait qemu");
    assert!(st.success(), "QEMU exit after quit: {st}");
    eprintln!("{profile} QEMU: {qemu}");
    if !kvm_available() {
        return Some((qemu, None));
    }
    let sock = g.out.join("ferry.sock");
    let mut child = start_ferry(&g.runtime_spec(&elf), &sock, &[], None);
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
    assert_eq!(qemu["deleted_at_reset"], json!([]), "{qemu}");
    for k in ["system_reset", "pci_after_reset", "deleted_at_reset"] {
        assert_eq!(ours[k], qemu[k], "{k}: runtime and QEMU differ");
    }
}

#[test]
fn pc_acpi_hotplug_answers_like_qemu() {
    let Some((qemu, ours)) = answers("pc-v1") else { return };
    for step in PLUG_STEPS.iter().chain(&["blockdev_add"]) {
        assert_eq!(qemu[*step], json!({"return": {}}), "QEMU {step}: {qemu}");
    }
    let pci = qemu["pci"].as_array().expect("pci");
    assert!(pci.contains(&json!("1a.0")) && pci.contains(&json!("1b.0")), "QEMU did not plug hpnet/hpblk: {qemu}");
    for step in REFUSED_BY_BOTH {
        assert!(qemu[step]["class"].is_string(), "QEMU {step}: {qemu}");
    }
    let Some(ours) = ours else { return };
    for step in PLUG_STEPS.iter().chain(&REFUSED_BY_BOTH).chain(&["blockdev_add"]) {
        assert_eq!(ours[*step], qemu[*step], "{step}: runtime and QEMU differ");
    }
    // The same functions on the bus afterwards: the new ones where QEMU put them (the NIC
    // added without an address in the first free slot), the cold-plugged ones still there
    // (the idle guest never ejects them).
    assert_eq!(ours["pci"], qemu["pci"], "query-pci differs");
    // query-block lists the hot-plugged disk with the cold ones, as QEMU does.
    assert!(qemu["block_qdevs"].as_array().expect("block_qdevs").contains(&json!("/machine/peripheral/hpblk/virtio-backend")), "{qemu}");
    assert_eq!(ours["block_qdevs"], qemu["block_qdevs"], "query-block differs");
    // A reset keeps the hot-plugged functions and carries out the pending unplugs.
    for k in ["system_reset", "pci_after_reset", "deleted_at_reset"] {
        assert_eq!(ours[k], qemu[k], "{k}: runtime and QEMU differ");
    }
}

/// pc-v2 with more disks than its root bus holds: the rest sit behind its PCI bridge (slot
/// 0x1f), which hot-plugs through its own bus selector. The same conversation against QEMU
/// (the emitted script) and the runtime: a disk at a given slot and a NIC at the first free
/// one on the bridge's bus, a taken slot refused, a cold-plugged disk behind the bridge asked
/// to go, then a reset; the answers and the functions on every bus agree.
#[test]
fn pc_bridge_hotplug_answers_like_qemu() {
    if !qemu_tools() || !qmp_client_available() {
        return;
    }
    let elf = guest("idle");
    let g = emit_sized("pc-v2", &[], 19, 1);
    let bridge = g.spec["bridges"][0].clone();
    assert_eq!(bridge["kind"], "pci-bridge", "{}", g.spec);
    let (bid, bbus) = (bridge["id"].as_str().expect("id").to_string(), bridge["bus"].clone());
    let cold = g.spec["devices"].as_array().expect("devices").iter().find(|d| d["addr"]["bus"] == bbus).expect("a disk behind the bridge")["id"].as_str().expect("id").to_string();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/runtime_support/qmp_bridge_hotplug.py");
    let talk = |sock: &Path| -> Value {
        let out = Command::new("python3").arg(&script).arg(sock).arg(&bid).arg(&cold).output().expect("python3");
        assert!(out.status.success(), "qmp script: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("summary JSON")
    };
    let sock = g.out.join("qemu.sock");
    let mut child = start_qemu(&g, &sock, &[], &elf, None);
    let qemu = talk(&sock);
    assert!(child.wait().expect("wait qemu").success());
    eprintln!("QEMU: {qemu}");
    for step in ["blockdev_add", "add_blk_bridge", "add_net_bridge_no_addr", "del_cold_behind_bridge", "system_reset"] {
        assert_eq!(qemu[step], json!({"return": {}}), "QEMU {step}: {qemu}");
    }
    assert_eq!(qemu["deleted_at_reset"], json!([cold]), "{qemu}");
    if !kvm_available() {
        return;
    }
    let sock = g.out.join("ferry.sock");
    let mut child = start_ferry(&g.runtime_spec(&elf), &sock, &[], None);
    let ours = talk(&sock);
    assert!(child.wait().expect("wait ferry").success());
    eprintln!("ferry: {ours}");
    assert_eq!(ours["add_blk_bridge_taken_slot"]["class"], qemu["add_blk_bridge_taken_slot"]["class"], "taken slot");
    for k in ["blockdev_add", "add_blk_bridge", "add_net_bridge_no_addr", "del_cold_behind_bridge", "system_reset", "pci", "pci_after_reset", "deleted_at_reset"] {
        assert_eq!(ours[k], qemu[k], "{k}: runtime and QEMU differ");
    }
}

fn kernel_conversation(sock: &Path, console: &Path, root: &Path, timeout_s: u64, name: &str, root_slot: &str, bridge: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/runtime_support/qmp_kernel_hotplug.py");
    let out = Command::new("python3").arg(script).arg(sock).arg(console).arg(root).arg(timeout_s.to_string()).args([name, root_slot, bridge]).output().expect("python3");
    assert!(out.status.success(), "qmp script: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("summary JSON")
}

/// The kernel lines of the hot-plugged disks and of the mounted root, in `console`.
fn kernel_lines(console: &Path, name: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(&std::fs::read(console).unwrap_or_default()).to_string();
    let strip = |l: &str| l.split_once("] ").map_or(l, |(_, r)| r).trim().to_string();
    let tag = format!("[{name}]");
    text.lines()
        .filter(|l| l.contains(&tag) || l.contains("VFS: Mounted root") || l.contains("acpiphp: Slot ["))
        .map(|l| strip(l).split_once(": [vd").map_or_else(|| strip(l), |(_, r)| format!("[vd{r}")))
        .collect()
}

/// A 72 MiB disk with an MBR (disk id 0x1234abcd) and one ext4 partition from 1 MiB holding
/// busybox as /sbin/init: the root the kernel finds as `PARTUUID=1234abcd-01`.
fn partitioned_root(dir: &Path) -> Option<std::path::PathBuf> {
    let fs = busybox_root(dir)?;
    let img = dir.join("root.disk");
    let f = std::fs::File::create(&img).ok()?;
    f.set_len(72 << 20).ok()?;
    let mut sf = Command::new("sfdisk").arg("-q").arg(&img).stdin(Stdio::piped()).spawn().ok()?;
    use std::io::Write;
    sf.stdin.take()?.write_all(b"label: dos\nlabel-id: 0x1234abcd\nstart=2048, type=83\n").ok()?;
    if !sf.wait().ok()?.success() {
        return None;
    }
    let st = Command::new("dd").arg(format!("if={}", fs.display())).arg(format!("of={}", img.display())).args(["bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"]).status().ok()?;
    st.success().then_some(img)
}

/// Linux (the ACPI tiny kernel, waiting for its root by partition UUID) on the emitted pc
/// guest with a PCI bridge added at slot 0x1f: QEMU TCG from the emitted script, then `ferry run` on the emitted
/// spec, the same QMP conversation. Both must plug a disk on the root bus that the kernel
/// sees, eject it when asked (the guest's `_EJ0`, then `DEVICE_DELETED`), plug it behind the
/// bridge and eject it there (the bridge's bus selector), and plug the root disk behind the
/// bridge, which the kernel mounts; the kernel registers the same ACPI hotplug slots, in the
/// same order, on both. The kernel is built into the
/// cache on first use (`tiny-kernel-acpi.sh`, needs linux-source-6.1).
#[test]
fn pc_linux_guest_hotplugs_and_ejects_disks_like_qemu() {
    if !qemu_tools() || !qmp_client_available() {
        return;
    }
    let Some(kernel) = acpi_tiny_kernel() else {
        eprintln!("SKIP: the ACPI tiny kernel is not cached and linux-source-6.1 is not installed to build it");
        return;
    };
    // The emitted pc guest with one disk (vda), and an empty PCI bridge at slot 0x1f, as pc-v2
    // places one (the same -device line the script writer emits; the same bridge in the spec).
    let g = emit_sized("pc-v1", &[], 1, 0);
    let bridge = "pci.1".to_string();
    let Some(root) = partitioned_root(&g.out) else {
        eprintln!("SKIP: busybox, mkfs.ext4 or sfdisk missing");
        return;
    };
    let (name, root_slot) = ("vdb", "0x10");
    let cmdline = "console=ttyS0 noxsave clearcpuid=308,151,288,534,298,145,158,306,114,141 root=PARTUUID=1234abcd-01 rootwait";
    let mut runs = Vec::new();
    {
        let (sock, console) = (g.out.join("qemu.sock"), g.out.join("qemu.console"));
        let mut child = start_qemu(&g, &sock, &["-device", "pci-bridge,id=pci.1,chassis_nr=1,bus=pci.0,addr=0x1f", "-append", cmdline], &kernel, Some(&console));
        let r = kernel_conversation(&sock, &console, &root, 300, name, root_slot, &bridge);
        let _ = child.wait();
        eprintln!("QEMU: {r}");
        runs.push(("qemu", r, kernel_lines(&console, name)));
    }
    if kvm_available() {
        let (sock, console) = (g.out.join("ferry.sock"), g.out.join("ferry.console"));
        let mut spec = g.spec.clone();
        spec["boot"] = json!({"kernel": kernel, "cmdline": cmdline});
        spec["bridges"] = json!([{"id": "pci.1", "addr": {"bus": 0, "slot": 31, "function": 0}, "bus": 1, "kind": "pci-bridge", "chassis": 1}]);
        let spec_path = g.out.join("hotplug.ferry.json");
        std::fs::write(&spec_path, spec.to_string()).expect("spec");
        let mut child = start_ferry(&spec_path, &sock, &["--sandbox-allow".as_ref(), root.as_os_str()], Some(&console));
        let r = kernel_conversation(&sock, &console, &root, 500, name, root_slot, &bridge);
        let _ = child.wait();
        eprintln!("ferry: {r}");
        runs.push(("ferry", r, kernel_lines(&console, name)));
    }
    for (engine, r, lines) in &runs {
        let reached: Vec<&str> = r["reached"].as_array().expect("reached").iter().filter_map(|m| m[0].as_str()).collect();
        assert_eq!(reached, ["rootwait", "root_bus_disk", "hp1_deleted", "bridge_disk", "hp2_deleted", "root_mounted"], "{engine}: {r}\n{lines:#?}");
        let ok = json!({"return": {}});
        // A repeated device_del while the first is pending is sent again, not refused.
        for step in ["add_scratch_node", "add_hp1", "del_hp1", "del_hp1_again", "add_hp2", "del_hp2", "add_root_node", "add_root"] {
            assert_eq!(r["answers"][step], ok, "{engine} {step}: {r}");
        }
        assert_eq!(r["answers"]["del_busy_node"], json!({"class": "GenericError", "desc": "Node root is in use"}), "{engine}: {r}");
        assert_eq!(r["deleted"], json!(["hp1", "hp2"]), "{engine}: {r}");
        assert!(lines.iter().any(|l| l.starts_with("VFS: Mounted root (ext4 filesystem) readonly")), "{engine}: {lines:#?}");
        assert_eq!(lines.iter().filter(|l| l.starts_with("[vdb] 2048 512-byte logical blocks")).count(), 2, "{engine}: {lines:#?}");
    }
    if let [(_, q, ql), (_, f, fl)] = &runs[..] {
        assert_eq!(q["answers"], f["answers"], "QMP answers differ");
        assert_eq!(q["pci"], f["pci"], "query-pci differs");
        // The same slots registered in the same order (the DSDT defines the slots holding a
        // device first, as QEMU's does), then the same disks and root mount.
        assert_eq!(ql, fl, "kernel lines differ");
        // The root bus's free slots and cold devices (those of slots 3..=30) and all 32 of the
        // bridge's bus.
        assert_eq!(ql.iter().filter(|l| l.starts_with("acpiphp: Slot [")).count(), 28 + 32, "{ql:#?}");
    }
}
