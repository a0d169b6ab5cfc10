//! `ferry convert` of a guest whose root is ext4 on an LVM logical volume
//! (`testdata/guests/debian-lvm.sh`: VMware-style Debian 12, /boot on sda1 named `/dev/sda1`
//! in fstab, / on `/dev/mapper/vg0-root`, lvm2 in its initramfs, VMware storage drivers only).
//! Oracles: QEMU TCG boots (the unconverted guest's initramfs never finds its root on
//! virtio-blk; the converted one, started by the emitted QEMU script as written: SeaBIOS →
//! the guest's GRUB i386-pc from its MBR → the converted grub.cfg on /boot, whose `linux` line
//! the kernel logs as its command line, activates the VG, mounts the root LV from virtio-blk and
//! reaches a login prompt with the NIC named as its network configuration says), `e2fsck -fn`
//! on the converted root LV (cut out at the extents lvm2 allocated, recorded by the build
//! script from `lvs`) and /boot, debugfs for the edited files, sha256 of the sources.

mod convert_linux_support;

use convert_linux_support::*;
use std::time::{Duration, Instant};

const NAME: &str = "debian-lvm";
const BOOT_START: u64 = 1 << 20;
const BOOT_LEN: u64 = 256 << 20;

#[test]
fn unconverted_lvm_guest_does_not_reach_userspace_on_virtio_blk() {
    let Some(g) = guest(NAME, &["lvm"]) else { return };
    let t = tempfile::tempdir().unwrap();
    let log = boot_unconverted_on_virtio_blk(&g, "root=/dev/mapper/vg0-root ro console=ttyS0", &t.path().join("serial.log"), Duration::from_secs(400));
    assert!(
        log.contains("ALERT!  /dev/mapper/vg0-root does not exist"),
        "expected the initramfs to give up on the root LV:\n{}",
        tail(&log, 30)
    );
    assert!(!log.contains(" login:"), "a login prompt appeared");
}

#[test]
fn lvm_guest_converts_and_boots_on_virtio() {
    let Some(g) = guest(NAME, &["lvm"]) else { return };
    let vmx = g.join(format!("{NAME}.vmx"));
    let vmdk = g.join(format!("{NAME}.vmdk"));
    let before = [sha256(&vmx), sha256(&vmdk)];
    let t = tempfile::Builder::new().prefix("ferry-lvm-").tempdir_in("/var/tmp").unwrap();
    let out = new_dir(t.path(), "out");
    let started = Instant::now();
    let stdout = convert_local_ok("vmx", &vmx, &out, &[]);
    eprintln!("ferry convert: {:.1?}\n{stdout}", started.elapsed());
    assert!(stdout.contains("Converting debian 12 on /dev/vg0/root (/ /boot)"), "{stdout}");
    assert!(stdout.contains("rebuilt /boot/initrd.img-"), "{stdout}");
    assert_eq!(before, [sha256(&vmx), sha256(&vmdk)], "a source file changed");

    let disk = out.join(format!("{NAME}-sda"));
    assert_qcow2_clean(&disk);
    let raw = t.path().join("converted.raw");
    to_raw(&disk, &raw);
    let (boot, root) = (t.path().join("boot.part"), t.path().join("root.lv"));
    cut(&raw, BOOT_START, Some(BOOT_LEN), &boot);
    cut(&raw, lvm_env(&g, "ROOT_LV_OFFSET"), Some(lvm_env(&g, "ROOT_LV_BYTES")), &root);
    std::fs::remove_file(&raw).unwrap();
    e2fsck_clean(&root, "the converted root LV");
    e2fsck_clean(&boot, "the converted /boot");

    // Renaming left the LV name alone and replaced sda1.
    let fstab = debugfs_cat(&root, "/etc/fstab");
    assert!(fstab.contains("/dev/mapper/vg0-root /"), "{fstab}");
    assert!(!fstab.contains("/dev/sda"), "{fstab}");
    let modules = debugfs_cat(&root, "/etc/initramfs-tools/modules");
    assert!(modules.contains("virtio_blk"), "{modules}");
    let cfg = debugfs_cat(&boot, "/grub/grub.cfg");
    let (kpath, args) = grub_linux(&cfg);
    assert!(args.split_whitespace().any(|a| a == "root=/dev/mapper/vg0-root"), "{args}");
    let kver = kpath.trim_start_matches("/vmlinuz-");
    let listing = debugfs(&boot, "ls -l /");
    let has = |f: String| listing.lines().any(|l| l.trim_end().ends_with(&format!(" {f}")));
    assert!(has(format!("initrd.img-{kver}")) && has(format!("initrd.img-{kver}.pre-ferry")), "{listing}");

    let interfaces = debugfs_cat(&root, "/etc/network/interfaces");
    let iface = configured_nic(&interfaces, &out.join(format!("{NAME}.ferry.json")));

    let log = boot_firmware(&out.join(format!("{NAME}.sh")), &t.path().join("serial.log"), Duration::from_secs(500));
    let line = format!("Command line: BOOT_IMAGE={kpath} {args}");
    assert!(log.contains(&line), "no {line:?} (GRUB did not boot the converted entry):\n{}", tail(&log, 40));
    assert!(log.contains(&format!("{NAME} login:")), "no login prompt:\n{}", tail(&log, 40));
    assert!(log.contains("EXT4-fs (dm-0): mounted filesystem"), "root not mounted from the LV:\n{}", tail(&log, 40));
    assert!(log.contains("EXT4-fs (vda1): mounted filesystem"), "/boot not mounted from vda1:\n{}", tail(&log, 60));
    assert!(log.contains(&format!("{iface}: renamed from eth0")), "the NIC is not named {iface}:\n{}", tail(&log, 60));
}
