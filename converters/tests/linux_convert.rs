//! Linux conversion of realistic guest layouts (testdata/linux/*): plan, apply, golden trees,
//! idempotence, and real tools as oracles (findmnt, grub-script-check, python3 yaml).

mod linux_support;

use linux_support::*;

#[test]
fn debian12_vmware() {
    let c = convert_fixture("debian12-vmware");
    assert_eq!(
        findmnt_sources(&c.path("/etc/fstab")),
        [
            "/dev/vda1",
            "UUID=8c1f6b5e-2d3a-4f0b-9e7c-5a4d3c2b1a09",
            "UUID=0d2a5f1e-3b6c-4d7e-9f80-1a2b3c4d5e6f",
            "/dev/sr0"
        ]
    );
    grub_script_check(&c.path("/boot/grub/grub.cfg"));
}

#[test]
fn debian12_xen_pv_pins_nic_name() {
    let c = convert_fixture("debian12-xen");
    assert_eq!(
        findmnt_sources(&c.path("/etc/fstab")),
        ["/dev/vda2", "/dev/vda1", "/dev/vdb1", "/dev/vda3", "proc"]
    );
    grub_script_check(&c.path("/boot/grub/grub.cfg"));
    let link = std::fs::read_to_string(c.path("/etc/systemd/network/10-ferry-enX0.link")).unwrap();
    assert!(link.contains("MACAddress=00:16:3e:5a:0b:71") && link.contains("Name=enX0"));
}

/// `grub-editenv FILE list`: the GRUB tool reads the environment block back.
fn grub_env(path: &std::path::Path) -> Vec<String> {
    match std::process::Command::new("grub-editenv")
        .arg(path)
        .arg("list")
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "grub-editenv: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_owned)
                .collect()
        }
        Err(_) => {
            eprintln!("skipping grub-editenv: grub-common is not installed");
            Vec::new()
        }
    }
}

#[test]
fn rhel9_vmware_bls_networkmanager_selinux() {
    let c = convert_fixture("rhel9-vmware");
    assert_eq!(
        findmnt_sources(&c.path("/etc/fstab")),
        [
            "/dev/vda3",
            "UUID=5e4f3a2b-1c0d-4e9f-8a7b-6c5d4e3f2a1b",
            "/dev/vda2",
            "/dev/disk/by-uuid/9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"
        ]
    );
    grub_script_check(&c.path("/boot/grub2/grub.cfg"));
    let env = grub_env(&c.path("/boot/grub2/grubenv"));
    if !env.is_empty() {
        assert_eq!(
            env,
            [
                "saved_entry=3c1e0f2a9b8d4c7e6f5a4b3c2d1e0f9a-5.14.0-427.13.1.el9_4.x86_64",
                "menu_auto_hide=1",
                "boot_success=0"
            ]
        );
    }
    assert_eq!(
        std::fs::metadata(c.path("/boot/grub2/grubenv"))
            .unwrap()
            .len(),
        1024
    );
    assert!(c.path("/.autorelabel").exists());
    use std::os::unix::fs::PermissionsExt;
    let nm = c.path("/etc/NetworkManager/system-connections/ens192.nmconnection");
    assert_eq!(
        std::fs::metadata(&nm).unwrap().permissions().mode() & 0o777,
        0o600,
        "keyfile keeps mode 0600"
    );
}

#[test]
fn centos7_vmware_grub2_saved_title_ifcfg() {
    let c = convert_fixture("centos7-vmware");
    assert_eq!(
        findmnt_sources(&c.path("/etc/fstab")),
        [
            "/dev/mapper/centos-root",
            "/dev/vda1",
            "/dev/mapper/centos-swap",
            "UUID=4d3c2b1a-0f9e-48d7-a6b5-c4d3e2f1a0b9",
            "/dev/sdc1"
        ]
    );
    assert!(c.plan.warnings.iter().any(|w| w == "/etc/fstab: /dev/sdc1 is not one of the converted disks; left unchanged"), "{:?}", c.plan.warnings);
    grub_script_check(&c.path("/boot/grub2/grub.cfg"));
    let env = grub_env(&c.path("/boot/grub2/grubenv"));
    if !env.is_empty() {
        assert_eq!(
            env,
            ["saved_entry=CentOS Linux (3.10.0-1160.119.1.el7.x86_64) 7 (Core)"]
        );
    }
    assert!(!c
        .path("/etc/sysconfig/network-scripts/ifcfg-ens192")
        .exists());
    let ifcfg =
        std::fs::read_to_string(c.path("/etc/sysconfig/network-scripts/ifcfg-enp0s3")).unwrap();
    assert!(
        ifcfg.contains("DEVICE=enp0s3\n")
            && ifcfg.contains("NAME=enp0s3\n")
            && ifcfg.contains("HWADDR=00:50:56:8c:21:7e\n")
    );
    assert!(c
        .path("/etc/sysconfig/network-scripts/route-enp0s3")
        .exists());
}

#[test]
fn centos6_grub_legacy_modprobe_inittab_udev() {
    let c = convert_fixture("centos6-xen-vmware");
    assert_eq!(
        findmnt_sources(&c.path("/etc/fstab"))[..3],
        ["/dev/vda2", "/dev/vda1", "/dev/vda3"]
    );
    let conf = std::fs::read_to_string(c.path("/boot/grub/grub.conf")).unwrap();
    assert!(
        conf.contains("\ndefault=0\n")
            && conf.contains("root=/dev/vda2")
            && conf.contains("console=ttyS0")
            && !conf.contains("xvc0")
    );
    assert_eq!(
        std::fs::read_to_string(c.path("/etc/modprobe.conf")).unwrap(),
        "alias eth0 virtio_net\nalias scsi_hostadapter virtio_blk\noptions vmxnet3 disable_lro=1\n"
    );
    assert!(std::fs::read_to_string(c.path("/etc/inittab"))
        .unwrap()
        .ends_with("co:2345:respawn:/sbin/agetty ttyS0 9600 vt100-nav\n"));
    assert!(std::fs::read_to_string(c.path("/etc/securetty"))
        .unwrap()
        .ends_with("xvc0\nttyS0\n"));
    for i in 0..=6 {
        let dir = std::fs::read_dir(c.path(&format!("/etc/rc.d/rc{i}.d"))).unwrap();
        assert!(dir
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .all(|n| !n.ends_with("vmware-tools")));
    }
    assert!(c.plan.notes.iter().any(|n| n.contains("tarball")));
}

#[test]
fn xen_pv_only_kernel_is_refused() {
    let root = testdata().join("centos5-xen-only/root");
    let fs = ferry_converters::guestfs::HostDirFs::new(&root);
    let facts = ferry_converters::linux::detect::detect(&fs).unwrap();
    assert!(facts.kernels[0].xen_pv_only);
    let layout = serde_json::from_str(
        &std::fs::read_to_string(testdata().join("centos5-xen-only/layout.json")).unwrap(),
    )
    .unwrap();
    let err = ferry_converters::linux::plan(&facts, &layout, &fs).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no kernel that can boot on KVM: only Xen PV kernels are installed (2.6.18-419.el5xen)"
    );
}

#[test]
fn ubuntu2204_netplan_two_nics() {
    let c = convert_fixture("ubuntu2204-netplan");
    let y = yaml_to_json(&c.path("/etc/netplan/00-installer-config.yaml"));
    let eth = &y["network"]["ethernets"];
    assert_eq!(eth["enp0s3"]["addresses"][0], "10.1.2.3/24", "{y}");
    assert!(eth.get("ens160").is_none());
    assert_eq!(eth["backend"]["set-name"], "enp0s4");
    assert_eq!(eth["backend"]["match"]["macaddress"], "00:50:56:b2:7c:02");
    assert_eq!(findmnt_sources(&c.path("/etc/fstab"))[2], "LABEL=srv");
    assert_eq!(
        c.facts.family,
        ferry_converters::linux::DistroFamily::Debian
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(c.path("/etc/netplan/00-installer-config.yaml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "netplan keeps mode 0600");
    // netplan itself reads the converted YAML: the NICs get their new names.
    if let Some(files) = netplan_generate(&c.root()) {
        let get = |n: &str| {
            files
                .iter()
                .find(|(f, _)| f == n)
                .map(|(_, t)| t.as_str())
                .unwrap_or_else(|| panic!("{n} in {files:?}"))
        };
        assert!(get("10-netplan-enp0s3.network").starts_with("[Match]\nName=enp0s3\n"));
        assert!(get("10-netplan-backend.link")
            .contains("PermanentMACAddress=00:50:56:b2:7c:02\n\n[Link]\nName=enp0s4\n"));
        assert!(files
            .iter()
            .all(|(_, t)| !t.contains("ens160") && !t.contains("ens224")));
    }
}

#[test]
fn debian12_nvme_networkd_uefi() {
    let c = convert_fixture("debian12-nvme-networkd");
    assert_eq!(
        findmnt_sources(&c.path("/etc/fstab")),
        ["/dev/vda2", "/dev/vda1", "/dev/vdb"]
    );
    assert_eq!(c.facts.firmware, ferry_converters::linux::Firmware::Uefi);
    grub_script_check(&c.path("/boot/grub/grub.cfg"));
    let net = std::fs::read_to_string(c.path("/etc/systemd/network/20-wired.network")).unwrap();
    assert!(net.starts_with("[Match]\nName=enp0s3\n"));
    let fallback =
        std::fs::read_to_string(c.path("/etc/systemd/network/80-fallback.network")).unwrap();
    assert!(fallback.contains("Name=en*\n"), "globs are left alone");
}

#[test]
fn rhel8_xen_grubenv_kernelopts() {
    let c = convert_fixture("rhel8-xen");
    assert_eq!(
        findmnt_sources(&c.path("/etc/fstab")),
        ["/dev/vda2", "/dev/vda1", "/dev/vda3"]
    );
    let env = grub_env(&c.path("/boot/grub2/grubenv"));
    if !env.is_empty() {
        assert_eq!(
            env[1],
            "kernelopts=root=/dev/vda2 ro console=ttyS0,115200n8 console=tty0 resume=/dev/vda3 "
        );
    }
    assert_eq!(
        std::fs::metadata(c.path("/boot/grub2/grubenv"))
            .unwrap()
            .len(),
        1024
    );
    assert!(c
        .path("/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service")
        .is_symlink());
    assert!(c
        .path("/etc/sysconfig/network-scripts/ifcfg-enp0s3")
        .exists());
}
