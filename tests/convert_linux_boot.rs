//! Issue 5's proof, end to end through the binary: `ferry convert` of the real Debian 12
//! test guests (`testdata/guests/`, cached in `$FERRY_CACHE`) → the converted root passes
//! `e2fsck -fn`; the converted qcow2, booted under QEMU TCG by the generated QEMU script run
//! as written (SeaBIOS → the guest's own GRUB i386-pc in its MBR → the converted grub.cfg's
//! first entry: the kernel logs exactly that entry's `linux` line as its command line), or (the
//! OVA, the same guest as the VMX: CI time) with the kernel + initrd taken from ITS OWN `/boot`
//! (debugfs) and the arguments of ITS `grub.cfg` added as `-kernel/-initrd/-append`, reaches a
//! login prompt, mounts its root from virtio-blk (the OVA: sda1 behind virtio-scsi, with
//! `--block-driver virtio-scsi`), and the NIC the converted network
//! configuration names exists under that name (the kernel's rename message for the profile's
//! slot); the source files are byte-identical afterwards. (That the unconverted guest does not
//! boot on virtio-blk is shown by `converters/tests/guest_boot_*.rs` on the same images.)
//! Guests: the VMware one from its VMX and from its OVA, the Xen PV one from its xl config,
//! the dracut variant from its VMX.

mod convert_linux_support;

use convert_linux_support::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Converts `input` (`-i mode`) and proves the result boots with its root on vda1 (through
/// firmware and the guest's GRUB when `firmware`, else with its kernel given to QEMU);
/// `sources` are hashed.
fn convert_and_boot(mode: &str, input: &Path, name: &str, sources: &[PathBuf], firmware: bool) {
    convert_and_boot_on(mode, input, name, sources, &[], "vda1", firmware);
}

/// [`convert_and_boot`] with `extra` convert options and the root on `root_dev`.
fn convert_and_boot_on(mode: &str, input: &Path, name: &str, sources: &[PathBuf], extra: &[&str], root_dev: &str, firmware: bool) {
    let t = tempfile::Builder::new()
        .prefix("ferry-boot-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let out = new_dir(t.path(), "out");
    let before: Vec<String> = sources.iter().map(|s| sha256(s)).collect();
    let started = Instant::now();
    let stdout = convert_local_ok(mode, input, &out, extra);
    eprintln!("ferry convert -i {mode}: {:.1?}\n{stdout}", started.elapsed());
    assert!(stdout.contains("rebuilt /boot/initrd.img-"), "{stdout}");
    let after: Vec<String> = sources.iter().map(|s| sha256(s)).collect();
    assert_eq!(before, after, "a source file changed");

    let disk = out.join(format!("{name}-sda"));
    assert_qcow2_clean(&disk);
    let part = first_partition(&disk, t.path());
    e2fsck_clean(&part, "the converted root");

    let cfg = debugfs_cat(&part, "/boot/grub/grub.cfg");
    let (kpath, args) = grub_linux(&cfg);
    // virtio-blk renames sdX (to UUID= or vdX); on virtio-scsi the disks keep their sdX names.
    let scsi = extra.contains(&"virtio-scsi");
    let gone = if scsi { "/dev/vd" } else { "/dev/sd" };
    assert!(
        !args.contains(gone) && !args.contains("/dev/xvd"),
        "grub.cfg names a disk the guest will not have: {args}"
    );
    assert!(
        !args.contains("hvc0") && !args.contains("xvc0"),
        "grub.cfg still uses the Xen console: {args}"
    );
    let kernel = t.path().join("vmlinuz");
    let initrd = t.path().join("initrd.img");
    debugfs_dump(&part, &kpath, &kernel);
    let kver = kpath.trim_start_matches("/boot/vmlinuz-");
    debugfs_dump(&part, &format!("/boot/initrd.img-{kver}"), &initrd);
    let backup = t.path().join("initrd.pre-ferry");
    debugfs_dump(&part, &format!("/boot/initrd.img-{kver}.pre-ferry"), &backup);
    assert_ne!(sha256(&initrd), sha256(&backup));
    let interfaces = debugfs_cat(&part, "/etc/network/interfaces");
    let iface = configured_nic(&interfaces, &out.join(format!("{name}.ferry.json")));

    let script = out.join(format!("{name}.sh"));
    let log = if firmware {
        let log = boot_firmware(&script, &t.path().join("serial.log"), Duration::from_secs(400));
        // GRUB booted the converted menu's first entry: the kernel's command line is its line.
        let line = format!("Command line: BOOT_IMAGE={kpath} {args}");
        assert!(log.contains(&line), "no {line:?} (GRUB did not boot the converted entry):\n{}", tail(&log, 40));
        log
    } else {
        boot_script(&script, &kernel, &initrd, &serial_append(&args), &t.path().join("serial.log"), Duration::from_secs(400))
    };
    assert!(
        log.contains(&format!("{name} login:")),
        "no login prompt:\n{}",
        tail(&log, 40)
    );
    assert!(
        log.contains(&format!("EXT4-fs ({root_dev}): mounted filesystem")),
        "root not mounted from {root_dev}:\n{}",
        tail(&log, 40)
    );
    if scsi {
        // The kernel found the disk behind the virtio-scsi HBA, as QEMU's scsi-hd.
        assert!(log.contains("scsi host0: Virtio SCSI HBA"), "no virtio-scsi HBA:\n{}", tail(&log, 60));
        assert!(log.contains("QEMU     QEMU HARDDISK"), "no QEMU HARDDISK on the HBA:\n{}", tail(&log, 60));
    }
    assert!(
        log.contains(&format!("{iface}: renamed from eth0")),
        "the NIC is not named {iface}:\n{}",
        tail(&log, 60)
    );
}

#[test]
fn vmware_vmx_guest_converts_and_boots_on_virtio() {
    let Some(g) = guest("debian-vmware", &[]) else { return };
    let vmx = g.join("debian-vmware.vmx");
    convert_and_boot(
        "vmx",
        &vmx,
        "debian-vmware",
        &[vmx.clone(), g.join("debian-vmware.vmdk")],
        true,
    );
}

/// The OVA input's boot also proves `--block-driver virtio-scsi` (the VMX one proves
/// virtio-blk on the same guest): `virtio_scsi` in the rebuilt initramfs, the root on sda1.
#[test]
fn vmware_ova_guest_converts_and_boots_on_virtio_scsi() {
    let Some(g) = guest("debian-vmware", &[]) else { return };
    let ova = g.join("debian-vmware.ova");
    convert_and_boot_on("ova", &ova, "debian-vmware", std::slice::from_ref(&ova), &["--block-driver", "virtio-scsi"], "sda1", false);
}

#[test]
fn xen_pv_guest_converts_and_boots_on_virtio() {
    let Some(g) = guest("debian-xenpv", &[]) else { return };
    let cfg = g.join("debian-xenpv.cfg");
    convert_and_boot("xen", &cfg, "debian-xenpv", &[cfg.clone(), g.join("disk.raw")], true);
}

#[test]
fn dracut_vmx_guest_converts_and_boots_on_virtio() {
    let Some(g) = guest("debian-dracut", &[]) else { return };
    let vmx = g.join("debian-dracut.vmx");
    convert_and_boot(
        "vmx",
        &vmx,
        "debian-dracut",
        &[vmx.clone(), g.join("debian-dracut.vmdk")],
        true,
    );
}
