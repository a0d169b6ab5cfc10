//! Issue 18, btrfs roots through the binary. The real Debian 12 guest with its root on a
//! btrfs subvolume (`testdata/guests/debian-btrfs.sh`: /boot ext4 on sda1, btrfs on sda2
//! made by `mkfs.btrfs --rootdir` with `@` as root and default subvolume and `@home` as
//! /home, fstab `UUID=… subvol=@`/`subvol=@home`, grub.cfg `rootflags=subvol=@`,
//! initramfs with VMware storage drivers + btrfs only). Unconverted, booted on virtio-blk
//! under QEMU TCG, its initramfs never finds the btrfs (no virtio_blk: no vda at all).
//! `ferry convert -i vmx` → `btrfs check --readonly` is clean on the converted btrfs, whose
//! root tree (dump-tree) still has `@` as the default subvolume beside `@home`; the edited
//! files read back with `btrfs restore` keep fstab's `subvol=` options and grub's
//! `rootflags=subvol=@` through the `root=` → `UUID=` rewrites; `ferry inspect` of the output
//! names `@` as the default subvolume; the qcow2, booted under QEMU TCG with the kernel +
//! initrd read from ITS /boot (debugfs), the arguments of ITS grub.cfg and the generated
//! QEMU script, mounts `@` from virtio-blk, mounts /home and /boot, reaches a login prompt
//! and names its NIC as the converted configuration does; the sources are byte-identical.

mod convert_linux_support;

use convert_linux_support::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const NAME: &str = "debian-btrfs";
const BOOT_START: u64 = 1 << 20;
const BOOT_LEN: u64 = 256 << 20;
const BTRFS_START: u64 = 257 << 20;
/// The btrfs's UUID (`mkfs.btrfs -U` in the guest script).
const BTRFS_UUID: &str = "6f1c2d3e-4b5a-4c69-8d7e-0f1a2b3c4d5e";

/// The cached guest ([`guest`]; building it needs `mkfs.btrfs --subvol`, btrfs-progs 6.11+).
fn btrfs_guest() -> Option<PathBuf> {
    guest(NAME, &["btrfs", "mkfs.btrfs"])
}

/// The serial log without terminal escapes (systemd colours its status lines).
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            while chars.next().is_some_and(|c| !c.is_ascii_alphabetic()) {}
            continue;
        }
        out.push(c);
    }
    out
}

#[test]
fn unconverted_btrfs_guest_does_not_reach_userspace_on_virtio_blk() {
    let Some(g) = btrfs_guest() else { return };
    let t = tempfile::tempdir().unwrap();
    // rootdelay=1: initramfs-tools gives up one second after udev has settled (every
    // driver the initramfs has is probed by then) rather than after 30 s of TCG.
    let append = format!("root=UUID={BTRFS_UUID} ro rootflags=subvol=@ console=ttyS0 no_timer_check rootdelay=1 panic=-1");
    let log = boot_unconverted_on_virtio_blk(&g, &append, &t.path().join("serial.log"), Duration::from_secs(400));
    assert!(
        log.contains(&format!("ALERT!  UUID={BTRFS_UUID} does not exist")),
        "expected the initramfs to give up on the btrfs root:\n{}",
        tail(&log, 30)
    );
    assert!(!log.contains(" vda"), "a virtio disk appeared:\n{}", tail(&log, 30));
    assert!(!log.contains(" login:"), "a login prompt appeared");
}

/// Converts the guest, checks its output, boots it; one conversion and one boot for every
/// point (the boot is minutes of TCG).
#[test]
#[ignore = "needs the btrfs writer (branch btrfsw)"]
fn btrfs_root_guest_converts_and_boots_on_virtio() {
    let Some(g) = btrfs_guest() else { return };
    let vmx = g.join(format!("{NAME}.vmx"));
    let vmdk = g.join(format!("{NAME}.vmdk"));
    let before = [sha256(&vmx), sha256(&vmdk)];
    let t = tempfile::Builder::new().prefix("ferry-btrfs-").tempdir_in("/var/tmp").unwrap();
    let out = new_dir(t.path(), "out");
    let started = Instant::now();
    let stdout = convert_local_ok("vmx", &vmx, &out, &[]);
    eprintln!("ferry convert -i vmx (btrfs root): {:.1?}\n{stdout}", started.elapsed());
    assert!(stdout.contains("rebuilt /boot/initrd.img-"), "{stdout}");
    assert_eq!([sha256(&vmx), sha256(&vmdk)], before, "a source file changed");

    let disk = out.join(format!("{NAME}-sda"));
    assert_qcow2_clean(&disk);
    let inspection = converted_inspection(&disk);
    let raw = t.path().join("converted.raw");
    to_raw(&disk, &raw);
    let (boot, root) = (t.path().join("boot.part"), t.path().join("root.btrfs"));
    cut(&raw, BOOT_START, Some(BOOT_LEN), &boot);
    cut(&raw, BTRFS_START, None, &root);
    std::fs::remove_file(&raw).unwrap();
    e2fsck_clean(&boot, "the converted /boot");
    btrfs_check_clean(&root, "the converted btrfs");

    // The subvolumes as they were: @ the default, @home beside it (btrfs-progs' reading).
    let (subvols, default) = btrfs_subvolumes(&root);
    let at = btrfs_subvolume_id(&root, "@");
    let at_home = btrfs_subvolume_id(&root, "@home");
    assert_eq!(default, at, "the default subvolume is no longer @: {subvols:?}");
    // Ferry's inspection of its own output names the same subvolume @ as the default.
    let fs = inspection["filesystems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fstype"] == "btrfs")
        .unwrap_or_else(|| panic!("no btrfs in the inspection: {inspection}"));
    assert_eq!(fs["uuid"], BTRFS_UUID, "{fs}");
    assert_eq!(fs["btrfs"]["default_subvolume"], at, "{fs}");
    let paths: Vec<(&str, u64)> = fs["btrfs"]["subvolumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["path"].as_str().unwrap(), s["id"].as_u64().unwrap()))
        .collect();
    assert!(paths.contains(&("@", at)) && paths.contains(&("@home", at_home)), "{fs}");
    let os = &inspection["operating_systems"][0];
    let mounts = os["mountpoints"].to_string();
    assert!(mounts.contains(r#"["/home","btrfsvol:/dev/sda2/@home"]"#), "{mounts}");

    // fstab: /dev/sda1 became a UUID; the subvol= options stayed.
    let fstab = btrfs_cat(&root, at, "/etc/fstab", t.path());
    assert!(!fstab.contains("/dev/sd"), "{fstab}");
    let mount = |mp: &str| fstab.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).find(|w| w.len() >= 4 && w[1] == mp);
    let line = |mp: &str| mount(mp).unwrap_or_else(|| panic!("no {mp} in fstab:\n{fstab}"));
    assert_eq!(line("/")[..4], [format!("UUID={BTRFS_UUID}").as_str(), "/", "btrfs", "defaults,subvol=@"], "{fstab}");
    assert_eq!(line("/home")[..4], [format!("UUID={BTRFS_UUID}").as_str(), "/home", "btrfs", "defaults,subvol=@home"], "{fstab}");
    assert!(line("/boot")[0].starts_with("UUID="), "{fstab}");
    let modules = btrfs_cat(&root, at, "/etc/initramfs-tools/modules", t.path());
    assert!(modules.lines().any(|l| l.trim() == "virtio_blk") && modules.lines().any(|l| l.trim() == "btrfs"), "{modules}");
    // @home untouched.
    assert_eq!(
        btrfs_read(&root, at_home, "/README", t.path()),
        Some(std::fs::read(g.join("root/home/README")).unwrap()),
        "@home's file changed"
    );

    // grub.cfg: root= became the btrfs's UUID on every linux line; rootflags=subvol=@ stayed.
    let cfg = debugfs_cat(&boot, "/grub/grub.cfg");
    let linux: Vec<&str> = cfg.lines().map(str::trim).filter(|l| l.starts_with("linux")).collect();
    assert_eq!(linux.len(), 2, "{cfg}");
    for l in &linux {
        let args: Vec<&str> = l.split_whitespace().collect();
        assert!(args.contains(&format!("root=UUID={BTRFS_UUID}").as_str()), "{l}");
        assert!(args.contains(&"rootflags=subvol=@"), "{l}");
        assert!(!l.contains("/dev/sd"), "{l}");
    }
    let (kpath, args) = grub_linux(&cfg);
    let append = serial_append(&args);
    let kver = kpath.trim_start_matches("/vmlinuz-");
    let (kernel, initrd) = (t.path().join("vmlinuz"), t.path().join("initrd.img"));
    debugfs_dump(&boot, &kpath, &kernel);
    debugfs_dump(&boot, &format!("/initrd.img-{kver}"), &initrd);
    let backup = t.path().join("initrd.pre-ferry");
    debugfs_dump(&boot, &format!("/initrd.img-{kver}.pre-ferry"), &backup);
    // The backup is the guest's own initrd, moved aside unchanged.
    let old = std::fs::read(g.join(format!("root/boot/initrd.img-{kver}"))).unwrap();
    assert_eq!(std::fs::read(&backup).unwrap(), old, "the .pre-ferry backup is not the guest's initrd");
    assert_ne!(std::fs::read(&initrd).unwrap(), old, "the initrd was not rebuilt");

    let interfaces = btrfs_cat(&root, at, "/etc/network/interfaces", t.path());
    let iface = configured_nic(&interfaces, &out.join(format!("{NAME}.ferry.json")));
    std::fs::remove_file(&root).unwrap();
    std::fs::remove_file(&boot).unwrap();

    let log = boot_script(&out.join(format!("{NAME}.sh")), &kernel, &initrd, &append, &t.path().join("serial.log"), Duration::from_secs(500));
    let log = plain(&log);
    assert!(log.contains(&format!("{NAME} login:")), "no login prompt:\n{}", tail(&log, 40));
    assert!(log.contains("BTRFS info (device vda2)"), "the btrfs not mounted from vda2:\n{}", tail(&log, 60));
    assert!(log.contains("Mounted home.mount - /home."), "/home (@home) not mounted:\n{}", tail(&log, 60));
    assert!(log.contains("EXT4-fs (vda1): mounted filesystem"), "/boot not mounted from vda1:\n{}", tail(&log, 60));
    assert!(log.contains(&format!("{iface}: renamed from eth0")), "the NIC is not named {iface}:\n{}", tail(&log, 60));
}

/// `ferry inspect --json` of the converted disk.
fn converted_inspection(disk: &Path) -> serde_json::Value {
    serde_json::from_str(&ferry_ok(&["inspect", "--json", disk.to_str().unwrap()])).unwrap()
}
