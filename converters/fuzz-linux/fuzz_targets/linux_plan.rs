//! Fuzzes the Linux conversion planner: the input becomes the contents of the configuration
//! files of a small in-memory Debian/RHEL-like guest; detect, plan, apply and plan again must
//! never panic, and the second plan must find nothing left to change (idempotence).
#![no_main]

use ferry_converters::guestfs::{GuestFs, MemFs};
use ferry_converters::linux::{self, ChangeKind, DiskTarget, NetStrategy, NicTarget, TargetLayout};
use libfuzzer_sys::fuzz_target;

/// Files the input may fill, in order; the input is split on 0xFE bytes.
const FILES: &[&str] = &[
    "/etc/fstab",
    "/boot/grub/grub.cfg",
    "/etc/default/grub",
    "/boot/grub/grubenv",
    "/etc/network/interfaces",
    "/etc/netplan/01.yaml",
    "/etc/sysconfig/network-scripts/ifcfg-ens192",
    "/etc/NetworkManager/system-connections/a.nmconnection",
    "/etc/systemd/network/1.network",
    "/etc/udev/rules.d/70-persistent-net.rules",
    "/etc/modprobe.conf",
    "/etc/X11/xorg.conf",
    "/etc/inittab",
    "/etc/securetty",
    "/etc/crypttab",
    "/boot/grub/grub.conf",
    "/etc/dracut.conf.d/10-x.conf",
    "/etc/initramfs-tools/modules",
    "/boot/config-6.1.0-9-amd64",
    "/lib/modules/6.1.0-9-amd64/modules.dep",
    "/etc/os-release",
    "/etc/selinux/config",
];

fuzz_target!(|data: &[u8]| {
    let mut fs = MemFs::new();
    let base: &[(&str, &[u8])] = &[
        ("/etc/os-release", b"ID=debian\nVERSION_ID=12\n"),
        ("/etc/initramfs-tools/initramfs.conf", b"MODULES=list\n"),
        ("/boot/vmlinuz-6.1.0-9-amd64", b""),
        ("/boot/initrd.img-6.1.0-9-amd64", b""),
        ("/boot/config-6.1.0-9-amd64", b"CONFIG_VIRTIO_BLK=m\nCONFIG_VIRTIO_PCI=m\n"),
        ("/lib/systemd/systemd", b""),
        ("/lib/systemd/system/open-vm-tools.service", b"[Unit]\n"),
    ];
    for (p, t) in base {
        if fs.mkdir_p(&p[..p.rfind('/').unwrap_or(0).max(1)], 0o755).is_err() {
            return;
        }
        if fs.write_file(p, t, 0o644).is_err() {
            return;
        }
    }
    for (i, chunk) in data.split(|b| *b == 0xfe).enumerate() {
        let Some(p) = FILES.get(i) else { break };
        if fs.mkdir_p(&p[..p.rfind('/').unwrap_or(0).max(1)], 0o755).is_err() || fs.write_file(p, chunk, 0o644).is_err() {
            return;
        }
    }
    let layout = TargetLayout {
        disks: vec![DiskTarget { source: "sda".into() }, DiskTarget { source: "xvdb".into() }, DiskTarget { source: "nvme0n1".into() }],
        fs_ids: [("sda1".to_owned(), "UUID=1234".to_owned())].into_iter().collect(),
        nics: vec![NicTarget { old_name: None, mac: "00:50:56:9a:1b:2c".into(), new_name: "enp0s3".into() }],
        net: if data.first().is_some_and(|b| b & 1 == 1) { NetStrategy::PinOldName } else { NetStrategy::Rename },
    };
    let Ok(facts) = linux::detect::detect(&fs) else { return };
    let Ok(plan) = linux::plan(&facts, &layout, &fs) else { return };
    let _ = plan.to_string();
    if linux::apply(&plan, &mut fs).is_err() {
        return;
    }
    let Ok(facts) = linux::detect::detect(&fs) else { panic!("detect fails after apply") };
    let again = linux::plan(&facts, &layout, &fs).expect("planning again after apply");
    let left: Vec<_> = again.changes.iter().filter(|c| !matches!(c.kind, ChangeKind::InitramfsRebuild { .. })).collect();
    assert!(left.is_empty(), "not idempotent: {left:#?}");
});
