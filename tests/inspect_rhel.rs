//! `ferry inspect` on a RHEL 9 guest: GPT + ESP (UEFI) + /boot + LVM root on disk A, and
//! a VG spanning a whole-disk PV on disk B with a striped LV. Built with sgdisk,
//! mkfs.vfat + mcopy, mkfs.ext4 -d and real lvm2 on loop devices. Oracles: sfdisk --json,
//! blkid -p, lvs output recorded at build time, e2fsck and debugfs on the LV bytes.

mod inspect_support;
use ferry_formats::disk::RawImage;
use ferry_inspectors::fs::{ExtFs, FileKind, FileSystem, XfsFs};
use ferry_inspectors::partition::{partition_device, PartitionTable};
use ferry_inspectors::{lvm, Device};
use inspect_support::*;
use std::sync::Arc;

#[test]
fn rhel_gpt_lvm_every_fact() {
    let Some(dir) = fixtures() else { return };
    let m = manifest(&dir);
    let (a, b) = (dir.join("rhel-a.img"), dir.join("rhel-b.img"));
    let r = inspect_json(&[a.clone(), b.clone()]);

    // GPT against sfdisk.
    let t = &r["disks"][0]["partition_table"];
    assert_eq!(t["kind"], "gpt");
    assert_eq!(t["disk_id"], m["RH_DISK_GUID"].to_lowercase());
    assert_eq!(t["used_backup"], false);
    assert_eq!(t["hybrid_mbr"], false);
    let parts = t["partitions"].as_array().unwrap();
    let want = sfdisk_json(&a);
    assert_eq!(parts.len(), want.len());
    for (p, w) in parts.iter().zip(&want) {
        assert_eq!(p["start"].as_u64().unwrap(), w["start"].as_u64().unwrap() * 512);
        assert_eq!(p["size"].as_u64().unwrap(), w["size"].as_u64().unwrap() * 512);
        assert_eq!(p["type_id"], w["type"]);
        assert_eq!(p["partuuid"].as_str().unwrap(), w["uuid"].as_str().unwrap().to_lowercase());
        assert_eq!(p["name"], w["name"]);
    }
    assert_eq!(parts[0]["partuuid"], m["RH_ESP_PARTUUID"].to_lowercase());
    let kinds: Vec<&str> = parts.iter().map(|p| p["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["esp", "linux", "linux-lvm"]);
    assert_eq!(r["disks"][1]["partition_table"], serde_json::Value::Null);
    assert_eq!(r["firmware"], "uefi");

    // LVM against the lvs output recorded when the VG was made.
    let vg = &r["volume_groups"][0];
    assert_eq!(vg["name"], "rhel");
    assert_eq!(vg["pvs"], serde_json::json!(["/dev/sda3", "/dev/sdb"]));
    assert_eq!(vg["missing_pvs"], serde_json::json!([]));
    let lvs = std::fs::read_to_string(dir.join("rhel-lvs.txt")).unwrap();
    let mut n = 0;
    for line in lvs.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let lv = vg["lvs"].as_array().unwrap().iter().find(|l| l["name"] == f[0]).unwrap();
        let extents: u64 = f[2].parse().unwrap();
        assert_eq!(lv["size"].as_u64().unwrap(), extents * 4 * 1024 * 1024, "{}", f[0]);
        assert_eq!(lv["segtype"], f[3], "{}", f[0]);
        assert!(lv.get("refused").is_none());
        n += 1;
    }
    assert_eq!(n, 3);

    // Filesystems: the partitions against blkid, the LVs against the build's identifiers,
    // and the linear root LV also against blkid at its offset on disk A.
    for w in want.iter().take(2) {
        let dev = format!("/dev/sda{}", if w["name"] == "boot" { 2 } else { 1 });
        let bl = blkid(&a, w["start"].as_u64().unwrap() * 512);
        let f = fs(&r, &dev);
        assert_eq!(f["fstype"].as_str(), bl.get("TYPE").map(String::as_str));
        assert_eq!(f["uuid"].as_str(), bl.get("UUID").map(String::as_str));
        assert_eq!(f["label"].as_str(), bl.get("LABEL").map(String::as_str));
    }
    assert_eq!(fs(&r, "/dev/sda1")["uuid"], format!("{}-{}", &m["RH_ESP_SERIAL"][..4], &m["RH_ESP_SERIAL"][4..]));
    assert_eq!(fs(&r, "/dev/sda1")["version"], "FAT32");
    for (lv, uuid, label, ty) in [
        ("root", "RH_ROOT_UUID", "root", "xfs"),
        ("swap", "RH_SWAP_UUID", "swap", "swap"),
        ("data", "RH_DATA_UUID", "data", "ext4"),
    ] {
        let f = fs(&r, &format!("/dev/rhel/{lv}"));
        assert_eq!(f["uuid"], m[uuid]);
        assert_eq!(f["label"], label);
        assert_eq!(f["fstype"], ty);
    }
    let pe_start: u64 = m["PE_START_SECTORS"].parse().unwrap();
    let root_off = want[2]["start"].as_u64().unwrap() * 512 + pe_start * 512;
    let bl = blkid(&a, root_off);
    assert_eq!(bl.get("UUID"), Some(&m["RH_ROOT_UUID"]));
    assert_eq!(fs(&r, "/dev/sda3")["fstype"], "LVM2_member");
    assert_eq!(fs(&r, "/dev/rhel/root")["version"], "v5");
    // mkfs.xfs's v5 defaults, as xfs_db names them (CRC, FINOBT, SPARSE_INODES, ...).
    let features: Vec<&str> =
        fs(&r, "/dev/rhel/root")["features"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    for f in ["crc", "finobt", "sparse", "ftype"] {
        assert!(features.contains(&f), "{f} not in {features:?}");
    }

    // OS facts.
    let os = os(&r, "/dev/rhel/root");
    assert_eq!(os["distro"], "rhel");
    assert_eq!(os["product_name"], "Red Hat Enterprise Linux 9.3 (Plow)");
    assert_eq!((os["major_version"].as_u64(), os["minor_version"].as_u64()), (Some(9), Some(3)));
    assert_eq!(os["hostname"], "rhel9-db.example.com");
    assert_eq!(os["package_format"], "rpm");
    assert_eq!(os["package_management"], "dnf");
    assert_eq!(os["osinfo"], "rhel9.3");
    assert_eq!(os["firmware"], "uefi");
    assert_eq!(
        os["mountpoints"],
        serde_json::json!([
            ["/", "/dev/rhel/root"],
            ["/boot", "/dev/sda2"],
            ["/boot/efi", "/dev/sda1"],
            ["/data", "/dev/rhel/data"]
        ])
    );
    let fstab: Vec<Option<&str>> = os["fstab"].as_array().unwrap().iter().map(|e| e["device"].as_str()).collect();
    assert_eq!(
        fstab,
        [Some("/dev/rhel/root"), Some("/dev/sda2"), Some("/dev/sda1"), Some("/dev/rhel/swap"), Some("/dev/rhel/data")]
    );
    let k = &os["kernels"][0];
    assert_eq!(os["kernels"].as_array().unwrap().len(), 1);
    assert_eq!(k["version"], m["RH_KVER"]);
    // The kdump image is longer and excluded anyway.
    assert_eq!(k["initrd"], format!("/boot/initramfs-{}.img", m["RH_KVER"]));
    assert_eq!(
        [&k["virtio_blk"], &k["virtio_net"], &k["virtio_pci"], &k["virtio_scsi"]],
        ["module", "module", "builtin", "module"]
    );
    assert_eq!(os["bootloader"], "grub2");
    assert_eq!(os["bootloader_config"], "/boot/efi/EFI/redhat/grub.cfg");
    assert_eq!(os["initramfs_generator"], "dracut");
    assert_eq!(
        os["network"],
        serde_json::json!([
            {"kind": "ifcfg", "file": "/etc/sysconfig/network-scripts/ifcfg-ens192", "interfaces": ["ens192"]},
            {"kind": "networkmanager", "file": "/etc/NetworkManager/system-connections/backend.nmconnection", "interfaces": ["ens224"]}
        ])
    );
    assert_eq!(os["hypervisor_tools"], serde_json::json!(["vmware-tools (tarball)"]));
    assert_eq!(os["selinux"], "enforcing");
    assert_eq!(r["warnings"], serde_json::json!([]));
}

fn rhel_lvs(dir: &std::path::Path) -> Vec<Device> {
    let disk = |p: &str, name: &str| Device::new(name, Arc::new(RawImage::open(&dir.join(p)).unwrap()));
    let (a, b) = (disk("rhel-a.img", "/dev/sda"), disk("rhel-b.img", "/dev/sdb"));
    let t = PartitionTable::read(&a).unwrap().unwrap();
    let p3 = partition_device(&a, &t.partitions[2]).unwrap();
    let pvs: Vec<lvm::Pv> = [p3, b].iter().map(|d| lvm::scan_pv(d).unwrap().unwrap()).collect();
    lvm::assemble(&pvs).1
}

/// Writes a device to a sparse file (only non-zero MiB chunks).
fn extract(dev: &Device, out: &std::path::Path) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(out).unwrap();
    f.set_len(dev.size()).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < dev.size() {
        let n = (dev.size() - off).min(buf.len() as u64) as usize;
        dev.dev.read_at(&mut buf[..n], off).unwrap();
        if buf[..n].iter().any(|&b| b != 0) {
            f.write_all_at(&buf[..n], off).unwrap();
        }
        off += n as u64;
    }
}

/// Ferry's XFS reader on the root LV agrees with xfs_db on the same bytes: a leaf-format
/// directory (/etc/sysconfig, 60+ entries), a block-format one, file contents, symlinks.
#[test]
fn xfs_root_matches_xfs_db() {
    let Some(dir) = fixtures() else { return };
    let lvs = rhel_lvs(&dir);
    let root = lvs.iter().find(|d| d.name == "/dev/rhel/root").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("root.img");
    extract(root, &img);
    let img = img.display().to_string();
    let xfs = XfsFs::open(root).unwrap();
    for d in ["/etc/sysconfig", "/etc", "/", "/usr/lib/modules"] {
        let ls = run("xfs_db", &["-r", "-c", &format!("ls {d}"), &img]);
        let mut want: Vec<String> = ls
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(5).map(str::to_string))
            .filter(|n| n != "." && n != "..")
            .collect();
        let mut got: Vec<String> = xfs.read_dir(d).unwrap().into_iter().map(|(n, _)| n).collect();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{d}");
    }
    assert!(xfs.read_dir("/etc/sysconfig").unwrap().len() > 60);
    assert_eq!(xfs.read_file("/etc/sysconfig/unit-with-a-long-file-name-07.conf", 100).unwrap(), b"# unit 07\n");
    assert_eq!(xfs.read_link("/bin").unwrap(), "usr/bin");
    assert_eq!(xfs.metadata("/bin").unwrap().unwrap().kind, FileKind::Symlink);
    assert_eq!(xfs.metadata("/usr/bin/bash").unwrap().unwrap().size, std::fs::metadata(std::fs::canonicalize("/bin/sh").unwrap()).unwrap().len());
    let m = manifest(&dir);
    let dep = xfs.read_file(&format!("/usr/lib/modules/{}/modules.dep", m["RH_KVER"]), 1 << 20).unwrap();
    assert!(String::from_utf8_lossy(&dep).contains("kernel/drivers/net/virtio_net.ko.xz:"));
    let os = xfs.read_file("/etc/os-release", 4096).unwrap();
    assert!(String::from_utf8_lossy(&os).contains("VERSION_ID=\"9.3\""));
}

/// The striped LV read through Ferry is a clean ext4 (e2fsck) holding the staged file
/// (debugfs), and Ferry's own ext4 reader agrees.
#[test]
fn striped_lv_bytes_are_the_filesystem() {
    let Some(dir) = fixtures() else { return };
    let lvs = rhel_lvs(&dir);
    let data = lvs.iter().find(|d| d.name == "/dev/rhel/data").unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("data.img");
    let mut buf = vec![0u8; data.size() as usize];
    data.dev.read_at(&mut buf, 0).unwrap();
    std::fs::write(&out, &buf).unwrap();
    let st = std::process::Command::new("e2fsck").args(["-fn"]).arg(&out).output().unwrap();
    assert!(st.status.success(), "e2fsck: {}", String::from_utf8_lossy(&st.stdout));
    let cat = run("debugfs", &["-R", "cat /hello.txt", &out.display().to_string()]);
    assert_eq!(cat, "hello from data\n");
    let ext = ExtFs::open(data).unwrap();
    assert_eq!(ext.read_file("/hello.txt", 1024).unwrap(), b"hello from data\n");
}
