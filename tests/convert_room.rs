//! Room for real VMs (issue 13): a VMware guest with 10 NICs and 40 disks converts on the v2
//! profiles, which add PCIe root ports (q35-v2, one device behind each, as libvirt does) or a
//! PCI bridge (pc-v2) once the root bus is full. Every address is the spec's in the libvirt
//! XML (virt-xml-validate accepts it) and in the QEMU script, which QEMU 10 starts with `-S`:
//! QMP `query-pci` shows each bridge at its root-bus address and each device behind the bridge
//! the spec names, at the spec's slot. Two runs give the same bytes; the v1 profiles refuse;
//! `ferry run` runs the bridged spec with QEMU's PCI table, and refuses a bridge kind it does
//! not serve in one line.

mod convert_support;
#[path = "runtime_support/mod.rs"]
mod runtime_support;

use convert_support::qmp::Qmp;
use convert_support::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn write_vmx(dir: &Path) -> std::path::PathBuf {
    let mut v = String::from(".encoding = \"UTF-8\"\nconfig.version = \"8\"\nvirtualHW.version = \"19\"\ndisplayName = \"big\"\nmemSize = \"2048\"\nnumvcpus = \"2\"\nguestOS = \"rhel9-64\"\nfirmware = \"bios\"\nuuid.bios = \"42 1d 3c 5e 8a 2b 4f 61-9c 0d 7e 2a 11 b3 c4 f7\"\n");
    let mut n = 0;
    for c in 0..4 {
        v += &format!("scsi{c}.present = \"TRUE\"\nscsi{c}.virtualDev = \"pvscsi\"\n");
        for u in (0..11).filter(|u| *u != 7) {
            v += &format!("scsi{c}:{u}.present = \"TRUE\"\nscsi{c}:{u}.fileName = \"big_{n}.vmdk\"\nscsi{c}:{u}.deviceType = \"scsi-hardDisk\"\n");
            n += 1;
        }
    }
    assert_eq!(n, 40);
    for e in 0..10 {
        v += &format!("ethernet{e}.present = \"TRUE\"\nethernet{e}.virtualDev = \"vmxnet3\"\nethernet{e}.networkName = \"net{e}\"\nethernet{e}.addressType = \"static\"\nethernet{e}.address = \"00:50:56:00:10:{e:02x}\"\n");
    }
    let p = dir.join("big.vmx");
    std::fs::write(&p, v).unwrap();
    p
}

fn flatten(devices: &Value, parent: &str, out: &mut Vec<(String, u64, u64, String)>) {
    for d in devices.as_array().unwrap() {
        let id = d["qdev_id"].as_str().unwrap_or("").to_string();
        out.push((parent.to_string(), d["slot"].as_u64().unwrap(), d["function"].as_u64().unwrap(), id.clone()));
        if let Some(b) = d.get("pci_bridge").and_then(|b| b.get("devices")) {
            flatten(b, &id, out);
        }
    }
}

fn convert_and_check(profile: &str, bridge_kind: &str, bridges: usize) {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().canonicalize().unwrap();
    let vmx = write_vmx(&out);
    let args = ["convert", "-i", "vmx", vmx.to_str().unwrap(), "-o", "local", "-os", out.to_str().unwrap(), "--no-copy", "--profile", profile, "-of", "raw"];
    ferry_ok(&args);
    let first = outputs(&out, "big");
    let again: Vec<&str> = args.iter().copied().chain(["--overwrite"]).collect();
    ferry_ok(&again);
    assert_eq!(first, outputs(&out, "big"), "{profile}: two runs differ");
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(out.join("big.ferry.json")).unwrap()).unwrap();
    let devs = spec["devices"].as_array().unwrap();
    assert_eq!(devs.iter().filter(|d| d["type"] == "virtio-blk").count(), 40);
    assert_eq!(devs.iter().filter(|d| d["type"] == "virtio-net").count(), 10);
    let br = spec["bridges"].as_array().unwrap();
    assert_eq!(br.len(), bridges, "{profile}: {br:?}");
    assert!(br.iter().all(|b| b["kind"] == bridge_kind));
    if let Some(r) = validate_xml(&out.join("big.xml")) {
        r.unwrap_or_else(|e| panic!("{profile}: virt-xml-validate: {e}"));
    }
    let xml = std::fs::read_to_string(out.join("big.xml")).unwrap();
    assert_eq!(xml.matches(&format!("model='{bridge_kind}'>")).count(), bridges, "{xml}");
    if !have("qemu-system-x86_64") {
        eprintln!("qemu-system-x86_64 missing: QMP check skipped");
        return;
    }
    for d in devs.iter().filter(|d| d["type"] == "virtio-blk") {
        std::fs::File::create(d["file"].as_str().unwrap()).unwrap().set_len(1 << 20).unwrap();
    }
    let sock = out.join("qmp.sock");
    let mut child = Command::new("sh")
        .arg(out.join("big.sh"))
        .args(["-S", "-display", "none", "-qmp"])
        .arg(format!("unix:{},server=on,wait=off", sock.display()))
        .env("FERRY_QEMU_ACCEL", "-accel tcg")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut q = Qmp::connect(&sock, &mut child);
    // Stopped (-S): the root bus, bridges included, as the spec places it.
    let mut got = Vec::new();
    flatten(&q.cmd("query-pci", json!({}))[0]["devices"], "", &mut got);
    for b in br {
        let want = (String::new(), b["addr"]["slot"].as_u64().unwrap(), b["addr"]["function"].as_u64().unwrap(), b["id"].as_str().unwrap().to_string());
        assert!(got.contains(&want), "{profile}: bridge {want:?} not in {got:?}");
    }
    // The buses behind the bridges are numbered by the firmware: run it, then look again.
    q.cmd("cont", json!({}));
    let start = Instant::now();
    let pci = loop {
        let pci = q.cmd("query-pci", json!({}));
        let numbered = pci[0]["devices"].as_array().unwrap().iter().filter_map(|d| d.get("pci_bridge")).all(|b| b["bus"]["secondary"].as_u64().unwrap_or(0) != 0);
        if numbered || start.elapsed() > Duration::from_secs(60) {
            break pci;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    q.cmd("quit", json!({}));
    assert!(child.wait().unwrap().success());
    let mut got = Vec::new();
    flatten(&pci[0]["devices"], "", &mut got);
    let bridge_of = |bus: u64| if bus == 0 { String::new() } else { format!("pci.{bus}") };
    for b in br {
        let want = (String::new(), b["addr"]["slot"].as_u64().unwrap(), b["addr"]["function"].as_u64().unwrap(), b["id"].as_str().unwrap().to_string());
        assert!(got.contains(&want), "{profile}: bridge {want:?} not in {got:?}");
    }
    for d in devs {
        let a = &d["addr"];
        let want = (bridge_of(a["bus"].as_u64().unwrap()), a["slot"].as_u64().unwrap(), a["function"].as_u64().unwrap(), d["id"].as_str().unwrap().to_string());
        assert!(got.contains(&want), "{profile}: {want:?} not in {got:?}");
    }
    eprintln!("{profile}: QEMU shows {} functions, {} bridges", got.len(), br.len());
}

#[test]
fn ten_nics_and_forty_disks_fit_behind_root_ports_on_q35_v2() {
    // q35-v2: 8 NIC + 14 disk root slots; 2 NICs + 26 disks behind 28 root ports.
    convert_and_check("q35-v2", "pcie-root-port", 28);
}

#[test]
fn ten_nics_and_forty_disks_fit_behind_a_bridge_on_pc_v2() {
    // pc-v2: 8 NIC + 17 disk root slots; 2 NICs + 23 disks behind one PCI bridge.
    convert_and_check("pc-v2", "pci-bridge", 1);
}

#[test]
fn v1_profiles_refuse_what_does_not_fit() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().canonicalize().unwrap();
    let vmx = write_vmx(&out);
    let err = ferry_err(&["convert", "-i", "vmx", vmx.to_str().unwrap(), "-o", "local", "-os", out.to_str().unwrap(), "--no-copy", "--profile", "q35-v1"]);
    assert!(err.contains("10 nic devices do not fit machine profile q35-v1 (at most 8)"), "{err}");
}

/// Ferry's runtime runs the bridged spec: the pciscan micro-guest (`runtime_pci_abi`) walks
/// the 28 root ports (q35-v2) or the PCI bridge (pc-v2) and prints the same table under
/// `ferry run` on the emitted spec as under QEMU from the emitted script: every bridge and
/// all 50 devices behind and beside them, at the spec's addresses.
#[test]
fn runtime_runs_the_bridged_spec_as_qemu_does() {
    if !have("qemu-system-x86_64") {
        eprintln!("SKIP: qemu-system-x86_64 missing");
        return;
    }
    let elf = runtime_support::guest("pciscan");
    for profile in ["q35-v2", "pc-v2"] {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().canonicalize().unwrap();
        let vmx = write_vmx(&out);
        // One vCPU: QEMU gives virtio-blk a queue per vCPU (num-queues = vCPUs, MSI-X vectors
        // = queues + 1) and the runtime serves one queue, which the table would show.
        let one = std::fs::read_to_string(&vmx).unwrap().replace("numvcpus = \"2\"", "numvcpus = \"1\"");
        std::fs::write(&vmx, one).unwrap();
        ferry_ok(&["convert", "-i", "vmx", vmx.to_str().unwrap(), "-o", "local", "-os", out.to_str().unwrap(), "--no-copy", "--profile", profile, "-of", "raw"]);
        let mut spec: Value = serde_json::from_str(&std::fs::read_to_string(out.join("big.ferry.json")).unwrap()).unwrap();
        for d in spec["devices"].as_array().unwrap().iter().filter(|d| d["type"] == "virtio-blk") {
            std::fs::File::create(d["file"].as_str().unwrap()).unwrap().set_len(1 << 20).unwrap();
        }
        let q = Command::new("sh")
            .arg(out.join("big.sh"))
            .args(["-display", "none", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel"])
            .arg(&elf)
            .env("FERRY_QEMU_ACCEL", "-accel tcg")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let qemu_table = runtime_support::text(&q.stdout);
        assert!(qemu_table.contains("pci scan end"), "{profile}: QEMU: {qemu_table}\n{}", String::from_utf8_lossy(&q.stderr));
        for d in spec["devices"].as_array().unwrap() {
            let a = &d["addr"];
            let line = format!("{:02x}:{:02x}.0 1af4:", a["bus"].as_u64().unwrap(), a["slot"].as_u64().unwrap());
            assert!(qemu_table.contains(&line), "{profile}: {}: no {line} in QEMU's table", d["id"]);
        }
        if !runtime_support::kvm_available() {
            continue;
        }
        spec["boot"] = json!({"kernel": elf, "cmdline": ""});
        std::fs::write(out.join("run.ferry.json"), spec.to_string()).unwrap();
        let console = out.join("console.log");
        let r = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .arg("run")
            .arg(out.join("run.ferry.json"))
            .args(["--no-reboot", "--timeout", "60", "--console"])
            .arg(&console)
            .output()
            .unwrap();
        let ours = runtime_support::text(&std::fs::read(&console).unwrap_or_default());
        assert_eq!(r.status.code(), Some(0x10), "{profile}: ferry run: {}\n{ours}", String::from_utf8_lossy(&r.stderr));
        assert_eq!(ours, qemu_table, "{profile}: PCI tables differ between `ferry run` and the emitted QEMU script");
        eprintln!("{profile}: {} functions, identical", ours.lines().count() - 2);
    }
}

/// QMP on the bridged spec: `query-pci` nests every device behind the bridge QEMU shows it
/// behind, at the same slot; `device_del` of a NIC behind a root port, which QEMU accepts
/// (ACPI PCI hotplug on the root ports of pc-q35-7.2), is refused by the runtime in a
/// GenericError naming the missing ACPI hotplug pieces, as is `device_add` onto a root port.
#[test]
fn qmp_on_the_bridged_spec() {
    if !have("qemu-system-x86_64") || !runtime_support::kvm_available() {
        eprintln!("SKIP: qemu-system-x86_64 or /dev/kvm missing");
        return;
    }
    let elf = runtime_support::guest("idle");
    let t = tempfile::tempdir().unwrap();
    let out = t.path().canonicalize().unwrap();
    let vmx = write_vmx(&out);
    ferry_ok(&["convert", "-i", "vmx", vmx.to_str().unwrap(), "-o", "local", "-os", out.to_str().unwrap(), "--no-copy", "-of", "raw"]);
    let mut spec: Value = serde_json::from_str(&std::fs::read_to_string(out.join("big.ferry.json")).unwrap()).unwrap();
    for d in spec["devices"].as_array().unwrap().iter().filter(|d| d["type"] == "virtio-blk") {
        std::fs::File::create(d["file"].as_str().unwrap()).unwrap().set_len(1 << 20).unwrap();
    }
    let ids: Vec<String> = spec["devices"].as_array().unwrap().iter().chain(spec["bridges"].as_array().unwrap()).map(|d| d["id"].as_str().unwrap().to_string()).collect();
    let placed = |pci: &Value| {
        let mut got = Vec::new();
        flatten(&pci[0]["devices"], "", &mut got);
        got.retain(|g| ids.contains(&g.3));
        got.sort();
        got
    };
    // QEMU: device_del is accepted (ACPI hotplug).
    let sock = out.join("qemu.sock");
    let mut child = Command::new("sh")
        .arg(out.join("big.sh"))
        .args(["-S", "-display", "none", "-qmp"])
        .arg(format!("unix:{},server=on,wait=off", sock.display()))
        .env("FERRY_QEMU_ACCEL", "-accel tcg")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut q = Qmp::connect(&sock, &mut child);
    // SeaBIOS numbers the buses behind the bridges; query-pci nests devices once it has.
    q.cmd("cont", json!({}));
    let start = Instant::now();
    let qemu_pci = loop {
        let got = placed(&q.cmd("query-pci", json!({})));
        if got.len() == ids.len() || start.elapsed() > Duration::from_secs(60) {
            break got;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(q.answer("device_del", json!({"id": "net8"})), json!({"return": {}}));
    q.cmd("quit", json!({}));
    assert!(child.wait().unwrap().success());
    // The runtime, running the idle micro-guest.
    spec["boot"] = json!({"kernel": elf, "cmdline": ""});
    std::fs::write(out.join("run.ferry.json"), spec.to_string()).unwrap();
    let sock = out.join("ferry.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "--console", "-", "--qmp"])
        .arg(&sock)
        .arg(out.join("run.ferry.json"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut r = Qmp::connect(&sock, &mut child);
    let ours = placed(&r.cmd("query-pci", json!({})));
    assert_eq!(ours, qemu_pci, "query-pci: the runtime places devices differently");
    assert_eq!(ours.len(), ids.len(), "{ours:?}");
    for (what, args) in [("device_del", json!({"id": "net8"})), ("device_add", json!({"driver": "virtio-net-pci-non-transitional", "bus": "pci.1", "id": "hp"}))] {
        let a = r.answer(what, args);
        assert_eq!(a["error"]["class"], "GenericError", "{what}: {a}");
        let desc = a["error"]["desc"].as_str().unwrap_or_default();
        assert!(desc.starts_with("Bus 'pci.1' hotplug is not available in ferry-runtime") && desc.contains("ACPI PCI hotplug"), "{what}: {desc}");
    }
    r.cmd("quit", json!({}));
    assert!(child.wait().unwrap().success());
}

/// A spec naming a bridge kind the runtime does not serve is refused in one line naming it.
#[test]
fn runtime_refuses_an_unknown_bridge_kind_in_one_line() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().canonicalize().unwrap();
    let vmx = write_vmx(&out);
    ferry_ok(&["convert", "-i", "vmx", vmx.to_str().unwrap(), "-o", "ferry", "-os", out.to_str().unwrap(), "--no-copy", "-of", "raw"]);
    let mut spec: Value = serde_json::from_str(&std::fs::read_to_string(out.join("big.ferry.json")).unwrap()).unwrap();
    assert_eq!(spec["profile"], "q35-v2", "the default profile");
    spec["boot"] = json!({"kernel": out.join("vmlinuz"), "cmdline": ""});
    spec["bridges"][0]["kind"] = "pcie-downstream-port\u{1b}".into();
    std::fs::write(out.join("big.ferry.json"), spec.to_string()).unwrap();
    let err = ferry_err(&["run", out.join("big.ferry.json").to_str().unwrap(), "--timeout", "5"]);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("invalid kind \"pcie-downstream-port\\u{1b}\"") && err.contains("bridge pci.1: the runtime serves pcie-root-port and pci-bridge only"), "{err}");
}
