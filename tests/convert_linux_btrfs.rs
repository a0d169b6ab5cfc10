//! Issue 18, btrfs roots through the binary.
//!
//! The real Debian 12 guest with its root on a btrfs subvolume
//! (`testdata/guests/debian-btrfs.sh`: /boot ext4 on sda1, btrfs on sda2 made by
//! `mkfs.btrfs --rootdir` with `@` as root and default subvolume and `@home` as /home,
//! fstab `UUID=… subvol=@`/`subvol=@home`, grub.cfg `rootflags=subvol=@`, initramfs with
//! VMware storage drivers + btrfs only). Unconverted, booted on virtio-blk under QEMU TCG,
//! its initramfs never finds the btrfs (no virtio_blk: no vda at all). `ferry convert -i vmx`
//! → `btrfs check --readonly` is clean on the converted btrfs, whose root tree (dump-tree)
//! still has `@` as the default subvolume beside `@home`; the edited files read back with
//! `btrfs restore` keep fstab's `subvol=` options and grub's `rootflags=subvol=@` through the
//! `root=` → `UUID=` rewrites; `ferry inspect` of the output names `@` as the default
//! subvolume; the qcow2, booted under QEMU TCG with the kernel + initrd read from ITS /boot
//! (debugfs), the arguments of ITS grub.cfg and the generated QEMU script, mounts `@` from
//! virtio-blk, mounts /home and /boot, reaches a login prompt and names its NIC as the
//! converted configuration does; the sources are byte-identical.
//!
//! A tiny Debian-like Xen guest whose root is the subvolume `@` of a btrfs (not the default
//! one: inspection names it `btrfsvol:/dev/xvda1/@`) and whose `/boot` is the subvolume
//! `@boot` of the same filesystem (one writer, two views) converts with `ferry convert`:
//! `btrfs check --readonly` is clean on the converted partition, the fstab and grub.cfg edits
//! are there as `btrfs restore` reads them back, the untouched subvolume `@home` is
//! byte-identical, and the source disk is unchanged.

mod convert_linux_support;

use convert_linux_support::*;
use std::path::{Path, PathBuf};
use std::process::Command;
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

/// `btrfs restore -S -r ROOT` of `part` into `to`.
fn restore(part: &Path, root: u64, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let o = Command::new("btrfs").args(["restore", "-S", "-r", &root.to_string()]).arg(part).arg(to).output().unwrap();
    assert!(o.status.success(), "btrfs restore -r {root}: {}", String::from_utf8_lossy(&o.stderr));
}

/// The subvolumes of the btrfs in `part` by name, from `btrfs inspect-internal dump-tree`'s
/// root backrefs.
fn subvolume_ids(part: &Path) -> std::collections::BTreeMap<String, u64> {
    let o = Command::new("btrfs").args(["inspect-internal", "dump-tree", "-t", "root"]).arg(part).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut ids = std::collections::BTreeMap::new();
    let mut id = None;
    for l in text.lines() {
        if let Some(k) = l.split("key (").nth(1).filter(|k| k.contains(" ROOT_BACKREF ")) {
            id = k.split_whitespace().next().and_then(|n| n.parse::<u64>().ok());
        } else if let (Some(i), Some(name)) = (id, l.split(" name ").nth(1)) {
            ids.insert(name.trim().to_string(), i);
            id = None;
        }
    }
    ids
}

/// Every file under `dir` with its bytes.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push((p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn btrfs_subvolume_root_with_boot_subvolume_converts_clean() {
    if !tiny_tools() || !have("mkfs.btrfs") || !have("btrfs") {
        eprintln!("skipped: btrfs-progs or the disk tools not installed (tests/run.sh installs them)");
        return;
    }
    let t = tempfile::Builder::new().prefix("ferry-btrfs-").tempdir_in("/var/tmp").unwrap();
    let tree = t.path().join("tree");
    let mut files = tiny_debian("tinybtrfs", "xvda", "console=hvc0");
    for (p, d) in &mut files {
        if p == "etc/fstab" {
            *d = "/dev/xvda1 / btrfs defaults,subvol=@ 0 0\n/dev/xvda1 /boot btrfs defaults,subvol=@boot 0 0\n/dev/xvda1 /home btrfs defaults,subvol=@home 0 0\n".into();
        }
    }
    let files: Vec<(String, String)> = files.into_iter().map(|(p, d)| (p.strip_prefix("boot/").map_or_else(|| format!("@/{p}"), |b| format!("@boot/{b}")), d)).collect();
    write_tree(&tree, &files);
    write_tree(&tree, &[("@home/user/notes", "home\n"), ("@/boot/.keep", "")]);
    let part = t.path().join("p1.img");
    std::fs::File::create(&part).unwrap().set_len(200 << 20).unwrap();
    let o = Command::new("mkfs.btrfs").args(["-q", "-f", "--rootdir"]).arg(&tree).args(["--subvol", "@", "--subvol", "@boot", "--subvol", "@home"]).arg(&part).output().unwrap();
    if !o.status.success() {
        eprintln!("skipped: mkfs.btrfs --rootdir --subvol failed (btrfs-progs 6.13+ needed): {}", String::from_utf8_lossy(&o.stderr).trim());
        return;
    }
    let raw = t.path().join("tinybtrfs.raw");
    partitioned(&raw, 201 << 20, "label: dos\nstart=2048, type=83\n");
    run(Command::new("dd").arg(format!("if={}", part.display())).arg(format!("of={}", raw.display())).args(["bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"]));
    let cfg = t.path().join("tinybtrfs.cfg");
    std::fs::write(
        &cfg,
        format!(
            "name = \"tinybtrfs\"\ntype = \"pv\"\nmemory = 512\nvcpus = 1\n\
             disk = [ 'format=raw, vdev=xvda, access=rw, target={}' ]\nvif = [ 'mac=00:16:3e:00:00:02, bridge=xenbr0' ]\n",
            raw.display()
        ),
    )
    .unwrap();
    let before = sha256(&raw);
    let out = new_dir(t.path(), "out");
    let stdout = convert_local_ok("xen", &cfg, &out, &[]);
    assert!(stdout.contains("/boot"), "/boot mounted: {stdout}");
    assert_eq!(sha256(&raw), before, "the source disk changed");

    let conv = first_partition(&out.join("tinybtrfs-sda"), t.path());
    let check = Command::new("btrfs").args(["check", "--readonly"]).arg(&conv).output().unwrap();
    let text = String::from_utf8_lossy(&check.stdout).into_owned() + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success() && !text.contains("ERROR"), "btrfs check --readonly on the converted root:\n{text}");
    let ids = subvolume_ids(&conv);
    let (root, boot, home) = (t.path().join("r-root"), t.path().join("r-boot"), t.path().join("r-home"));
    restore(&conv, ids["@"], &root);
    restore(&conv, ids["@boot"], &boot);
    restore(&conv, ids["@home"], &home);
    let fstab = std::fs::read_to_string(root.join("etc/fstab")).unwrap();
    assert!(fstab.lines().filter(|l| l.starts_with("UUID=") && l.contains(" btrfs ")).count() == 3, "{fstab}");
    assert!(fstab.contains("subvol=@boot"), "{fstab}");
    let grub = std::fs::read_to_string(boot.join("grub/grub.cfg")).unwrap();
    assert!(grub.contains("root=UUID=") && !grub.contains("root=/dev/xvda1"), "{grub}");
    assert_eq!(contents(&home), vec![("user/notes".to_string(), b"home\n".to_vec())], "@home changed");
}
