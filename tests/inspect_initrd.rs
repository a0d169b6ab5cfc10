//! Which virtio drivers each kernel's initramfs holds, on the real cached Debian 12 guests
//! (`testdata/guests/`): initramfs-tools (zstd) and dracut (gzip) images built on "VMware",
//! whose lists the guest's own `lsinitramfs` recorded at build time (`initrd.list`, the
//! oracle) hold no virtio module; `ferry inspect` must say so in text, JSON and XML, and name
//! what the kernel lacks to find a virtio-blk root. After `ferry convert` (which injects the
//! drivers) the converted disk's initrd holds them: the inspection's list equals the one
//! `cpio -t` gives for the image dumped from the converted disk.
mod convert_linux_support;

use convert_linux_support::*;
use std::collections::BTreeSet;
use std::process::Command;

const VIRTIO: [&str; 10] = [
    "virtio_pci", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_blk", "virtio_scsi", "virtio_net", "virtio_console", "virtio_rng", "virtio_balloon", "virtio_ring",
];

/// The virtio module names among listed paths.
fn virtio_in(list: &str) -> BTreeSet<String> {
    list.lines()
        .filter_map(|l| l.rsplit('/').next())
        .filter_map(|f| [".ko", ".ko.xz", ".ko.zst", ".ko.gz"].iter().find_map(|s| f.strip_suffix(s)))
        .map(|m| m.replace('-', "_"))
        .filter(|m| VIRTIO.contains(&m.as_str()))
        .collect()
}

fn listed(k: &serde_json::Value) -> BTreeSet<String> {
    k["initrd_virtio"]["modules"].as_array().expect("modules").iter().map(|m| m.as_str().expect("str").to_string()).collect()
}

#[test]
fn inspection_lists_the_virtio_drivers_of_each_initramfs() {
    for (name, compression) in [("debian-vmware", "zstd"), ("debian-dracut", "gzip")] {
        let Some(g) = guest(name, &[]) else { return };
        let disk = g.join("disk.raw");
        let oracle = virtio_in(&std::fs::read_to_string(g.join("initrd.list")).expect("initrd.list"));
        let json: serde_json::Value = serde_json::from_str(&ferry_ok(&["inspect", "--json", disk.to_str().unwrap()])).unwrap();
        let k = &json["operating_systems"][0]["kernels"][0];
        let rd = &k["initrd_virtio"];
        assert_eq!(rd["path"], k["initrd"], "{k}");
        assert_eq!(rd["segments"], serde_json::json!([compression]), "{name}: {k}");
        assert!(rd.get("error").is_none(), "{k}");
        assert_eq!(listed(k), oracle, "{name}: lsinitramfs in the guest listed {oracle:?}");
        assert!(oracle.is_empty(), "{name}: the fixture's initrd was expected without virtio");
        assert_eq!(rd["missing"], serde_json::json!(["virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci", "virtio_blk"]), "{k}");
        let text = ferry_ok(&["inspect", disk.to_str().unwrap()]);
        assert!(text.contains(&format!("    initrd ({compression}) virtio modules: -; built in: -\n    initrd lacks virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk:")), "{text}");
        let xml = ferry_ok(&["inspect", "--xml", disk.to_str().unwrap()]);
        assert!(xml.contains(&format!("<initrd path=\"{}\" virtio-modules=\"\" virtio-builtin=\"\" missing=\"virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk\"/>", k["initrd"].as_str().unwrap())), "{xml}");
    }
}

#[test]
fn converted_guest_initramfs_holds_the_injected_drivers() {
    let Some(g) = guest("debian-vmware", &["zstd", "cpio"]) else { return };
    let work = tempfile::tempdir().unwrap();
    let out = new_dir(work.path(), "out");
    let stdout = convert_local_ok("vmx", &g.join("debian-vmware.vmx"), &out, &[]);
    // The plan said what the image lacked.
    let kver = std::fs::read_to_string(g.join("kernel-version")).expect("kernel-version");
    let kver = kver.trim();
    let note = format!("the initramfs /boot/initrd.img-{kver} of kernel {kver} lacks virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk virtio_scsi: they are added to it");
    assert!(stdout.contains(&note), "{stdout}");

    let disk = out.join("debian-vmware-sda");
    let json: serde_json::Value = serde_json::from_str(&ferry_ok(&["inspect", "--json", disk.to_str().unwrap()])).unwrap();
    let k = &json["operating_systems"][0]["kernels"][0];
    assert_eq!(k["initrd_virtio"]["missing"], serde_json::json!([]), "{k}");
    // Oracle: the image dumped from the converted disk, listed by zstd + cpio.
    let part = first_partition(&disk, work.path());
    let rd = work.path().join("initrd.img");
    debugfs_dump(&part, &format!("/boot/initrd.img-{kver}"), &rd);
    let list = run(Command::new("sh").arg("-c").arg(format!("zstd -dc {} | cpio -it --quiet", rd.display())));
    let oracle = virtio_in(&list);
    for m in ["virtio_pci", "virtio_blk", "virtio_net", "virtio_scsi"] {
        assert!(oracle.contains(m), "cpio -t lists no {m}: {oracle:?}");
    }
    assert_eq!(listed(k), oracle, "{k}");
}
