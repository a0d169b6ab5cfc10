//! `ferry inspect` on a Debian 12 MBR disk with logical partitions, built with sfdisk,
//! mkfs.ext4/ext3 -d, mkswap and mkfs.xfs. Oracles: sfdisk --json, blkid -p, and the
//! identifiers and files the build script staged.

mod inspect_support;
use inspect_support::*;

#[test]
fn debian_mbr_every_fact() {
    let Some(dir) = fixtures() else { return };
    let m = manifest(&dir);
    let img = dir.join("debian-mbr.img");
    let r = inspect_json(std::slice::from_ref(&img));

    // Partition table against sfdisk.
    let t = &r["disks"][0]["partition_table"];
    assert_eq!(t["kind"], "mbr");
    assert_eq!(t["disk_id"], format!("0x{}", m["DEB_SIG"]));
    let parts = t["partitions"].as_array().unwrap();
    let want = sfdisk(&img);
    assert_eq!(parts.len(), want.len());
    for (p, (num, start, size, ty)) in parts.iter().zip(&want) {
        assert_eq!(p["number"], *num);
        assert_eq!(p["start"], start * 512);
        assert_eq!(p["size"], size * 512);
        assert_eq!(p["type_id"].as_str().unwrap(), format!("0x{:0>2}", ty), "partition {num}");
        assert_eq!(p["logical"], *num >= 5);
        assert_eq!(p["partuuid"], format!("{}-{num:02x}", m["DEB_SIG"]));
    }
    assert_eq!(parts[0]["bootable"], true);
    assert_eq!(parts[1]["kind"], "extended");
    assert_eq!(parts[2]["kind"], "linux-swap");

    // Filesystems against blkid -p at each partition's offset.
    for (dev, num) in [("/dev/sda1", 1), ("/dev/sda5", 5), ("/dev/sda6", 6), ("/dev/sda7", 7)] {
        let (_, start, _, _) = want.iter().find(|w| w.0 == num).unwrap();
        let b = blkid(&img, start * 512);
        let f = fs(&r, dev);
        assert_eq!(f["fstype"].as_str(), b.get("TYPE").map(String::as_str), "{dev}");
        assert_eq!(f["uuid"].as_str(), b.get("UUID").map(String::as_str), "{dev}");
        assert_eq!(f["label"].as_str(), b.get("LABEL").map(String::as_str), "{dev}");
    }
    assert_eq!(fs(&r, "/dev/sda1")["uuid"], m["DEB_ROOT_UUID"]);
    assert_eq!(fs(&r, "/dev/sda7")["version"], "v5");
    assert_eq!(r["firmware"], "bios");

    // OS facts.
    let os = os(&r, "/dev/sda1");
    assert_eq!(os["os_type"], "linux");
    assert_eq!(os["distro"], "debian");
    assert_eq!(os["product_name"], "Debian GNU/Linux 12 (bookworm)");
    assert_eq!((os["major_version"].as_u64(), os["minor_version"].as_u64()), (Some(12), Some(5)));
    // The script copied the host's /bin/sh target in as /usr/bin/bash.
    let host_arch = if cfg!(target_arch = "x86_64") { "x86_64" } else { std::env::consts::ARCH };
    assert_eq!(os["arch"], host_arch);
    assert_eq!(os["hostname"], "deb12-web");
    assert_eq!(os["package_format"], "deb");
    assert_eq!(os["package_management"], "apt");
    assert_eq!(os["osinfo"], "debian12");
    assert_eq!(os["firmware"], "bios");
    let mps: Vec<(String, String)> = serde_json::from_value(os["mountpoints"].clone()).unwrap();
    let mps: Vec<(&str, &str)> = mps.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(mps, [("/", "/dev/sda1"), ("/home", "/dev/sda6"), ("/srv", "/dev/sda7")]);

    // fstab: UUID=, device path, LABEL=, PARTUUID= resolved; the CD-ROM is not a found device.
    let fstab = os["fstab"].as_array().unwrap();
    let resolved: Vec<(&str, Option<&str>)> =
        fstab.iter().map(|e| (e["mountpoint"].as_str().unwrap(), e["device"].as_str())).collect();
    assert_eq!(
        resolved,
        [
            ("/", Some("/dev/sda1")),
            ("none", Some("/dev/sda5")),
            ("/home", Some("/dev/sda6")),
            ("/srv", Some("/dev/sda7")),
            ("/media/cdrom0", None)
        ]
    );

    // Kernels: modules (.ko) and built-ins (modules.builtin, config =y), initrd choice,
    // the Xen-PV-only kernel, and the image without /lib/modules.
    let ks = os["kernels"].as_array().unwrap();
    assert_eq!(ks.len(), 2);
    let k = ks.iter().find(|k| k["version"] == m["DEB_KVER"]).unwrap();
    assert_eq!(k["initrd"], format!("/boot/initrd.img-{}", m["DEB_KVER"]));
    assert_eq!(k["modules_dir"], format!("/lib/modules/{}", m["DEB_KVER"]));
    assert_eq!(
        [&k["virtio_blk"], &k["virtio_net"], &k["virtio_pci"], &k["virtio_scsi"]],
        ["module", "module", "builtin", "module"]
    );
    assert_eq!(k["xen_pv_only"], false);
    // The fixture's initrd is a text file, not an initramfs: one line naming it and its bytes.
    let rd = format!("/boot/initrd.img-{}", m["DEB_KVER"]);
    assert_eq!(k["initrd_virtio"]["path"], rd.as_str());
    assert_eq!(
        k["initrd_virtio"]["error"],
        format!("{rd} at offset 0: invalid segment magic 696e6974: neither cpio nor a known compression")
    );
    assert_eq!(x_initrd_virtio(ks, &m["XEN_KVER"]), serde_json::Value::Null);
    let x = ks.iter().find(|k| k["version"] == m["XEN_KVER"]).unwrap();
    assert_eq!(x["xen_pv_only"], true);
    assert_eq!(x["initrd"], serde_json::Value::Null);
    assert_eq!(x["virtio_blk"], "absent");
    assert_eq!(os["kernels_without_modules"], serde_json::json!([format!("/boot/vmlinuz-{}", m["DEB_KVER_OLD"])]));

    assert_eq!(os["bootloader"], "grub2");
    assert_eq!(os["bootloader_config"], "/boot/grub/grub.cfg");
    assert_eq!(os["initramfs_generator"], "initramfs-tools");
    assert_eq!(
        os["network"],
        serde_json::json!([{"kind": "ifupdown", "file": "/etc/network/interfaces", "interfaces": ["ens192"]}])
    );
    assert_eq!(os["hypervisor_tools"], serde_json::json!(["open-vm-tools"]));
    assert_eq!(os["selinux"], serde_json::Value::Null);
    assert_eq!(r["warnings"], serde_json::json!([]));
}

#[test]
fn debian_xml_and_summary() {
    let Some(dir) = fixtures() else { return };
    let img = dir.join("debian-mbr.img").display().to_string();
    let xml = ferry(&["inspect", "--xml", &img]);
    for want in [
        "<operatingsystems>",
        "<root>/dev/sda1</root>",
        "<name>linux</name>",
        "<distro>debian</distro>",
        "<product_name>Debian GNU/Linux 12 (bookworm)</product_name>",
        "<major_version>12</major_version>",
        "<minor_version>5</minor_version>",
        "<package_format>deb</package_format>",
        "<package_management>apt</package_management>",
        "<hostname>deb12-web</hostname>",
        "<mountpoint dev=\"/dev/sda6\">/home</mountpoint>",
        "<filesystem dev=\"/dev/sda7\">",
        "<type>xfs</type>",
        "<label>srvdata</label>",
    ] {
        assert!(xml.contains(want), "missing {want} in\n{xml}");
    }
    let text = ferry(&["inspect", &img]);
    assert!(text.contains("linux debian 12.5"), "{text}");
    assert!(!text.contains("No operating system"), "{text}");
}

/// The `initrd_virtio` of kernel `ver` (null: the kernel has no initrd).
fn x_initrd_virtio(ks: &[serde_json::Value], ver: &str) -> serde_json::Value {
    ks.iter().find(|k| k["version"] == ver).map(|k| k["initrd_virtio"].clone()).unwrap_or_default()
}
