//! Issue 14, a RHEL-shaped XFS guest through the binary (`testdata/guests/debian-xfslvm.sh`:
//! Debian 12 with a dracut host-only initramfs holding the VMware storage drivers + xfs + lvm,
//! /boot XFS v4 on sda1 named by UUID, / XFS v5 with RHEL 9's defaults on the LV
//! `/dev/mapper/rhel-root`, `rd.lvm.lv=rhel/root`, ens192 by ifupdown).
//! Oracles: QEMU TCG boots (unconverted, dracut times out waiting for the root LV on
//! virtio-blk and drops to its emergency shell; converted, the generated QEMU script run as
//! written (SeaBIOS → the guest's GRUB i386-pc from its MBR, reading the converted v4 /boot →
//! the converted grub.cfg's entry, whose `linux` line the kernel logs as its command line)
//! reaches a login prompt, the root LV and
//! /boot mounted from virtio-blk, the NIC named as the converted configuration says);
//! `xfs_repair -n` on the converted /boot (v4) and root LV (v5, cut out at the extents lvm2
//! allocated, recorded by the build script from `lvs`); xfs_db for the edited files; sha256
//! of the sources.

mod convert_linux_support;

use convert_linux_support::*;
use std::path::Path;
use std::time::{Duration, Instant};

const NAME: &str = "debian-xfslvm";
const TOOLS: [&str; 5] = ["xfs_repair", "xfs_db", "mkfs.xfs", "lvm", "sfdisk"];
const BOOT_START: u64 = 1 << 20;
const BOOT_LEN: u64 = 320 << 20;
/// The UUID the build script gives /boot (`mkfs.xfs -m uuid=`), as its fstab names it.
const BOOT_UUID: &str = "5c1d3e7a-90b2-4f48-8d6e-2a7b41c9e0f3";

/// xfs_db's `version` line of an XFS image.
fn xfs_version(part: &Path) -> String {
    xfs_db(part, &["version"])
}

#[test]
fn unconverted_xfslvm_guest_does_not_reach_userspace_on_virtio_blk() {
    let Some(g) = xfs_guest(NAME, &TOOLS) else { return };
    let t = tempfile::tempdir().unwrap();
    // The guest's own command line; rd.retry/rd.timeout only shorten dracut's wait (default:
    // 3 minutes and more under TCG) before it gives up.
    let log = boot_unconverted_on_virtio_blk(&g, "root=/dev/mapper/rhel-root ro rd.lvm.lv=rhel/root console=ttyS0 no_timer_check rd.retry=10 rd.timeout=40", &t.path().join("serial.log"), Duration::from_secs(400));
    assert!(!log.contains(" login:"), "the unconverted guest booted on virtio:\n{}", tail(&log, 40));
    assert!(!log.contains("XFS (dm-0)"), "the unconverted guest mounted its root LV:\n{}", tail(&log, 40));
    // Which of systemd's device timeout and dracut's initqueue timeout fires first depends on
    // the machine's speed under TCG: either names the root LV it waited for.
    let gave_up = log.lines().any(|l| l.contains("Timed out waiting for device") && l.contains("/dev/mapper/rhel-root"))
        || (log.contains("dracut-initqueue: timeout, still waiting for following initqueue hooks") && log.contains("[ -e \"/dev/mapper/rhel-root\" ]"));
    assert!(gave_up, "expected dracut to time out waiting for the root LV:\n{}", tail(&log, 40));
    assert!(
        log.contains("Entering emergency mode") || log.contains("Emergency Mode") || log.contains("Could not boot"),
        "expected dracut to give up (emergency shell):\n{}",
        tail(&log, 40)
    );
}

#[test]
fn xfslvm_guest_converts_and_boots_on_virtio() {
    let Some(g) = xfs_guest(NAME, &TOOLS) else { return };
    let vmx = g.join(format!("{NAME}.vmx"));
    let vmdk = g.join(format!("{NAME}.vmdk"));
    let before = [sha256(&vmx), sha256(&vmdk)];
    let t = tempfile::Builder::new().prefix("ferry-xfslvm-").tempdir_in("/var/tmp").unwrap();
    let out = new_dir(t.path(), "out");
    let started = Instant::now();
    let stdout = convert_local_ok("vmx", &vmx, &out, &[]);
    eprintln!("ferry convert -i vmx (XFS v4 /boot, XFS v5 root LV, dracut): {:.1?}\n{stdout}", started.elapsed());
    // The root LV found, and /boot on sda1 found by the UUID fstab names.
    assert!(stdout.contains("Converting debian 12 on /dev/rhel/root (/ /boot)"), "{stdout}");
    assert!(stdout.contains("rebuilt /boot/initrd.img-") && stdout.contains("(dracut)"), "{stdout}");
    assert_eq!(before, [sha256(&vmx), sha256(&vmdk)], "a source file changed");

    let disk = out.join(format!("{NAME}-sda"));
    assert_qcow2_clean(&disk);
    let raw = t.path().join("converted.raw");
    to_raw(&disk, &raw);
    let (boot, root) = (t.path().join("boot.part"), t.path().join("root.lv"));
    cut(&raw, BOOT_START, Some(BOOT_LEN), &boot);
    cut(&raw, lvm_env(&g, "ROOT_LV_OFFSET"), Some(lvm_env(&g, "ROOT_LV_BYTES")), &root);
    std::fs::remove_file(&raw).unwrap();
    xfs_repair_clean(&boot, "the converted v4 /boot");
    xfs_repair_clean(&root, "the converted v5 root LV");
    assert!(xfs_version(&boot).contains("= V4,"), "{}", xfs_version(&boot));
    assert!(xfs_version(&root).contains("= V5,"), "{}", xfs_version(&root));

    // The LV and /boot's UUID stay as they were: neither names a disk that virtio renames.
    let fstab = xfs_cat(&root, "/etc/fstab");
    assert!(fstab.lines().any(|l| l.starts_with("/dev/mapper/rhel-root ") && l.contains(" xfs ")), "{fstab}");
    assert!(fstab.lines().any(|l| l.starts_with(&format!("UUID={BOOT_UUID} /boot "))), "{fstab}");
    let cfg = xfs_cat(&boot, "/grub/grub.cfg");
    let (kpath, args) = grub_linux(&cfg);
    assert!(args.split_whitespace().any(|a| a == "root=/dev/mapper/rhel-root"), "{args}");
    assert!(args.split_whitespace().any(|a| a == "rd.lvm.lv=rhel/root"), "{args}");
    let kver = kpath.trim_start_matches("/vmlinuz-");
    assert!(xfs_read(&boot, &kpath).is_some(), "no {kpath}");
    let new_initrd = xfs_read(&boot, &format!("/initrd.img-{kver}")).expect("the initrd");
    let old_initrd = xfs_read(&boot, &format!("/initrd.img-{kver}.pre-ferry")).expect("the backup");
    assert_ne!(new_initrd, old_initrd);
    // The backup is the guest's own dracut image, moved aside unchanged.
    assert_eq!(old_initrd, std::fs::read(g.join(format!("root/boot/initrd.img-{kver}"))).unwrap());
    let iface = configured_nic(&xfs_cat(&root, "/etc/network/interfaces"), &out.join(format!("{NAME}.ferry.json")));

    let log = boot_firmware(&out.join(format!("{NAME}.sh")), &t.path().join("serial.log"), Duration::from_secs(500));
    let line = format!("Command line: BOOT_IMAGE={kpath} {args}");
    assert!(log.contains(&line), "no {line:?} (GRUB did not boot the converted entry):\n{}", tail(&log, 40));
    assert!(log.contains(&format!("{NAME} login:")), "no login prompt:\n{}", tail(&log, 40));
    assert!(log.contains("XFS (dm-0): Ending clean mount"), "root not mounted from the LV:\n{}", tail(&log, 60));
    assert!(log.contains("XFS (vda1): Ending clean mount"), "/boot not mounted from vda1:\n{}", tail(&log, 60));
    assert!(log.contains(&format!("{iface}: renamed from eth0")), "the NIC is not named {iface}:\n{}", tail(&log, 60));
}
