//! Issue 5's boot proof for the VMware-style Debian guest (initramfs-tools, no virtio in its
//! initrd): booted under QEMU TCG on virtio-blk, the unconverted initrd never finds its root;
//! the initrd with virtio injected by `initramfs::add_modules` (modules read from the guest's
//! own tree) mounts the root and reaches a login prompt.

mod guest_support;

use std::time::Duration;

use ferry_converters::initramfs::{add_modules, Flavor, Initramfs, Limits, VIRTIO_MODULES};
use ferry_converters::kmod::HostDir;
use guest_support::*;

const APPEND: &str = "root=/dev/vda1 ro console=ttyS0";

#[test]
fn unconverted_vmware_guest_does_not_reach_userspace_on_virtio_blk() {
    let Some(g) = guest("debian-vmware") else { return };
    let work = tempfile::tempdir().unwrap();
    let (kernel, initrd) = extract_boot(&g, work.path());
    let mut stops = ROOT_NOT_FOUND.to_vec();
    stops.push(LOGIN);
    let b = boot(&kernel, &initrd, &g.disk(), APPEND, &stops, Duration::from_secs(240), work.path());
    assert!(b.hit.is_some() && b.hit.as_deref() != Some(LOGIN), "expected the initramfs to give up:\n{}", tail(&b.log, 30));
    assert!(b.log.contains("/dev/vda1 does not exist"), "{}", tail(&b.log, 30));
    assert!(!b.log.contains("Run /sbin/init") && !b.log.contains("systemd["), "userspace started");
}

#[test]
fn vmware_guest_with_virtio_injected_boots_to_login() {
    let Some(g) = guest("debian-vmware") else { return };
    let work = tempfile::tempdir().unwrap();
    let (kernel, initrd) = extract_boot(&g, work.path());
    let image = Initramfs::parse("initrd.img", std::fs::read(&initrd).unwrap(), Limits::default()).unwrap();
    let (new, report) = add_modules(&HostDir::new(g.root()), &g.kver, &image, &VIRTIO_MODULES).unwrap();
    eprintln!("{report:?}");
    assert_eq!(report.flavor, Flavor::InitramfsTools);
    for m in ["virtio_blk", "virtio_pci", "virtio_net", "virtio_scsi"] {
        assert!(report.added.iter().any(|a| a == m), "{m} not added: {report:?}");
    }
    let new_path = work.path().join("initrd.ferry");
    std::fs::write(&new_path, &new).unwrap();
    let mut stops = ROOT_NOT_FOUND.to_vec();
    stops.push(LOGIN);
    let b = boot(&kernel, &new_path, &g.disk(), APPEND, &stops, Duration::from_secs(400), work.path());
    assert_eq!(b.hit.as_deref(), Some(LOGIN), "no login prompt:\n{}", tail(&b.log, 40));
    assert!(b.log.contains("EXT4-fs (vda1): mounted filesystem"), "root not mounted from vda1");
    assert!(b.log.contains("debian-vmware login:"));
}
