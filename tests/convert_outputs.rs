//! `ferry convert --no-copy -o local` over every realistic input: the libvirt XML passes
//! `virt-xml-validate FILE domain`, all three descriptions under the v1 profile match their
//! golden files (the ABI of guests converted before the v2 profiles), two runs give
//! byte-identical output, and the default profile (q35-v2) places them identically. Plus --print-source, network mapping, datastores, and
//! the disk-copy step's errors (a missing source, a streamed member that is not a VMDK).

mod convert_support;

use convert_support::*;
use std::path::Path;

const INPUTS: &[(&str, &str)] = &[
    ("vmx", "vmx/esxi8-rhel9.vmx"),
    ("vmx", "vmx/ws17-win10.vmx"),
    ("vmx", "vmx/esxi55-legacy.vmx"),
    ("xen", "xen/web01-pv.cfg"),
    ("xen", "xen/win01-hvm.xm"),
    ("xen", "xen/app-pvh.cfg"),
    ("xen", "xen/ovmf-hvm.cfg"),
    ("libvirtxml", "libvirt/xen-pv.xml"),
    ("libvirtxml", "libvirt/xen-hvm.xml"),
    ("libvirtxml", "libvirt/esx-web01.xml"),
    ("libvirtxml", "libvirt/kvm-roundtrip.xml"),
];

fn convert(mode: &str, input: &Path, dir: &Path, extra: &[&str]) {
    let mut args = vec!["convert", "-i", mode, input.to_str().unwrap(), "-o", "local", "-os", dir.to_str().unwrap(), "--no-copy"];
    args.extend_from_slice(extra);
    ferry_ok(&args);
}

fn only_file(dir: &Path, ext: &str) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(ext))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    names.remove(0).trim_end_matches(ext).to_string()
}

#[test]
fn every_input_validates_matches_golden_and_is_reproducible() {
    let update = std::env::var_os("FERRY_UPDATE_GOLDEN").is_some();
    let have_validator = have("virt-xml-validate");
    if !have_validator {
        eprintln!("virt-xml-validate not installed: XML schema validation skipped");
    }
    for (mode, rel) in INPUTS {
        let input = configs().join(rel);
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = a.path().canonicalize().unwrap();
        let b = b.path().canonicalize().unwrap();
        // The goldens pin the v1 profiles' outputs byte for byte.
        convert(mode, &input, &a, &["--profile", "q35-v1"]);
        convert(mode, &input, &b, &["--profile", "q35-v1"]);
        let name = only_file(&a, ".ferry.json");
        let out_a = outputs(&a, &name);
        assert_eq!(out_a, outputs(&b, &name), "{rel}: two runs differ");
        if have_validator {
            if let Some(Err(e)) = validate_xml(&a.join(format!("{name}.xml"))) {
                panic!("{rel}: virt-xml-validate: {e}");
            }
        }
        let base = Path::new(rel).file_name().unwrap().to_string_lossy().into_owned();
        for (ext, text) in &out_a {
            let golden = configs().join("expected").join(format!("{base}.{ext}"));
            if update {
                std::fs::write(&golden, text).unwrap();
            }
            let want = std::fs::read_to_string(&golden).unwrap_or_else(|_| panic!("{} missing", golden.display()));
            assert_eq!(text, &want, "{rel}: {ext} differs from {}", golden.display());
        }
        let xml = &out_a[0].1;
        assert!(xml.contains("<smbios mode='sysinfo'/>") && xml.contains("<entry name='uuid'>"), "{rel}");
        // Every PCI device is pinned: one PCI address per spec device, plus video and the
        // chipset storage controller.
        let spec: serde_json::Value = serde_json::from_str(&out_a[2].1).unwrap();
        let n = spec["devices"].as_array().unwrap().len();
        assert_eq!(xml.matches("<address type='pci'").count(), n + 2, "{rel}");
        assert_eq!(out_a[1].1.matches(",addr=0x").count(), n + 1, "{rel}");
        if spec["firmware"] == "uefi" {
            uefi_files_agree(rel, xml, &out_a[1].1, &name);
        }
        // The default profile (q35-v2) places these guests exactly as q35-v1 does: only the
        // profile's name differs.
        let c = tempfile::tempdir().unwrap();
        let c = c.path().canonicalize().unwrap();
        convert(mode, &input, &c, &[]);
        let v1: Vec<String> = outputs(&a, &name).iter().map(|(_, t)| t.replace("q35-v1", "q35-v2")).collect();
        let v2: Vec<String> = outputs(&c, &name).iter().map(|(_, t)| t.clone()).collect();
        assert_eq!(v1, v2, "{rel}: the default profile moved a device");
    }
}

/// A UEFI guest's libvirt XML names the OVMF code and VARS template the QEMU script starts by
/// default, and as `<nvram>` the script's store: NAME.vars.fd beside the outputs (where
/// `ferry run` keeps it, beside NAME.ferry.json); secure boot (SMM) in both or neither.
fn uefi_files_agree(rel: &str, xml: &str, sh: &str, name: &str) {
    let between = |s: &str, open: &str, close: &str| -> String {
        let i = s.find(open).unwrap_or_else(|| panic!("{rel}: no {open:?} in:\n{s}")) + open.len();
        let j = s[i..].find(close).unwrap_or_else(|| panic!("{rel}: no {close:?} after {open:?}"));
        s[i..i + j].to_string()
    };
    let code = between(sh, "ovmf_code=\"${OVMF_CODE:-", "}\"");
    let vars = between(sh, "cp \"${OVMF_VARS:-", "}\"");
    let store = between(sh, "ovmf_vars=\"$(dirname \"$0\")\"/'", "'\n").replace("'\\''", "'");
    assert_eq!(store, format!("{name}.vars.fd"), "{rel}");
    let loader = between(xml, "<loader readonly='yes'", "</loader>");
    let secure = loader.starts_with(" secure='yes'");
    assert_eq!(loader.rsplit('>').next(), Some(code.as_str()), "{rel}: {loader}");
    let nvram = between(xml, &format!("<nvram template='{vars}'>"), "</nvram>");
    assert_eq!(nvram, format!("@OUT@/{}", store.replace('"', "&quot;")), "{rel}");
    assert_eq!(secure, sh.contains(",smm=on"), "{rel}: secure boot in one description only");
    assert_eq!(secure, xml.contains("<smm state='on'/>"), "{rel}");
    assert!(!xml.contains("firmware='efi'"), "{rel}: autoselection would replace the loader");
}

#[test]
fn ova_directory_input() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::copy(configs().join("ovf/virtualbox-ovf2.ovf"), src.join("Ubuntu.ovf")).unwrap();
    std::fs::write(src.join("Ubuntu 22.04-disk001.vmdk"), b"not really a vmdk").unwrap();
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    convert("ova", &src, &out, &["-on", "ubuntu"]);
    let xml = out.join("ubuntu.xml");
    if let Some(r) = validate_xml(&xml) {
        r.unwrap();
    }
    let x = std::fs::read_to_string(&xml).unwrap();
    assert!(x.contains(&format!("<source file='{}/ubuntu-sda'/>", out.canonicalize().unwrap().display())), "{x}");
    assert!(x.contains("<source network='NAT'/>"));
}

#[test]
fn print_source_human_and_json() {
    let vmx = configs().join("vmx/esxi8-rhel9.vmx");
    let text = ferry_ok(&["convert", "-i", "vmx", vmx.to_str().unwrap(), "--print-source"]);
    for want in [
        "     source name: web01\n",
        " hypervisor type: vmware\n",
        "          memory: 8589934592 (bytes)\n",
        "        nr vCPUs: 4\n",
        "    CPU topology: sockets: 2 cores/socket: 2 threads/core: 1\n",
        "        firmware: uefi\n",
        " UEFI secureboot: true\n",
        "disks:\n\t0 [scsi pvscsi] 0:0 file ",
        "removable media:\n\tCD-ROM [sata] in slot 0:0\n",
        "NICs:\n\tNetwork \"VM Network\" mac: 00:50:56:a5:b8:68 [vmxnet3]\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    let json = ferry_ok(&["convert", "-i", "vmx", vmx.to_str().unwrap(), "--print-source", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["bios_uuid"], "42256ec1-e066-9364-3dd1-36a0b75263dd");
    assert_eq!(v["disks"][1]["unit"], 1);
}

#[test]
fn network_mapping_and_names() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().canonicalize().unwrap();
    let vmx = configs().join("vmx/esxi8-rhel9.vmx");
    convert("vmx", &vmx, &out, &["-n", "VM Network:prod", "-n", "lab", "--mac", "00:50:56:a5:3e:01:bridge:br9", "-on", "web01-kvm", "--profile", "pc-v1"]);
    let x = std::fs::read_to_string(out.join("web01-kvm.xml")).unwrap();
    assert!(x.contains("<source network='prod'/>"), "{x}");
    assert!(x.contains("<source bridge='br9'/>"), "{x}");
    assert!(x.contains("machine='pc-i440fx-7.2'"));
    assert!(x.contains(&format!("{}/web01-kvm-sdb", out.display())));
    let e = ferry_err(&["convert", "-i", "vmx", vmx.to_str().unwrap(), "-o", "local", "-os", out.to_str().unwrap(), "-n", "a:b", "-n", "a:c", "--no-copy"]);
    assert!(e.contains("\"a\" is already mapped"), "{e}");
    let e = ferry_err(&["convert", "-i", "vmx", vmx.to_str().unwrap(), "-o", "local", "-os", out.to_str().unwrap(), "--mac", "zz:network:x", "--no-copy"]);
    assert!(e.contains("--mac"), "{e}");
}

#[test]
fn datastores_resolve_esx_sources() {
    let xml = configs().join("libvirt/esx-web01.xml");
    let json = ferry_ok(&["convert", "-i", "libvirtxml", xml.to_str().unwrap(), "--print-source", "--json", "--datastore-dir", "/srv/ds", "--datastore", "ssd-02=/mnt/ssd"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["disks"][0]["source"]["path"], "/srv/ds/datastore1/web01/web01.vmdk");
    assert_eq!(v["disks"][1]["source"]["path"], "/mnt/ssd/web01/web01_1.vmdk");
    let vmx = configs().join("vmx/esxi8-rhel9.vmx");
    let json = ferry_ok(&["convert", "-i", "vmx", vmx.to_str().unwrap(), "--print-source", "--json", "--datastore-dir", "/srv/ds"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["disks"][1]["source"]["path"], "/srv/ds/datastore2/web01/web01_1.vmdk");
}

#[test]
fn disk_copy_step_reports_missing_engine_and_unresolved_sources() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path();
    let xml = configs().join("libvirt/esx-web01.xml");
    let e = ferry_err(&["convert", "-i", "libvirtxml", xml.to_str().unwrap(), "-o", "local", "-os", out.to_str().unwrap()]);
    assert!(e.contains("[datastore1] web01/web01.vmdk") && e.contains("--datastore-dir"), "{e}");
    let cfg = configs().join("xen/web01-pv.cfg");
    let e = ferry_err(&["convert", "-i", "xen", cfg.to_str().unwrap(), "-o", "qemu", "-os", out.to_str().unwrap()]);
    assert!(e.contains("/dev/vg0/web01-root"), "{e}");
    // Nothing half-written is left behind.
    assert_eq!(std::fs::read_dir(out).unwrap().count(), 0);
}

#[test]
fn compressed_ova_disks_are_streamed() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::copy(configs().join("ovf/virtualbox-ovf2.ovf"), src.join("Ubuntu.ovf")).unwrap();
    std::fs::write(src.join("Ubuntu 22.04-disk001.vmdk"), vec![7u8; 100_000]).unwrap();
    let ova = t.path().join("ubuntu.ova");
    let st = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&ova)
        .args(["-C", src.to_str().unwrap(), "Ubuntu.ovf", "Ubuntu 22.04-disk001.vmdk"])
        .status()
        .unwrap();
    assert!(st.success());
    let text = ferry_ok(&["convert", "-i", "ova", ova.to_str().unwrap(), "--print-source"]);
    assert!(text.contains("\t0 [sata ahci] 0:0 Ubuntu 22.04-disk001.vmdk streamed from "), "{text}");
    assert!(text.contains(", 100000 bytes (vmdk)"), "{text}");
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let e = ferry_err(&["convert", "-i", "ova", ova.to_str().unwrap(), "-o", "local", "-os", out.to_str().unwrap()]);
    assert!(e.contains("says vmdk") && e.contains("streamed from"), "{e}");
}

#[test]
fn libvirt_output_round_trips_through_the_libvirt_reader() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().canonicalize().unwrap();
    let vmx = configs().join("vmx/esxi8-rhel9.vmx");
    convert("vmx", &vmx, &out, &[]);
    let src: serde_json::Value = serde_json::from_str(&ferry_ok(&["convert", "-i", "vmx", vmx.to_str().unwrap(), "--print-source", "--json"])).unwrap();
    let xml = out.join("web01.xml");
    let back: serde_json::Value =
        serde_json::from_str(&ferry_ok(&["convert", "-i", "libvirtxml", xml.to_str().unwrap(), "--print-source", "--json"])).unwrap();
    for k in ["name", "uuid", "bios_uuid", "genid", "memory_bytes", "vcpus", "topology", "firmware", "secure_boot"] {
        assert_eq!(back[k], src[k], "{k}");
    }
    assert_eq!(back["hypervisor"], "kvm");
    let macs = |v: &serde_json::Value| v["nics"].as_array().unwrap().iter().map(|n| n["mac"].clone()).collect::<Vec<_>>();
    assert_eq!(macs(&back), macs(&src));
    let disks = back["disks"].as_array().unwrap();
    assert_eq!(disks.len(), 2);
    assert_eq!(disks[1]["source"]["path"], format!("{}/web01-sdb", out.display()));
    assert_eq!(disks[1]["format"], "qcow2");
    assert_eq!(back["removables"].as_array().unwrap().len(), 1);
    // Converting the converted guest again gives the same layout, byte for byte.
    let again = t.path().join("again");
    std::fs::create_dir(&again).unwrap();
    let again = again.canonicalize().unwrap();
    convert("libvirtxml", &xml, &again, &["-of", "qcow2"]);
    let a: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("web01.ferry.json")).unwrap()).unwrap();
    let b: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(again.join("web01.ferry.json")).unwrap()).unwrap();
    let strip = |v: &serde_json::Value, dir: &Path| serde_json::to_string(v).unwrap().replace(&dir.display().to_string(), "@OUT@");
    assert_eq!(strip(&a, &out), strip(&b, &again));
}

#[test]
fn virtio_scsi_descriptions_put_every_disk_on_one_controller() {
    let input = configs().join("vmx/esxi8-rhel9.vmx");
    let t = tempfile::tempdir().unwrap();
    let out = t.path().canonicalize().unwrap();
    convert("vmx", &input, &out, &["--block-driver", "virtio-scsi"]);
    let name = only_file(&out, ".ferry.json");
    let [(_, xml), (_, sh), (_, json)] = outputs(&out, &name);
    if let Some(r) = validate_xml(&out.join(format!("{name}.xml"))) {
        r.unwrap_or_else(|e| panic!("virt-xml-validate: {e}\n{xml}"));
    } else {
        eprintln!("virt-xml-validate not installed: XML schema validation skipped");
    }
    // libvirt: one virtio-scsi controller at the first disk slot, disks sda/sdb at targets 0/1.
    assert!(xml.contains("<controller type='scsi' index='0' model='virtio-non-transitional'>\n      <alias name='ua-scsi0'/>\n      <address type='pci' domain='0x0000' bus='0x00' slot='0x0d' function='0x0'/>"), "{xml}");
    for (dev, target) in [("sda", 0), ("sdb", 1)] {
        assert!(xml.contains(&format!("<target dev='{dev}' bus='scsi'/>")), "{xml}");
        assert!(xml.contains(&format!("<address type='drive' controller='0' bus='0' target='{target}' unit='0'/>")), "{xml}");
    }
    assert!(!xml.contains("bus='virtio'"), "{xml}");
    assert_eq!(xml.matches("<boot order='1'/>").count(), 1, "{xml}");
    // The SATA CD-ROM is named after the SCSI disks: every target name once.
    let mut devs: Vec<&str> = xml.match_indices("<target dev='").map(|(i, _)| &xml[i + 13..i + 16]).collect();
    assert_eq!(devs, ["sda", "sdb", "sdc"], "{xml}");
    devs.dedup();
    assert_eq!(devs.len(), 3);
    // QEMU: the controller, then scsi-hd at channel 0, scsi-id N, LUN 0, the first bootable.
    assert!(sh.contains("-device virtio-scsi-pci-non-transitional,id=scsi0,bus=pcie.0,addr=0xd \\"), "{sh}");
    assert!(sh.contains("-device scsi-hd,bus=scsi0.0,channel=0,scsi-id=0,lun=0,drive=drive-disk0,id=disk0,serial='FRY"), "{sh}");
    assert!(sh.contains("-device scsi-hd,bus=scsi0.0,channel=0,scsi-id=1,lun=0,drive=drive-disk1,id=disk1,serial='FRY"), "{sh}");
    assert_eq!(sh.matches("bootindex=1").count(), 1, "{sh}");
    assert!(!sh.contains("virtio-blk"), "{sh}");
    // The spec: a virtio-scsi device holding both disks.
    let spec: serde_json::Value = serde_json::from_str(&json).unwrap();
    let c: Vec<&serde_json::Value> = spec["devices"].as_array().unwrap().iter().filter(|d| d["type"] == "virtio-scsi").collect();
    assert_eq!(c.len(), 1, "{json}");
    assert_eq!(c[0]["disks"].as_array().unwrap().len(), 2, "{json}");
    // The default stays virtio-blk.
    let b = tempfile::tempdir().unwrap();
    convert("vmx", &input, b.path(), &["--block-driver", "virtio-blk"]);
    let c = tempfile::tempdir().unwrap();
    convert("vmx", &input, c.path(), &[]);
    assert_eq!(outputs(b.path(), &name), outputs(c.path(), &name));
}
