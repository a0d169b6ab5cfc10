//! The QEMU launch script, started for real under TCG with `-S` and queried over QMP:
//! every device QEMU shows on bus 0 sits at the BDF the Ferry spec / machine profile gives
//! it with the profile's vendor/device IDs, nothing else is there, and the MACs, disk
//! serials and SMBIOS UUID are the spec's. Disks are small qcow2/raw images from qemu-img.
//! With `--virtio legacy` every virtio function is QEMU's transitional one (legacy device
//! ID, subsystem = virtio type, an I/O BAR 0) and the libvirt XML validates. With
//! `--block-driver virtio-scsi` the disks' slot holds one virtio-scsi controller (1AF4:1048,
//! transitional 1AF4:1004) and every disk is a `scsi-hd` at channel 0, the spec's target, LUN 0.

mod convert_support;

use convert_support::qmp::Qmp;
use convert_support::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap()
}

fn boot_and_check(mode: &str, input: &Path, profile: &str, of: &str, extra: &[&str]) {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().canonicalize().unwrap();
    let mut args = vec![
        "convert", "-i", mode, input.to_str().unwrap(), "-o", "local", "-os", out.to_str().unwrap(),
        "--no-copy", "--profile", profile, "-of", of,
    ];
    args.extend_from_slice(extra);
    ferry_ok(&args);
    let spec_path = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().ends_with(".ferry.json")).unwrap();
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(&spec_path).unwrap()).unwrap();
    let name = spec["name"].as_str().unwrap().to_string();
    // The disks the script names: small images made by qemu-img.
    let scsi_disks: Vec<Value> = spec["devices"].as_array().unwrap().iter().filter(|d| d["type"] == "virtio-scsi").flat_map(|d| d["disks"].as_array().unwrap().clone()).collect();
    for d in spec["devices"].as_array().unwrap().iter().filter(|d| d["type"] == "virtio-blk").chain(&scsi_disks) {
        let st = Command::new("qemu-img").args(["create", "-q", "-f", of]).arg(d["file"].as_str().unwrap()).arg("64M").status().unwrap();
        assert!(st.success());
    }
    let sock = out.join("qmp.sock");
    let mut child = Command::new("sh")
        .arg(out.join(format!("{name}.sh")))
        .args(["-S", "-display", "none", "-qmp"])
        .arg(format!("unix:{},server=on,wait=off", sock.display()))
        .env("FERRY_QEMU_ACCEL", "-accel tcg")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut q = Qmp::connect(&sock, &mut child);
    let pci = q.cmd("query-pci", json!({}));
    let uuid = q.cmd("query-uuid", json!({}));
    let mut qom = |path: String, prop: &str| q.cmd("qom-get", json!({"path": path, "property": prop}));
    let profile_json: Value = {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("formats/machines").join(format!("{profile}.json"));
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    // Expected functions: chipset, video, and every spec device.
    let class_of = |t: &str| match t {
        "virtio-blk" => "disk",
        "virtio-net" => "nic",
        "virtio-console" => "console",
        "virtio-rng" => "rng",
        "virtio-balloon" => "balloon",
        "virtio-scsi" => "scsi",
        other => panic!("{other}"),
    };
    let ids = |class: &str| -> (u64, u64) {
        // The virtio-scsi controller sits in a disk slot; its modern ID is 0x1040 + 8.
        if class == "scsi" {
            return (0x1af4, 0x1048);
        }
        let c = profile_json["classes"].as_array().unwrap().iter().find(|c| c["class"] == class).unwrap();
        (hex(c["vendor"].as_str().unwrap()), hex(c["device"].as_str().unwrap()))
    };
    let mut want: Vec<(u64, u64, u64, u64, u64, String)> = Vec::new();
    for c in profile_json["chipset"].as_array().unwrap() {
        let a = c["addr"].as_str().unwrap();
        let (slot, func) = a[3..].split_once('.').unwrap();
        want.push((hex(&a[..2]), hex(slot), hex(func), hex(c["vendor"].as_str().unwrap()), hex(c["device"].as_str().unwrap()), String::new()));
    }
    let video = profile_json["classes"].as_array().unwrap().iter().find(|c| c["class"] == "video").unwrap();
    let (vv, vd) = ids("video");
    want.push((0, video["first"].as_u64().unwrap(), 0, vv, vd, "video0".into()));
    // QEMU's transitional IDs: 0x1000 net, 0x1001 block, 0x1002 balloon, 0x1003 console, 0x1005 rng.
    let legacy_id = |t: &str| match t {
        "virtio-net" => 0x1000,
        "virtio-blk" => 0x1001,
        "virtio-balloon" => 0x1002,
        "virtio-console" => 0x1003,
        "virtio-rng" => 0x1005,
        "virtio-scsi" => 0x1004,
        other => panic!("{other}"),
    };
    let transitional = |d: &Value| d["model"] == "transitional";
    for d in spec["devices"].as_array().unwrap() {
        let (v, mut dev) = ids(class_of(d["type"].as_str().unwrap()));
        if transitional(d) {
            dev = legacy_id(d["type"].as_str().unwrap());
        }
        let a = &d["addr"];
        want.push((a["bus"].as_u64().unwrap(), a["slot"].as_u64().unwrap(), a["function"].as_u64().unwrap(), v, dev, d["id"].as_str().unwrap().into()));
    }
    want.sort();
    let mut got: Vec<(u64, u64, u64, u64, u64, String)> = Vec::new();
    for bus in pci.as_array().unwrap() {
        for d in bus["devices"].as_array().unwrap() {
            got.push((
                d["bus"].as_u64().unwrap(),
                d["slot"].as_u64().unwrap(),
                d["function"].as_u64().unwrap(),
                d["id"]["vendor"].as_u64().unwrap(),
                d["id"]["device"].as_u64().unwrap(),
                d["qdev_id"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    got.sort();
    // Transitional functions: subsystem = virtio device type, I/O BAR 0 first.
    for bus in pci.as_array().unwrap() {
        for d in bus["devices"].as_array().unwrap() {
            let Some(sd) = spec["devices"].as_array().unwrap().iter().find(|x| x["id"].as_str() == d["qdev_id"].as_str()) else { continue };
            let vtype = match sd["type"].as_str().unwrap() {
                "virtio-net" => 1,
                "virtio-blk" => 2,
                "virtio-console" => 3,
                "virtio-rng" => 4,
                "virtio-scsi" => 8,
                _ => 5,
            };
            let io0 = d["regions"].as_array().unwrap().iter().any(|r| r["bar"] == 0 && r["type"] == "io");
            assert_eq!(io0, transitional(sd), "{}: legacy I/O BAR 0", sd["id"]);
            if transitional(sd) {
                assert_eq!(d["id"]["subsystem"], vtype, "{}", sd["id"]);
                assert_eq!(d["id"]["subsystem-vendor"], 0x1af4, "{}", sd["id"]);
            }
        }
    }
    eprintln!("{profile}: QEMU shows {} PCI functions: {got:?}", got.len());
    assert_eq!(got, want, "{profile}: QEMU PCI devices differ from the spec");
    assert_eq!(uuid["UUID"], spec["smbios_uuid"]);
    for d in spec["devices"].as_array().unwrap() {
        let id = d["id"].as_str().unwrap();
        match d["type"].as_str().unwrap() {
            "virtio-net" => assert_eq!(qom(format!("/machine/peripheral/{id}"), "mac"), d["mac"]),
            "virtio-blk" => assert_eq!(qom(format!("/machine/peripheral/{id}/virtio-backend"), "serial"), d["serial"]),
            _ => {}
        }
    }
    // SCSI disks: on the controller's bus, channel 0, scsi-id = the spec's target, LUN 0.
    for d in &scsi_disks {
        let path = format!("/machine/peripheral/{}", d["id"].as_str().unwrap());
        assert_eq!(qom(path.clone(), "serial"), d["serial"]);
        assert_eq!((qom(path.clone(), "channel"), qom(path.clone(), "scsi-id"), qom(path.clone(), "lun")), (json!(0), d["target"].clone(), json!(0)), "{path}");
    }
    q.cmd("quit", json!({}));
    let st = child.wait().unwrap();
    assert!(st.success(), "qemu: {st}");
    if let Some(r) = validate_xml(&out.join(format!("{name}.xml"))) {
        r.unwrap_or_else(|e| panic!("{profile}: virt-xml-validate: {e}"));
    }
}

#[test]
fn q35_script_matches_spec_under_qmp() {
    if !have("qemu-system-x86_64") || !have("qemu-img") {
        eprintln!("qemu-system-x86_64 or qemu-img missing: skipped");
        return;
    }
    // UEFI + secure boot, two disks, two NICs, a CD-ROM on the AHCI.
    boot_and_check("vmx", &configs().join("vmx/esxi8-rhel9.vmx"), "q35-v1", "qcow2", &[]);
}

#[test]
fn pc_script_matches_spec_under_qmp() {
    if !have("qemu-system-x86_64") || !have("qemu-img") {
        eprintln!("qemu-system-x86_64 or qemu-img missing: skipped");
        return;
    }
    // BIOS, IDE disk + CD-ROM source, raw output disks, NIC without a MAC in the source.
    boot_and_check("xen", &configs().join("xen/win01-hvm.xm"), "pc-v1", "raw", &[]);
    boot_and_check("vmx", &configs().join("vmx/esxi55-legacy.vmx"), "pc-v1", "qcow2", &[]);
}

#[test]
fn transitional_scripts_match_spec_under_qmp() {
    if !have("qemu-system-x86_64") || !have("qemu-img") {
        eprintln!("qemu-system-x86_64 or qemu-img missing: skipped");
        return;
    }
    boot_and_check("vmx", &configs().join("vmx/esxi8-rhel9.vmx"), "q35-v1", "qcow2", &["--virtio", "legacy"]);
    boot_and_check("xen", &configs().join("xen/web01-pv.cfg"), "pc-v1", "raw", &["--virtio", "legacy"]);
}

#[test]
fn virtio_scsi_scripts_match_spec_under_qmp() {
    if !have("qemu-system-x86_64") || !have("qemu-img") {
        eprintln!("qemu-system-x86_64 or qemu-img missing: skipped");
        return;
    }
    // Two disks and a SATA CD-ROM (q35), and a transitional controller on pc.
    boot_and_check("vmx", &configs().join("vmx/esxi8-rhel9.vmx"), "q35-v2", "qcow2", &["--block-driver", "virtio-scsi"]);
    boot_and_check("xen", &configs().join("xen/win01-hvm.xm"), "pc-v2", "raw", &["--block-driver", "virtio-scsi", "--virtio", "legacy"]);
}
