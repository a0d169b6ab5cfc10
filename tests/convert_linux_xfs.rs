//! Issue 14, XFS roots through the binary. `ferry convert` of the real Debian 12 guest with
//! its root on XFS (`testdata/guests/debian-xfs.sh`: mkfs.xfs 6.1 defaults, initramfs with
//! VMware storage drivers only) → `xfs_repair -n` is clean on the converted root; the qcow2,
//! booted under QEMU TCG by the generated QEMU script as written (SeaBIOS → the guest's GRUB
//! i386-pc from its MBR, reading the converted XFS → the converted grub.cfg's entry, whose
//! `linux` line the kernel logs as its command line), mounts its XFS root from virtio-blk,
//! reaches a login prompt and names its NIC as the converted configuration does; the sources
//! are byte-identical. The unconverted guest, booted the same way on virtio-blk, does not
//! find its root. Small XFS guests built here (`mkfs.xfs -p`): one with rmapbt converts and
//! its root is clean (xfs_repair -n checks the reverse mappings); one with SELinux permissive
//! but no file_contexts for its policy gets `/.autorelabel`, said in the plan with the
//! reason, and labelled with its directory's `security.selinux` (xfs_db); one with SELinux
//! enforcing and Debian's reference policy gets, on every file, directory and symlink the
//! conversion writes, the label `matchpathcon -f` gives (xfs_db), and no `/.autorelabel`;
//! their converted roots are clean.

mod convert_linux_support;
#[path = "../converters/tests/selinux_support/mod.rs"]
mod selinux_support;

use convert_linux_support::*;
use std::path::Path;
use std::time::{Duration, Instant};

const XFS_TOOLS: [&str; 3] = ["xfs_repair", "xfs_db", "mkfs.xfs"];

#[test]
fn xfs_root_guest_converts_and_boots_on_virtio() {
    let Some(g) = xfs_guest("debian-xfs", &XFS_TOOLS) else { return };
    let t = tempfile::Builder::new().prefix("ferry-xfs-").tempdir_in("/var/tmp").unwrap();
    let (vmx, vmdk) = (g.join("debian-xfs.vmx"), g.join("debian-xfs.vmdk"));
    let before = [sha256(&vmx), sha256(&vmdk)];
    let out = new_dir(t.path(), "out");
    let started = Instant::now();
    let stdout = convert_local_ok("vmx", &vmx, &out, &[]);
    eprintln!("ferry convert -i vmx (XFS root): {:.1?}\n{stdout}", started.elapsed());
    assert!(stdout.contains("rebuilt /boot/initrd.img-"), "{stdout}");
    assert_eq!([sha256(&vmx), sha256(&vmdk)], before, "a source file changed");

    let disk = out.join("debian-xfs-sda");
    assert_qcow2_clean(&disk);
    let part = first_partition(&disk, t.path());
    xfs_repair_clean(&part, "the converted root");

    let cfg = xfs_cat(&part, "/boot/grub/grub.cfg");
    let (kpath, args) = grub_linux(&cfg);
    assert!(args.contains("root=UUID=") && !args.contains("/dev/sd"), "grub.cfg root: {args}");
    let fstab = xfs_cat(&part, "/etc/fstab");
    assert!(fstab.lines().any(|l| l.starts_with("UUID=") && l.contains(" xfs ")), "{fstab}");
    let kver = kpath.trim_start_matches("/boot/vmlinuz-");
    assert!(xfs_read(&part, &kpath).is_some(), "no {kpath}");
    let new_initrd = xfs_read(&part, &format!("/boot/initrd.img-{kver}")).expect("the initrd");
    let old_initrd = xfs_read(&part, &format!("/boot/initrd.img-{kver}.pre-ferry")).expect("the backup");
    assert_ne!(new_initrd, old_initrd);
    // The backup is the guest's own initrd, moved aside unchanged.
    assert_eq!(old_initrd, std::fs::read(g.join(format!("root/boot/initrd.img-{kver}"))).unwrap());
    let iface = configured_nic(&xfs_cat(&part, "/etc/network/interfaces"), &out.join("debian-xfs.ferry.json"));

    let log = boot_firmware(&out.join("debian-xfs.sh"), &t.path().join("serial.log"), Duration::from_secs(400));
    let line = format!("Command line: BOOT_IMAGE={kpath} {args}");
    assert!(log.contains(&line), "no {line:?} (GRUB did not boot the converted entry):\n{}", tail(&log, 40));
    assert!(log.contains("debian-xfs login:"), "no login prompt:\n{}", tail(&log, 40));
    assert!(log.contains("XFS (vda1): Ending clean mount"), "root not mounted from vda1:\n{}", tail(&log, 40));
    assert!(log.contains(&format!("{iface}: renamed from eth0")), "the NIC is not named {iface}:\n{}", tail(&log, 60));
}

#[test]
fn unconverted_xfs_guest_does_not_find_its_root_on_virtio() {
    let Some(g) = xfs_guest("debian-xfs", &XFS_TOOLS) else { return };
    let t = tempfile::tempdir().unwrap();
    let kver = std::fs::read_to_string(g.join("kernel-version")).unwrap();
    let kver = kver.trim();
    // A throwaway qcow2 over the source (never written: -snapshot), on virtio-blk.
    let log = watch(
        std::process::Command::new("qemu-system-x86_64")
            .args(["-accel", "tcg", "-m", "1024", "-display", "none", "-no-reboot", "-serial", "stdio", "-snapshot"])
            .arg("-kernel")
            .arg(g.join(format!("root/boot/vmlinuz-{kver}")))
            .arg("-initrd")
            .arg(g.join(format!("root/boot/initrd.img-{kver}")))
            .args(["-append", "root=/dev/vda1 ro console=ttyS0 no_timer_check rootdelay=1 panic=-1"])
            .arg("-drive")
            .arg(format!("file={},format=raw,if=virtio,readonly=on", g.join("disk.raw").display())),
        &t.path().join("serial.log"),
        Duration::from_secs(400),
    );
    assert!(!log.contains(" login:"), "the unconverted guest booted on virtio:\n{}", tail(&log, 40));
    assert!(
        log.contains("Gave up waiting for root file system device")
            || log.contains("ALERT!  /dev/vda1 does not exist"),
        "the unconverted guest stopped for another reason:\n{}",
        tail(&log, 40)
    );
}

/// A tiny Debian-like guest with its root on XFS (`mkfs.xfs MKFS_ARGS`), as a raw disk and
/// an xl config naming it.
fn tiny_xfs_guest(dir: &Path, mkfs_args: &[&str], extra: &[(&str, &str)], labelled: &[&str]) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    if !tiny_tools() || !XFS_TOOLS.iter().all(|t| have(t)) {
        eprintln!("skipped: xfsprogs or the disk tools not installed (tests/run.sh installs them)");
        return None;
    }
    let tree = dir.join("tree");
    let mut files = tiny_debian("tinyxfs", "xvda", "console=hvc0");
    for (p, d) in &mut files {
        if p == "etc/fstab" {
            *d = "/dev/xvda1 / xfs defaults 0 0\n".into();
        }
    }
    files.extend(extra.iter().map(|(p, d)| (p.to_string(), d.to_string())));
    write_tree(&tree, &files);
    let raw = dir.join("tinyxfs.raw");
    // 320 MiB: mkfs.xfs refuses new filesystems under 300 MiB.
    mbr_xfs_disk(&raw, 321 << 20, &tree, mkfs_args, labelled);
    let cfg = dir.join("tinyxfs.cfg");
    std::fs::write(
        &cfg,
        format!(
            "name = \"tinyxfs\"\ntype = \"pv\"\nmemory = 512\nvcpus = 1\n\
             disk = [ 'format=raw, vdev=xvda, access=rw, target={}' ]\nvif = [ 'mac=00:16:3e:00:00:02, bridge=xenbr0' ]\n",
            raw.display()
        ),
    )
    .unwrap();
    Some((raw, cfg))
}

/// RHEL/Oracle's `mkfs.xfs -m rmapbt=1,reflink=1`: the root converts, and xfs_repair -n
/// (which checks every reverse mapping against what it finds) is clean on it.
#[test]
fn xfs_root_with_rmapbt_converts_clean() {
    let t = tempfile::tempdir().unwrap();
    let Some((raw, cfg)) = tiny_xfs_guest(t.path(), &["-m", "rmapbt=1,reflink=1"], &[], &[]) else { return };
    let before = sha256(&raw);
    let out = new_dir(t.path(), "out");
    convert_local_ok("xen", &cfg, &out, &[]);
    assert_eq!(sha256(&raw), before, "the source disk changed");
    let part = first_partition(&out.join("tinyxfs-sda"), t.path());
    xfs_repair_clean(&part, "the converted rmapbt root");
    let fstab = xfs_cat(&part, "/etc/fstab");
    assert!(fstab.starts_with("UUID=") && fstab.contains(" xfs "), "{fstab}");
}

#[test]
fn selinux_xfs_root_gets_autorelabel() {
    let t = tempfile::tempdir().unwrap();
    let selinux = "# SELinux\nSELINUX=permissive\nSELINUXTYPE=targeted\n";
    // The root and /etc labelled (as SELinux guests' are); /etc/network not.
    let Some((raw, cfg)) = tiny_xfs_guest(t.path(), &[], &[("etc/selinux/config", selinux)], &["/", "/etc"]) else {
        return;
    };
    let before = sha256(&raw);
    let out = new_dir(t.path(), "out");
    let stdout = convert_local_ok("xen", &cfg, &out, &[]);
    assert!(
        stdout.lines().any(|l| l.starts_with("create  /.autorelabel (mode 644): SELinux is on")
            && l.contains("touch /.autorelabel")),
        "{stdout}"
    );
    assert!(
        stdout.contains("note: SELinux: not labelled from the guest's file_contexts (/etc/selinux/targeted/contexts/files/file_contexts is missing): /.autorelabel"),
        "{stdout}"
    );
    assert!(!stdout.contains("label   "), "{stdout}");
    assert_eq!(sha256(&raw), before, "the source disk changed");
    let part = first_partition(&out.join("tinyxfs-sda"), t.path());
    xfs_repair_clean(&part, "the converted root");
    assert_eq!(xfs_read(&part, "/.autorelabel"), Some(Vec::new()));
    // New files take their directory's label (the XFS writer's one attribute write); the
    // relabel at first boot then fixes the rest.
    assert!(xfs_labelled(&part, "/.autorelabel"), "/.autorelabel is not labelled");
    assert!(xfs_labelled(&part, "/etc"), "/etc lost its label");
    let plain = xfs_db(&part, &["path /etc/network/interfaces", "print core.forkoff"]);
    // Edited in place (same inode): an unlabelled file stays as it was.
    assert!(plain.contains("core.forkoff = 0"), "an unlabelled file got a label: {plain}");
    let fstab = xfs_cat(&part, "/etc/fstab");
    assert!(fstab.starts_with("UUID=") && fstab.contains(" xfs "), "{fstab}");
}

#[test]
fn selinux_disabled_xfs_root_gets_no_autorelabel() {
    let t = tempfile::tempdir().unwrap();
    let selinux = "SELINUX=disabled\n";
    let Some((_, cfg)) = tiny_xfs_guest(t.path(), &[], &[("etc/selinux/config", selinux)], &[]) else { return };
    let out = new_dir(t.path(), "out");
    let stdout = convert_local_ok("xen", &cfg, &out, &[]);
    assert!(!stdout.contains("autorelabel"), "{stdout}");
    let part = first_partition(&out.join("tinyxfs-sda"), t.path());
    xfs_repair_clean(&part, "the converted root");
    assert_eq!(xfs_read(&part, "/.autorelabel"), None);
}

/// The `security.selinux` value of `path`'s inode as xfs_db prints it (`\000` for the NUL),
/// `None` without one.
fn xfs_selinux(part: &Path, path: &str) -> Option<String> {
    let out = xfs_db(part, &[&format!("path {path}"), "print a"]);
    let k = out.lines().find_map(|l| {
        let (k, v) = l.strip_prefix("a.sfattr.list[")?.split_once("].name = ")?;
        (v == "\"selinux\"").then(|| k.to_string())
    })?;
    assert!(out.contains(&format!("a.sfattr.list[{k}].secure = 1")), "{out}");
    out.lines().find_map(|l| l.strip_prefix(&format!("a.sfattr.list[{k}].value = \"")).map(|v| v.trim_end_matches('"').to_string()))
}

/// The type `matchpathcon -m` names for `path`'s inode (xfs_db `core.mode`).
fn xfs_type(part: &Path, path: &str) -> &'static str {
    let out = xfs_db(part, &[&format!("path {path}"), "print core.mode"]);
    let mode = out.lines().find_map(|l| l.strip_prefix("core.mode = ")).unwrap_or_else(|| panic!("{path}: {out}"));
    match u32::from_str_radix(mode.trim(), 8).unwrap() & 0o170000 {
        0o040000 => "dir",
        0o120000 => "lnk_file",
        0o100000 => "file",
        m => panic!("{path}: mode {m:o}"),
    }
}

#[test]
fn selinux_xfs_root_labelled_from_its_file_contexts() {
    let t = tempfile::tempdir().unwrap();
    let pol = new_dir(t.path(), "policy");
    let Some(fc) = selinux_support::reference_policy(&pol) else { return };
    let fc_text = String::from_utf8(std::fs::read(&fc).unwrap()).unwrap();
    let subs = std::fs::read_to_string(pol.join("file_contexts.subs_dist")).unwrap();
    let selinux = "SELINUX=enforcing\nSELINUXTYPE=default\n";
    let files = "etc/selinux/default/contexts/files/file_contexts";
    let subs_path = format!("{files}.subs_dist");
    // Hypervisor tools to mask: symlinks under /etc/systemd/system, which does not exist yet
    // (two new directories; the policy labels it through a file_contexts.subs_dist alias).
    let extra = [
        ("etc/selinux/config", selinux),
        (files, fc_text.as_str()),
        (subs_path.as_str(), subs.as_str()),
        ("lib/systemd/system/open-vm-tools.service", "[Service]\n"),
        ("usr/lib/systemd/system/xe-daemon.service", "[Service]\n"),
    ];
    let Some((raw, cfg)) = tiny_xfs_guest(t.path(), &[], &extra, &["/", "/etc"]) else { return };
    let before = sha256(&raw);
    let out = new_dir(t.path(), "out");
    let stdout = convert_local_ok("xen", &cfg, &out, &[]);
    assert_eq!(sha256(&raw), before, "the source disk changed");
    assert!(!stdout.contains("autorelabel"), "{stdout}");
    let labels: Vec<(String, String)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("label   "))
        .map(|l| {
            let (p, rest) = l.split_once(' ').unwrap();
            (p.to_string(), rest.split_once(": ").unwrap().0.to_string())
        })
        .collect();
    assert!(stdout.contains(&format!("note: SELinux: labelled from the guest's file_contexts ({} files)", labels.len())), "{stdout}");
    // Everything the plan puts at a new inode is labelled.
    for l in stdout.lines() {
        let new = l.strip_prefix("create  ").map(|r| r.split(' ').next().unwrap())
            .or_else(|| l.strip_prefix("symlink ").map(|r| r.split(' ').next().unwrap()))
            .or_else(|| l.strip_prefix("mask    ").map(|r| r.split(' ').next().unwrap()))
            .or_else(|| l.strip_prefix("rename  ").map(|r| r.split(' ').nth(2).unwrap().trim_end_matches(':')));
        if let Some(p) = new {
            assert!(labels.iter().any(|(q, _)| q == p), "{p} is written but not labelled:\n{stdout}");
        }
    }
    for p in ["/etc/systemd", "/etc/systemd/system", "/etc/systemd/system/open-vm-tools.service", "/etc/systemd/system/xe-daemon.service"] {
        assert!(labels.iter().any(|(q, _)| q == p), "{p} not labelled:\n{stdout}");
    }
    let part = first_partition(&out.join("tinyxfs-sda"), t.path());
    xfs_repair_clean(&part, "the converted root");
    assert_eq!(xfs_read(&part, "/.autorelabel"), None);
    for (path, ctx) in &labels {
        let ty = xfs_type(&part, path);
        let want = &selinux_support::matchpathcon(&fc, ty, std::slice::from_ref(path))[0];
        assert_eq!(ctx, want, "{path} ({ty}): the plan's label is not matchpathcon's");
        assert_eq!(xfs_selinux(&part, path).as_deref(), Some(format!("{want}\\000").as_str()), "{path} ({ty})");
    }
    eprintln!("{} new files labelled as matchpathcon labels them", labels.len());
    // Edited in place: the root directory keeps its label.
    assert!(xfs_labelled(&part, "/etc"), "/etc lost its label");
}
