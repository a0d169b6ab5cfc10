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

/// Every GRUB script of a SUSE btrfs root: the menu and snapper's snapshot menus.
fn suse_grub_scripts(c: &Converted) -> Vec<std::path::PathBuf> {
    let mut v = vec![c.path("/boot/grub2/grub.cfg"), c.path("/.snapshots/grub-snapshot.cfg")];
    for e in std::fs::read_dir(c.path("/.snapshots")).unwrap() {
        let p = e.unwrap().path().join("grub-snapshot.cfg");
        if p.exists() {
            v.push(p);
        }
    }
    v
}

/// SLES 15 SP5 from VMware: btrfs root in snapper's layout, everything by UUID, wicked `eth0`.
#[test]
fn sles15_vmware_btrfs_snapper_wicked() {
    let name = "sles15-vmware";
    let c = convert_fixture(name);
    let src = |p: &str| testdata().join(name).join("root").join(p.trim_start_matches('/'));
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
    // fstab: the data disk by UUID, the btrfs subvolume lines as they were (options included).
    let sources = findmnt_sources(&c.path("/etc/fstab"));
    assert_eq!(sources.last().unwrap(), "UUID=3e6a9c1b-7d2f-4b58-a0c4-91e2f3d4b5a6");
    assert_eq!(sources[..12], findmnt_sources(&src("/etc/fstab"))[..12]);
    assert_eq!(findmnt_options(&c.path("/etc/fstab")), findmnt_options(&src("/etc/fstab")));
    assert!(findmnt_options(&c.path("/etc/fstab")).contains(&("/.snapshots".into(), "subvol=/@/.snapshots".into())));
    // GRUB: nothing names a device, so the menu and the snapshot menus are unchanged and valid.
    for f in suse_grub_scripts(&c) {
        grub_script_check(&f);
        let rel = f.strip_prefix(c.root()).unwrap();
        assert_eq!(read(&f), read(&testdata().join(name).join("root").join(rel)), "{rel:?}");
    }
    assert!(read(&c.path("/boot/grub2/grub.cfg")).contains("insmod btrfs\n"));
    assert_eq!(sourced_var(&c.path("/etc/sysconfig/bootloader"), "LOADER_TYPE"), "grub2");
    // initrd: SUSE's INITRD_MODULES and dracut's configuration, read as their tools read them.
    let sk = c.path("/etc/sysconfig/kernel");
    assert_eq!(sourced_var(&sk, "INITRD_MODULES"), "virtio_pci virtio_blk virtio_scsi virtio_net btrfs");
    assert_eq!(sourced_var(&sk, "DOMU_INITRD_MODULES"), "");
    let conf = c.path("/etc/dracut.conf.d/ferry-virtio.conf");
    assert_eq!(sourced_var(&conf, "filesystems").trim(), "btrfs");
    assert!(sourced_var(&conf, "add_drivers").split_whitespace().any(|m| m == "virtio_blk"));
    assert!(c.plan.changes.iter().any(|ch| ch.path == "/boot/initrd-5.14.21-150500.55.19-default"
        && matches!(&ch.kind, ferry_converters::linux::ChangeKind::InitramfsRebuild { modules, .. } if modules.iter().any(|m| m == "virtio_blk"))));
    // open-vm-tools masked.
    assert_eq!(std::fs::read_link(c.path("/etc/systemd/system/vmtoolsd.service")).unwrap(), std::path::Path::new("/dev/null"));
    // SLES names NICs ethN (no net.ifnames=1): the virtio NIC is eth0 too, wicked is unchanged.
    assert_eq!(read(&c.path("/etc/sysconfig/network/ifcfg-eth0")), read(&src("/etc/sysconfig/network/ifcfg-eth0")));
    assert!(c.plan.notes.iter().any(|n| n.contains("keeps the kernel's name eth0")), "{:?}", c.plan.notes);
    assert!(c.plan.warnings.iter().any(|w| w.starts_with("snapper snapshots 2, 3 are read-only")), "{:?}", c.plan.warnings);
}

/// SLES 12 SP5 Xen PV: `xvda` names with btrfs `subvol=` options, `hvc0`, Xen drivers in
/// INITRD_MODULES, perl-Bootloader's `*_APPEND`, udev rules with `DRIVERS=="vif"`, wicked routes.
#[test]
fn sles12_xen_pv_btrfs_udev_wicked() {
    let name = "sles12-xen";
    let c = convert_fixture(name);
    let src = |p: &str| testdata().join(name).join("root").join(p.trim_start_matches('/'));
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
    let sources = findmnt_sources(&c.path("/etc/fstab"));
    assert_eq!(sources[0], "/dev/vda1");
    assert!(sources[1..13].iter().all(|s| s == "/dev/vda2"), "{sources:?}");
    assert_eq!(sources[13], "/dev/vdb1");
    assert_eq!(findmnt_options(&c.path("/etc/fstab")), findmnt_options(&src("/etc/fstab")), "subvolume options kept");
    for f in suse_grub_scripts(&c) {
        grub_script_check(&f);
    }
    let cfg = read(&c.path("/boot/grub2/grub.cfg"));
    let before = read(&src("/boot/grub2/grub.cfg"));
    assert!(cfg.contains("root=/dev/vda2 ${extra_cmdline} resume=/dev/vda1 splash=silent quiet showopts console=ttyS0\n"));
    assert!(!cfg.contains("xvda") && !cfg.contains("hvc0"));
    assert_eq!(cfg.matches("insmod btrfs").count(), before.matches("insmod btrfs").count());
    assert!(cfg.contains("btrfs-mount-subvol ($root) /.snapshots @/.snapshots\nif [ -f \"/.snapshots/grub-snapshot.cfg\" ]; then\n  source \"/.snapshots/grub-snapshot.cfg\"\n"));
    for f in ["/.snapshots/grub-snapshot.cfg", "/.snapshots/5/grub-snapshot.cfg", "/.snapshots/5/snapshot/boot/grub2/grub.cfg"] {
        assert_eq!(read(&c.path(f)), read(&src(f)), "{f}: snapshots keep their subvolume paths and contents");
    }
    let grub = c.path("/etc/default/grub");
    assert_eq!(sourced_var(&grub, "GRUB_CMDLINE_LINUX_DEFAULT"), "resume=/dev/vda1 splash=silent quiet showopts console=ttyS0");
    let bl = c.path("/etc/sysconfig/bootloader");
    assert_eq!(sourced_var(&bl, "LOADER_TYPE"), "grub2");
    assert_eq!(sourced_var(&bl, "DEFAULT_APPEND"), "resume=/dev/vda1 splash=silent quiet showopts console=ttyS0");
    assert!(sourced_var(&bl, "FAILSAFE_APPEND").ends_with(" console=ttyS0"));
    let sk = c.path("/etc/sysconfig/kernel");
    assert_eq!(sourced_var(&sk, "INITRD_MODULES"), "virtio_pci virtio_blk virtio_scsi virtio_net btrfs");
    assert_eq!(sourced_var(&sk, "DOMU_INITRD_MODULES"), "");
    // udev: the kept NIC's rule matches any driver and gives the new name; the stale one (a NIC
    // removed long ago, its name claimed by no NIC) never matches and is left as it was.
    let rules: Vec<String> = read(&c.path("/etc/udev/rules.d/70-persistent-net.rules"))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    assert_eq!(rules, [
        "SUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"vif\", ATTR{address}==\"00:16:3e:4f:1a:99\", ATTR{dev_id}==\"0x0\", ATTR{type}==\"1\", KERNEL==\"eth*\", NAME=\"eth1\"",
        "SUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"?*\", ATTR{address}==\"00:16:3e:4f:1a:22\", ATTR{dev_id}==\"0x0\", ATTR{type}==\"1\", KERNEL==\"eth*\", NAME=\"enp0s3\"",
    ]);
    // wicked: files renamed, routes name the new interface.
    let net = "/etc/sysconfig/network";
    assert!(!c.path(&format!("{net}/ifcfg-eth0")).exists() && !c.path(&format!("{net}/ifroute-eth0")).exists());
    assert_eq!(read(&c.path(&format!("{net}/ifcfg-enp0s3"))), read(&src(&format!("{net}/ifcfg-eth0"))));
    assert_eq!(read(&c.path(&format!("{net}/ifroute-enp0s3"))), read(&src(&format!("{net}/ifroute-eth0"))).replace(" eth0\n", " enp0s3\n"));
    assert_eq!(read(&c.path(&format!("{net}/routes"))), "172.16.0.0/12 192.168.122.253 - enp0s3\n");
    // Console.
    assert!(c.path("/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service").is_symlink());
    assert!(read(&c.path("/etc/securetty")).ends_with("hvc0\nttyS0\n"));
    assert!(c.plan.warnings.iter().any(|w| w.starts_with("snapper snapshots 5 are read-only")), "{:?}", c.plan.warnings);
}
