//! Linux conversion behaviours checked on variants of the fixtures: stale plans are refused,
//! names pinned by udev rules on guests without systemd, the GRUB default moved to the chosen
//! kernel, the detector's facts, and the JSON form of a plan.

mod linux_support;

use ferry_converters::guestfs::{GuestFs, HostDirFs};
use ferry_converters::linux::{
    self, BootloaderKind, ChangeKind, DistroFamily, InitramfsGenerator, NetStrategy, TargetLayout,
};
use linux_support::*;

fn fixture_copy(name: &str) -> (tempfile::TempDir, TargetLayout) {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&testdata().join(name).join("root"), dir.path());
    let layout = serde_json::from_str(
        &std::fs::read_to_string(testdata().join(name).join("layout.json")).unwrap(),
    )
    .unwrap();
    (dir, layout)
}

#[test]
fn stale_plan_is_refused() {
    let (dir, layout) = fixture_copy("debian12-vmware");
    let mut fs = HostDirFs::new(dir.path());
    let facts = linux::detect::detect(&fs).unwrap();
    let plan = linux::plan(&facts, &layout, &fs).unwrap();
    // Someone edits fstab after planning: applying must not overwrite what the plan never saw.
    fs.write_file("/etc/fstab", b"/dev/sda1 / ext4 defaults 0 1\n", 0o644)
        .unwrap();
    let err = linux::apply(&plan, &mut fs).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/etc/fstab: changed since the plan was made; plan again"
    );
}

#[test]
fn pin_on_guest_without_systemd_uses_udev_rule() {
    let (dir, mut layout) = fixture_copy("centos6-xen-vmware");
    layout.net = NetStrategy::PinOldName;
    layout.nics[0].old_name = Some("eth1".into());
    layout.nics[0].mac = "52:54:00:12:34:56".into();
    let mut fs = HostDirFs::new(dir.path());
    let facts = linux::detect::detect(&fs).unwrap();
    let plan = linux::plan(&facts, &layout, &fs).unwrap();
    linux::apply(&plan, &mut fs).unwrap();
    let rules = String::from_utf8(
        fs.read_file("/etc/udev/rules.d/70-persistent-net.rules")
            .unwrap(),
    )
    .unwrap();
    assert!(rules.ends_with(
        "# Added by ferry: the name this NIC had before the conversion to KVM.\nSUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"?*\", ATTR{address}==\"52:54:00:12:34:56\", ATTR{type}==\"1\", NAME=\"eth1\"\n"
    ));
    assert!(rules.contains("NAME=\"eth0\""), "the existing rule is kept");
    assert!(
        fs.exists("/etc/sysconfig/network-scripts/ifcfg-eth0")
            .unwrap(),
        "pinning leaves the network configuration alone"
    );
    assert!(
        linux::plan(&linux::detect::detect(&fs).unwrap(), &layout, &fs)
            .unwrap()
            .changes
            .iter()
            .all(|c| matches!(c.kind, ChangeKind::InitramfsRebuild { .. }))
    );
}

#[test]
fn grub_default_moves_to_best_kernel() {
    // Without the newest kernel's files, the best kernel is 6.1.0-26, the menu's third entry.
    let (dir, layout) = fixture_copy("debian12-vmware");
    std::fs::remove_file(dir.path().join("boot/vmlinuz-6.1.0-27-amd64")).unwrap();
    let mut fs = HostDirFs::new(dir.path());
    let facts = linux::detect::detect(&fs).unwrap();
    assert_eq!(facts.kernels.len(), 1);
    let plan = linux::plan(&facts, &layout, &fs).unwrap();
    linux::apply(&plan, &mut fs).unwrap();
    let sel = "gnulinux-advanced-3f2a1c4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b>gnulinux-6.1.0-26-amd64-advanced-3f2a1c4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b";
    let cfg = String::from_utf8(fs.read_file("/boot/grub/grub.cfg").unwrap()).unwrap();
    assert!(cfg.contains(&format!("   set default=\"{sel}\"\n")));
    let dg = String::from_utf8(fs.read_file("/etc/default/grub").unwrap()).unwrap();
    assert!(dg.contains(&format!("\nGRUB_DEFAULT=\"{sel}\"\n")));
    assert!(
        plan.notes
            .iter()
            .any(|n| n.starts_with("GRUB_DEFAULT changed from \"0\"")),
        "{:?}",
        plan.notes
    );
    grub_script_check(&dir.path().join("boot/grub/grub.cfg"));
    // GRUB's own shell parses the default: check it with grub-script-check above, and that
    // planning again does not move it.
    assert!(linux::plan(&facts, &layout, &fs)
        .unwrap()
        .changes
        .iter()
        .all(|c| matches!(c.kind, ChangeKind::InitramfsRebuild { .. })));
}

#[test]
fn detector_facts() {
    let fs = HostDirFs::new(testdata().join("rhel9-vmware/root"));
    let f = linux::detect::detect(&fs).unwrap();
    assert_eq!(
        (f.family, f.distro.as_str(), f.version.as_str()),
        (DistroFamily::Rhel, "rhel", "9.4")
    );
    assert_eq!(f.bootloader.kind, BootloaderKind::Grub2);
    assert_eq!(f.bootloader.config.as_deref(), Some("/boot/grub2/grub.cfg"));
    assert_eq!(
        f.bootloader.bls_dir.as_deref(),
        Some("/boot/loader/entries")
    );
    assert_eq!(f.initramfs, InitramfsGenerator::Dracut);
    assert!(f.selinux);
    let k = f
        .kernels
        .iter()
        .find(|k| k.version == "5.14.0-427.13.1.el9_4.x86_64")
        .unwrap();
    assert_eq!(
        k.initrd.as_deref(),
        Some("/boot/initramfs-5.14.0-427.13.1.el9_4.x86_64.img")
    );
    assert!(
        k.has("virtio_blk")
            && k.is_builtin("virtio_pci")
            && !k.is_builtin("virtio_blk")
            && !k.xen_pv_only
    );

    let fs = HostDirFs::new(testdata().join("centos6-xen-vmware/root"));
    let f = linux::detect::detect(&fs).unwrap();
    assert_eq!(
        (f.family, f.distro.as_str(), f.version.as_str()),
        (DistroFamily::Rhel, "centos", "6.10")
    );
    assert_eq!(f.bootloader.kind, BootloaderKind::GrubLegacy);
    assert_eq!(
        f.bootloader.device_map.as_deref(),
        Some("/boot/grub/device.map")
    );

    let fs = HostDirFs::new(testdata().join("ubuntu2204-netplan/root"));
    let f = linux::detect::detect(&fs).unwrap();
    assert_eq!(
        (f.family, f.initramfs),
        (DistroFamily::Debian, InitramfsGenerator::InitramfsTools)
    );
    assert!(
        f.kernels[0].is_builtin("virtio_blk")
            && !f.kernels[0].is_builtin("virtio_rng")
            && f.kernels[0].has("virtio_rng")
    );
}

#[test]
fn json_form() {
    let (dir, layout) = fixture_copy("debian12-xen");
    let fs = HostDirFs::new(dir.path());
    let plan = linux::plan(&linux::detect::detect(&fs).unwrap(), &layout, &fs).unwrap();
    let v = serde_json::to_value(&plan).unwrap();
    let link = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "create")
        .unwrap();
    assert_eq!(link["path"], "/etc/systemd/network/10-ferry-enX0.link");
    assert_eq!(link["mode"], 420);
    assert!(link["contents"].as_str().unwrap().contains("Name=enX0"));
    let rebuild = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "initramfs_rebuild")
        .unwrap();
    assert_eq!(rebuild["kernel_version"], "6.1.0-27-amd64");
    assert_eq!(rebuild["generator"], "initramfs-tools");
    assert_eq!(rebuild["path"], "/boot/initrd.img-6.1.0-27-amd64");
    let edit = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "edit")
        .unwrap();
    assert!(edit["before"].is_string() && edit["after"].is_string() && edit["reason"].is_string());
}

#[test]
fn suse_xen_initrd_modules_and_uefi_grub_on_esp() {
    let dir = tempfile::tempdir().unwrap();
    let mut fs = HostDirFs::new(dir.path());
    let files: &[(&str, &str)] = &[
        ("/etc/os-release", "NAME=\"SLES\"\nVERSION_ID=\"15.5\"\nID=\"sles\"\nID_LIKE=\"suse\"\n"),
        ("/etc/sysconfig/kernel", "## Path:\tSystem/Kernel\nINITRD_MODULES=\"xenblk xennet ata_piix\"\nDOMU_INITRD_MODULES=\"xennet xenblk\"\nMODULES_LOADED_ON_BOOT=\"\"\n"),
        ("/etc/dracut.conf", "# dracut\n"),
        ("/boot/vmlinuz-5.14.21-150500.55.39-default", ""),
        ("/boot/initrd-5.14.21-150500.55.39-default", ""),
        ("/boot/config-5.14.21-150500.55.39-default", "CONFIG_VIRTIO_BLK=m\nCONFIG_VIRTIO_PCI=m\nCONFIG_VIRTIO_NET=m\n"),
        ("/boot/efi/EFI/sles/grub.cfg", "set default=\"0\"\nmenuentry 'SLES 15-SP5' {\n\tlinux /boot/vmlinuz-5.14.21-150500.55.39-default root=/dev/xvda2 console=hvc0\n}\n"),
        ("/boot/efi/EFI/BOOT/grub.cfg", "configfile (hd0,gpt2)/boot/grub2/grub.cfg\n"),
        ("/etc/fstab", "/dev/xvda2 / btrfs defaults 0 0\n/dev/xvda1 /boot/efi vfat utf8 0 2\n"),
    ];
    for (p, t) in files {
        fs.mkdir_p(&p[..p.rfind('/').unwrap()], 0o755).unwrap();
        fs.write_file(p, t.as_bytes(), 0o644).unwrap();
    }
    let facts = linux::detect::detect(&fs).unwrap();
    assert_eq!(facts.family, DistroFamily::Suse);
    assert_eq!(facts.firmware, linux::Firmware::Uefi);
    assert_eq!(
        facts.bootloader.config.as_deref(),
        Some("/boot/efi/EFI/sles/grub.cfg")
    );
    let layout: TargetLayout =
        serde_json::from_str(r#"{"disks":[{"source":"xvda"}],"nics":[]}"#).unwrap();
    let plan = linux::plan(&facts, &layout, &fs).unwrap();
    linux::apply(&plan, &mut fs).unwrap();
    let sk = String::from_utf8(fs.read_file("/etc/sysconfig/kernel").unwrap()).unwrap();
    assert_eq!(sk, "## Path:\tSystem/Kernel\nINITRD_MODULES=\"ata_piix virtio_pci virtio_blk virtio_net btrfs\"\nDOMU_INITRD_MODULES=\"\"\nMODULES_LOADED_ON_BOOT=\"\"\n");
    // Not a plain word list: left alone, with a warning.
    fs.write_file("/etc/sysconfig/kernel", b"INITRD_MODULES=\"xenblk $EXTRA\" # site\n", 0o644).unwrap();
    let plan = linux::plan(&linux::detect::detect(&fs).unwrap(), &layout, &fs).unwrap();
    assert!(plan.changes.iter().all(|c| c.path != "/etc/sysconfig/kernel"));
    assert!(plan.warnings.iter().any(|w| w == "/etc/sysconfig/kernel: INITRD_MODULES is not a plain list of modules; left unchanged: add the virtio drivers to it by hand"), "{:?}", plan.warnings);
    let cfg = String::from_utf8(fs.read_file("/boot/efi/EFI/sles/grub.cfg").unwrap()).unwrap();
    assert!(cfg.contains("root=/dev/vda2 console=ttyS0"));
    grub_script_check(&dir.path().join("boot/efi/EFI/sles/grub.cfg"));
    let stub = String::from_utf8(fs.read_file("/boot/efi/EFI/BOOT/grub.cfg").unwrap()).unwrap();
    assert_eq!(stub, "configfile (hd0,gpt2)/boot/grub2/grub.cfg\n");
}

#[test]
fn two_nics_in_a_bond_are_renamed() {
    let dir = tempfile::tempdir().unwrap();
    let mut fs = HostDirFs::new(dir.path());
    let nsd = "/etc/sysconfig/network-scripts";
    let files: &[(&str, &str)] = &[
        ("/etc/os-release", "NAME=\"AlmaLinux\"\nID=\"almalinux\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"8.10\"\n"),
        ("/usr/lib/systemd/systemd", ""),
        ("/boot/vmlinuz-4.18.0-553.el8_10.x86_64", ""),
        ("/boot/config-4.18.0-553.el8_10.x86_64", "CONFIG_VIRTIO_BLK=m\nCONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_NET=m\n"),
        ("/etc/sysconfig/network-scripts/ifcfg-bond0", "DEVICE=bond0\nTYPE=Bond\nBONDING_OPTS=\"mode=active-backup primary=ens192\"\nBOOTPROTO=dhcp\nONBOOT=yes\n"),
        ("/etc/sysconfig/network-scripts/ifcfg-ens192", "DEVICE=ens192\nNAME=ens192\nHWADDR=00:50:56:01:02:03\nMASTER=bond0\nSLAVE=yes\nONBOOT=yes\n"),
        ("/etc/sysconfig/network-scripts/ifcfg-ens224", "DEVICE=ens224\nNAME=ens224\nHWADDR=00:50:56:01:02:04\nMASTER=bond0\nSLAVE=yes\nONBOOT=yes\n"),
    ];
    for (p, t) in files {
        fs.mkdir_p(&p[..p.rfind('/').unwrap()], 0o755).unwrap();
        fs.write_file(p, t.as_bytes(), 0o644).unwrap();
    }
    let layout: TargetLayout = serde_json::from_str(
        r#"{"nics":[{"old_name":null,"mac":"00:50:56:01:02:03","new_name":"enp0s3"},{"old_name":null,"mac":"00:50:56:01:02:04","new_name":"enp0s4"}]}"#,
    )
    .unwrap();
    let facts = linux::detect::detect(&fs).unwrap();
    let plan = linux::plan(&facts, &layout, &fs).unwrap();
    linux::apply(&plan, &mut fs).unwrap();
    let read = |p: &str| String::from_utf8(fs.read_file(&format!("{nsd}/{p}")).unwrap()).unwrap();
    assert_eq!(
        fs.read_dir(nsd).unwrap(),
        ["ifcfg-bond0", "ifcfg-enp0s3", "ifcfg-enp0s4"]
    );
    assert_eq!(read("ifcfg-enp0s3"), "DEVICE=enp0s3\nNAME=enp0s3\nHWADDR=00:50:56:01:02:03\nMASTER=bond0\nSLAVE=yes\nONBOOT=yes\n");
    assert_eq!(read("ifcfg-enp0s4"), "DEVICE=enp0s4\nNAME=enp0s4\nHWADDR=00:50:56:01:02:04\nMASTER=bond0\nSLAVE=yes\nONBOOT=yes\n");
    assert!(read("ifcfg-bond0").contains("primary=enp0s3\""));
    let again = linux::plan(&linux::detect::detect(&fs).unwrap(), &layout, &fs).unwrap();
    assert!(again.changes.is_empty(), "{again}");
}

#[test]
fn kernel_names_kept_with_net_ifnames_0() {
    let (dir, mut layout) = fixture_copy("debian12-vmware");
    let root = dir.path();
    let dg = std::fs::read_to_string(root.join("etc/default/grub"))
        .unwrap()
        .replace(
            "GRUB_CMDLINE_LINUX=\"\"",
            "GRUB_CMDLINE_LINUX=\"net.ifnames=0\"",
        );
    std::fs::write(root.join("etc/default/grub"), dg).unwrap();
    let ifaces = std::fs::read_to_string(root.join("etc/network/interfaces"))
        .unwrap()
        .replace("ens192", "eth0");
    std::fs::write(root.join("etc/network/interfaces"), &ifaces).unwrap();
    layout.nics[0].old_name = None;
    let mut fs = HostDirFs::new(root);
    let plan = linux::plan(&linux::detect::detect(&fs).unwrap(), &layout, &fs).unwrap();
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("keeps the kernel's name eth0")),
        "{:?}",
        plan.notes
    );
    linux::apply(&plan, &mut fs).unwrap();
    assert_eq!(
        String::from_utf8(fs.read_file("/etc/network/interfaces").unwrap()).unwrap(),
        ifaces
    );
}

#[test]
fn virtio_model_follows_the_kernels() {
    // CentOS 6 (2.6.32): legacy virtio only, so transitional devices; RHEL 9 (5.14): modern.
    let (dir, layout) = fixture_copy("centos6-xen-vmware");
    let fs = HostDirFs::new(dir.path());
    let facts = linux::detect::detect(&fs).unwrap();
    let plan = linux::plan(&facts, &layout, &fs).unwrap();
    assert!(plan.virtio.transitional, "{:?}", plan.virtio);
    assert_eq!(plan.virtio.interface, linux::VirtioInterface::Legacy);
    assert!(
        plan.virtio.reason.contains("Linux 2.6 predates virtio 1.0"),
        "{}",
        plan.virtio.reason
    );
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["virtio"]["transitional"], true);
    assert_eq!(json["virtio"]["interface"], "legacy");
    assert!(
        plan.to_string()
            .contains("note: virtio devices: transitional (kernel 2.6.32-754."),
        "{plan}"
    );

    let (dir, layout) = fixture_copy("rhel9-vmware");
    let fs = HostDirFs::new(dir.path());
    let facts = linux::detect::detect(&fs).unwrap();
    let plan = linux::plan(&facts, &layout, &fs).unwrap();
    assert!(!plan.virtio.transitional, "{:?}", plan.virtio);
    assert_eq!(plan.virtio.interface, linux::VirtioInterface::Modern);
    assert!(
        plan.virtio.reason.contains("CONFIG_VIRTIO_PCI_LIB"),
        "{}",
        plan.virtio.reason
    );

    // The same modern guest booted with virtio_pci.force_legacy=1 needs transitional devices.
    let (dir, layout) = fixture_copy("rhel9-vmware");
    std::fs::create_dir_all(dir.path().join("etc/modprobe.d")).unwrap();
    std::fs::write(
        dir.path().join("etc/modprobe.d/legacy.conf"),
        "options virtio_pci force_legacy=1\n",
    )
    .unwrap();
    let fs = HostDirFs::new(dir.path());
    let facts = linux::detect::detect(&fs).unwrap();
    let plan = linux::plan(&facts, &layout, &fs).unwrap();
    assert!(plan.virtio.transitional);
    assert!(
        plan.virtio.reason.contains("/etc/modprobe.d/legacy.conf"),
        "{}",
        plan.virtio.reason
    );

    // A damaged virtio_pci module: the conservative, transitional choice, and it says so.
    let (dir, layout) = fixture_copy("debian12-vmware");
    for k in ["6.1.0-26-amd64", "6.1.0-27-amd64"] {
        let p = dir.path().join(format!(
            "lib/modules/{k}/kernel/drivers/virtio/virtio_pci.ko"
        ));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"\x7fELF\x02\x01\x01 truncated").unwrap();
    }
    let fs = HostDirFs::new(dir.path());
    let facts = linux::detect::detect(&fs).unwrap();
    let plan = linux::plan(&facts, &layout, &fs).unwrap();
    assert!(plan.virtio.transitional);
    assert_eq!(plan.virtio.interface, linux::VirtioInterface::Unknown);
    assert!(
        plan.virtio.reason.contains("module metadata unreadable")
            && plan.virtio.reason.contains("conservative"),
        "{}",
        plan.virtio.reason
    );
}

/// SELinux with a file_contexts for its policy: the plan labels what it writes (the policy's
/// label for each path and type, last match winning, plain paths first) instead of planning
/// `/.autorelabel`; a filesystem that cannot set labels (a host directory) falls back to
/// `/.autorelabel` when applying, and says so.
#[test]
fn fctx_selinux_labels_planned_from_file_contexts() {
    let (dir, layout) = fixture_copy("rhel9-vmware");
    let files = dir.path().join("etc/selinux/targeted/contexts/files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(
        files.join("file_contexts"),
        "/.*\tsystem_u:object_r:default_t:s0\n/etc/.*\tsystem_u:object_r:etc_t:s0\n/etc/systemd/system(/.*)?\tsystem_u:object_r:systemd_unit_t:s0\n/etc/dracut\\.conf\\.d(/.*)?\t--\tsystem_u:object_r:dracut_conf_t:s0\n/\\.autorelabel\t--\t<<none>>\n",
    )
    .unwrap();
    let mut fs = HostDirFs::new(dir.path());
    let facts = linux::detect::detect(&fs).unwrap();
    let plan = linux::plan(&facts, &layout, &fs).unwrap();
    let labels: Vec<(&str, &str)> = plan
        .changes
        .iter()
        .filter_map(|c| match &c.kind {
            ChangeKind::Label { context } => Some((c.path.as_str(), context.as_str())),
            _ => None,
        })
        .collect();
    assert!(labels.contains(&("/etc/dracut.conf.d/ferry-virtio.conf", "system_u:object_r:dracut_conf_t:s0")), "{plan}");
    assert!(labels.contains(&("/etc/systemd/system/vmtoolsd.service", "system_u:object_r:systemd_unit_t:s0")), "{plan}");
    assert!(!plan.paths().contains(&"/.autorelabel".to_string()), "{plan}");
    let text = plan.to_string();
    assert!(text.contains(&format!("note: SELinux: labelled from the guest's file_contexts ({} files)", labels.len())), "{text}");
    assert!(text.contains("label   /etc/dracut.conf.d/ferry-virtio.conf system_u:object_r:dracut_conf_t:s0: SELinux"), "{text}");
    // A host directory keeps no labels: the apply falls back to the relabel flag.
    let report = linux::apply(&plan, &mut fs).unwrap();
    assert!(dir.path().join(".autorelabel").exists());
    assert!(report.warnings.iter().any(|w| w.contains("not labelled") && w.contains("/.autorelabel created")), "{:?}", report.warnings);
    // A path the policy gives no label: /.autorelabel planned, the note says why.
    std::fs::remove_file(dir.path().join(".autorelabel")).unwrap();
    let (dir2, layout2) = fixture_copy("rhel9-vmware");
    let files2 = dir2.path().join("etc/selinux/targeted/contexts/files");
    std::fs::create_dir_all(&files2).unwrap();
    std::fs::write(files2.join("file_contexts"), "/etc/.*\tsystem_u:object_r:etc_t:s0\n/etc/systemd(/.*)?\t<<none>>\n").unwrap();
    let fs2 = HostDirFs::new(dir2.path());
    let plan = linux::plan(&linux::detect::detect(&fs2).unwrap(), &layout2, &fs2).unwrap();
    let text = plan.to_string();
    assert!(text.contains("create  /.autorelabel (mode 644)"), "{text}");
    assert!(text.contains("note: SELinux: not labelled from the guest's file_contexts (the policy gives /etc/systemd/system/"), "{text}");
    assert!(!text.contains("label   "), "{text}");
}

/// A SLES 12 clone: udev's generator pinned the template VM's vmxnet3 NIC as `eth0`, and wicked
/// configures `eth0`. On KVM that rule would keep `eth0` from the NIC (the generator would call
/// it `eth1`): it is removed, with its comment. SLES keeps kernel names, so wicked is unchanged.
#[test]
fn suse_stale_persistent_net_rule_frees_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut fs = HostDirFs::new(dir.path());
    let rules = "# This file was automatically generated by the /usr/lib/udev/write_net_rules\n# program, run by the persistent-net-generator.rules rules file.\n#\n# You can modify it, as long as you keep each rule on a single\n# line, and change only the value of the NAME= key.\n\n# PCI device 0x15ad:0x07b0 (vmxnet3)\nSUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"?*\", ATTR{address}==\"00:50:56:a4:11:02\", ATTR{dev_id}==\"0x0\", ATTR{type}==\"1\", KERNEL==\"eth*\", NAME=\"eth0\"\n";
    let files: &[(&str, &str)] = &[
        ("/etc/os-release", "NAME=\"SLES\"\nVERSION=\"12-SP5\"\nVERSION_ID=\"12.5\"\nID=\"sles\"\n"),
        ("/usr/lib/systemd/systemd", ""),
        ("/boot/vmlinuz-4.12.14-122.186-default", ""),
        ("/boot/config-4.12.14-122.186-default", "CONFIG_VIRTIO_BLK=m\nCONFIG_VIRTIO_PCI=m\nCONFIG_VIRTIO_NET=m\n"),
        ("/etc/udev/rules.d/70-persistent-net.rules", rules),
        ("/etc/sysconfig/network/ifcfg-eth0", "BOOTPROTO='dhcp'\nSTARTMODE='auto'\n"),
    ];
    for (p, t) in files {
        fs.mkdir_p(&p[..p.rfind('/').unwrap()], 0o755).unwrap();
        fs.write_file(p, t.as_bytes(), 0o644).unwrap();
    }
    let layout: TargetLayout = serde_json::from_str(
        r#"{"nics":[{"old_name":null,"mac":"00:50:56:a4:7e:31","new_name":"enp0s3"}]}"#,
    )
    .unwrap();
    let facts = linux::detect::detect(&fs).unwrap();
    let plan = linux::plan(&facts, &layout, &fs).unwrap();
    linux::apply(&plan, &mut fs).unwrap();
    let after = String::from_utf8(fs.read_file("/etc/udev/rules.d/70-persistent-net.rules").unwrap()).unwrap();
    assert_eq!(after, rules[..rules.find("\n\n# PCI").unwrap() + 1]);
    assert!(plan.notes.iter().any(|n| n.contains("rules for 00:50:56:a4:11:02 removed")), "{:?}", plan.notes);
    assert!(plan.notes.iter().any(|n| n.contains("keeps the kernel's name eth0")), "{:?}", plan.notes);
    assert!(fs.exists("/etc/sysconfig/network/ifcfg-eth0").unwrap());
}

/// SLES installers may mount by disk id (`/dev/disk/by-id/scsi-<VMware disk serial>-part2`):
/// virtio-blk disks have no such id, the conversion cannot know the new one, so it says so.
#[test]
fn suse_mount_by_id_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut fs = HostDirFs::new(dir.path());
    let id = "/dev/disk/by-id/scsi-36000c2958e1d2f3a4b5c6d7e8f901234-part2";
    let fstab = format!("{id}  /  btrfs  defaults  0  0\n/dev/disk/by-id/dm-uuid-LVM-Qk3vJ8xN2mT5rW9y  /srv  xfs  defaults  0  0\n/dev/sda1  swap  swap  defaults  0  0\n");
    let files: &[(&str, &str)] = &[
        ("/etc/os-release", "NAME=\"SLES\"\nVERSION_ID=\"12.5\"\nID=\"sles\"\n"),
        ("/boot/vmlinuz-4.12.14-122.186-default", ""),
        ("/boot/config-4.12.14-122.186-default", "CONFIG_VIRTIO_BLK=m\nCONFIG_VIRTIO_PCI=m\n"),
        ("/etc/fstab", &fstab),
    ];
    for (p, t) in files {
        fs.mkdir_p(&p[..p.rfind('/').unwrap()], 0o755).unwrap();
        fs.write_file(p, t.as_bytes(), 0o644).unwrap();
    }
    let layout: TargetLayout = serde_json::from_str(r#"{"disks":[{"source":"sda"}]}"#).unwrap();
    let facts = linux::detect::detect(&fs).unwrap();
    let plan = linux::plan(&facts, &layout, &fs).unwrap();
    let warned: Vec<&String> = plan.warnings.iter().filter(|w| w.contains("hardware id")).collect();
    assert_eq!(warned.len(), 1, "{:?}", plan.warnings);
    assert!(warned[0].starts_with(&format!("/etc/fstab: {id} names a disk")));
    linux::apply(&plan, &mut fs).unwrap();
    assert_eq!(String::from_utf8(fs.read_file("/etc/fstab").unwrap()).unwrap(), fstab.replace("/dev/sda1", "/dev/vda1"));
}

/// openSUSE Leap booted with `net.ifnames=1` uses predictable names: its NetworkManager keyfile
/// and wicked files follow the NIC to its KVM name (`interface-name=`, `ifcfg-`/`ifroute-` files).
#[test]
fn opensuse_predictable_names_rename_nm_and_wicked() {
    let dir = tempfile::tempdir().unwrap();
    let mut fs = HostDirFs::new(dir.path());
    let nm = "/etc/NetworkManager/system-connections/Wired connection 1.nmconnection";
    let files: &[(&str, &str)] = &[
        ("/etc/os-release", "NAME=\"openSUSE Leap\"\nVERSION=\"15.5\"\nID=\"opensuse-leap\"\nID_LIKE=\"suse opensuse\"\nVERSION_ID=\"15.5\"\n"),
        ("/usr/lib/systemd/systemd", ""),
        ("/boot/vmlinuz-5.14.21-150500.55.19-default", ""),
        ("/boot/config-5.14.21-150500.55.19-default", "CONFIG_VIRTIO_BLK=m\nCONFIG_VIRTIO_PCI=m\nCONFIG_VIRTIO_NET=m\n"),
        ("/etc/default/grub", "GRUB_CMDLINE_LINUX_DEFAULT=\"splash=silent net.ifnames=1 quiet\"\n"),
        (nm, "[connection]\nid=Wired connection 1\nuuid=5f0e6b2c-3a41-4d8e-9b7f-1c2d3e4f5a6b\ntype=ethernet\ninterface-name=ens192\n\n[ethernet]\nmac-address=00:50:56:8E:21:0A\n\n[ipv4]\nmethod=auto\n"),
        ("/etc/sysconfig/network/ifcfg-ens192", "BOOTPROTO='dhcp'\nSTARTMODE='auto'\n"),
        ("/etc/sysconfig/network/ifroute-ens192", "10.9.0.0/16 192.168.1.254 - ens192\n"),
    ];
    for (p, t) in files {
        fs.mkdir_p(&p[..p.rfind('/').unwrap()], 0o755).unwrap();
        fs.write_file(p, t.as_bytes(), 0o644).unwrap();
    }
    let layout: TargetLayout = serde_json::from_str(
        r#"{"nics":[{"old_name":null,"mac":"00:50:56:8e:21:0a","new_name":"enp0s3"}]}"#,
    )
    .unwrap();
    let facts = linux::detect::detect(&fs).unwrap();
    assert_eq!(facts.family, DistroFamily::Suse);
    let plan = linux::plan(&facts, &layout, &fs).unwrap();
    linux::apply(&plan, &mut fs).unwrap();
    let read = |p: &str| String::from_utf8(fs.read_file(p).unwrap()).unwrap();
    assert!(read(nm).contains("\ninterface-name=enp0s3\n") && read(nm).contains("mac-address=00:50:56:8E:21:0A\n"));
    assert_eq!(fs.read_dir("/etc/sysconfig/network").unwrap(), ["ifcfg-enp0s3", "ifroute-enp0s3"]);
    assert_eq!(read("/etc/sysconfig/network/ifroute-enp0s3"), "10.9.0.0/16 192.168.1.254 - enp0s3\n");
}

/// SLES 11 (no os-release: `/etc/SuSE-release`) starts services from `/etc/init.d/rcN.d`: the links
/// of VMware's OSP packages (`vmware-tools-services`) there are removed; the scripts stay.
#[test]
fn sles11_sysv_vmware_tools_links_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut fs = HostDirFs::new(dir.path());
    let files: &[(&str, &str)] = &[
        ("/etc/SuSE-release", "SUSE Linux Enterprise Server 11 (x86_64)\nVERSION = 11\nPATCHLEVEL = 4\n"),
        ("/boot/vmlinuz-3.0.101-108.13-default", ""),
        ("/boot/config-3.0.101-108.13-default", "CONFIG_VIRTIO_BLK=m\nCONFIG_VIRTIO_PCI=m\n"),
        ("/etc/init.d/vmware-tools-services", "#!/bin/sh\n"),
        ("/etc/init.d/network", "#!/bin/sh\n"),
    ];
    for (p, t) in files {
        fs.mkdir_p(&p[..p.rfind('/').unwrap()], 0o755).unwrap();
        fs.write_file(p, t.as_bytes(), 0o755).unwrap();
    }
    for (link, target) in [
        ("/etc/init.d/rc3.d/S03vmware-tools-services", "../vmware-tools-services"),
        ("/etc/init.d/rc5.d/S03vmware-tools-services", "../vmware-tools-services"),
        ("/etc/init.d/rc3.d/K01vmware-tools-services", "../vmware-tools-services"),
        ("/etc/init.d/rc3.d/S05network", "../network"),
    ] {
        fs.mkdir_p(&link[..link.rfind('/').unwrap()], 0o755).unwrap();
        fs.symlink(target, link).unwrap();
    }
    let facts = linux::detect::detect(&fs).unwrap();
    assert_eq!((facts.family, facts.distro.as_str(), facts.version.as_str()), (DistroFamily::Suse, "sles", "11.4"), "from /etc/SuSE-release");
    let plan = linux::plan(&facts, &TargetLayout::default(), &fs).unwrap();
    linux::apply(&plan, &mut fs).unwrap();
    assert_eq!(fs.read_dir("/etc/init.d/rc3.d").unwrap(), ["S05network"]);
    assert!(fs.read_dir("/etc/init.d/rc5.d").unwrap().is_empty());
    assert!(fs.exists("/etc/init.d/vmware-tools-services").unwrap());
    assert!(plan.notes.iter().any(|n| n == "VMware Tools disabled: removed 3 SysV rc links"), "{:?}", plan.notes);
}
