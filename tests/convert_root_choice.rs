//! `ferry convert --root`: a guest with two disks, each holding a Linux root (tiny
//! Debian-like trees made here with sfdisk + `mkfs.ext4 -d`). By default (`single`) that is a
//! one-line error listing both roots and how to choose; `--root ask` without a terminal does
//! the same; `--root /dev/sdb1` converts the second (its root passes `e2fsck -fn` and holds
//! the edits, read back with debugfs) and leaves the first disk's content as it was
//! (`qemu-img compare`); `--root first` converts the first.

mod convert_linux_support;

use convert_linux_support::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const PART: u64 = 1 << 20;
const SIZE: u64 = 64 << 20;

/// A raw disk with one Linux partition at 1 MiB whose root names itself `/dev/{dev}1`.
fn make_root(dir: &Path, host: &str, dev: &str) -> PathBuf {
    let tree = dir.join(format!("tree-{host}"));
    let files = [
        ("etc/os-release".to_string(), "ID=debian\nVERSION_ID=12\nPRETTY_NAME=\"Debian GNU/Linux 12\"\n".to_string()),
        ("etc/fstab".into(), format!("/dev/{dev}1 / ext4 errors=remount-ro 0 1\n")),
        ("etc/hostname".into(), format!("{host}\n")),
        ("etc/network/interfaces".into(), "auto lo\niface lo inet loopback\n\nallow-hotplug eth0\niface eth0 inet dhcp\n".into()),
        ("boot/vmlinuz-6.1.0-9-amd64".into(), "not a real kernel".into()),
        (
            "boot/grub/grub.cfg".into(),
            format!("menuentry 'Debian' {{\n\tlinux\t/boot/vmlinuz-6.1.0-9-amd64 root=/dev/{dev}1 ro\n}}\n"),
        ),
        ("bin/sh".into(), String::new()),
        ("usr/lib/systemd/systemd".into(), String::new()),
    ];
    for (p, text) in files {
        let host = tree.join(p);
        std::fs::create_dir_all(host.parent().unwrap()).unwrap();
        std::fs::write(host, text).unwrap();
    }
    let raw = dir.join(format!("{host}.raw"));
    std::fs::File::create(&raw).unwrap().set_len(SIZE).unwrap();
    let mut sf = Command::new("sfdisk").arg("-q").arg(&raw).stdin(Stdio::piped()).spawn().unwrap();
    sf.stdin.take().unwrap().write_all(b"label: dos\nstart=2048, type=83\n").unwrap();
    assert!(sf.wait().unwrap().success());
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-b", "4096", "-E"])
        .arg(format!("offset={PART}"))
        .arg("-d")
        .arg(&tree)
        .arg(&raw)
        .arg(((SIZE - PART) / 4096).to_string()));
    raw
}

fn debugfs_cat(part: &Path, path: &str) -> String {
    run(Command::new("debugfs").arg("-R").arg(format!("cat {path}")).arg(part))
}

/// The root partition of output disk `img`, as a raw file.
fn root_part(img: &Path, work: &Path) -> PathBuf {
    let conv = work.join("conv.raw");
    run(Command::new("qemu-img").args(["convert", "-O", "raw"]).arg(img).arg(&conv));
    let part = work.join("part");
    run(Command::new("dd")
        .arg(format!("if={}", conv.display()))
        .arg(format!("of={}", part.display()))
        .args(["bs=1M", "skip=1", "status=none"]));
    part
}

#[test]
fn several_roots_need_a_choice_and_root_device_converts_that_one() {
    if !["sfdisk", "mkfs.ext4", "debugfs", "e2fsck", "qemu-img"].iter().all(|t| have(t)) {
        eprintln!("skipped: sfdisk, e2fsprogs or qemu-img not installed (tests/run.sh installs them)");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (make_root(t.path(), "alpha", "xvda"), make_root(t.path(), "beta", "xvdb"));
    let cfg = t.path().join("two.cfg");
    std::fs::write(
        &cfg,
        format!(
            "name = \"two\"\ntype = \"pv\"\nmemory = 512\nvcpus = 1\n\
             disk = [ 'format=raw, vdev=xvda, access=rw, target={}', 'format=raw, vdev=xvdb, access=rw, target={}' ]\n\
             vif = [ 'mac=00:16:3e:00:00:02, bridge=xenbr0' ]\n",
            a.display(),
            b.display()
        ),
    )
    .unwrap();
    let before = (sha256(&a), sha256(&b));
    let convert = |out: &str, extra: &[&str]| {
        let out = t.path().join(out);
        std::fs::create_dir(&out).unwrap();
        let mut args = vec!["convert", "-i", "xen", cfg.to_str().unwrap(), "-o", "local", "-os", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        (ferry(&args), out)
    };

    for extra in [&[][..], &["--root", "ask"], &["--root", "single"]] {
        let (o, out) = convert(&format!("fail{}", extra.len() + extra.last().map_or(0, |s| s.len())), extra);
        assert!(!o.status.success(), "{extra:?} converted a two-root guest");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            stderr.trim_end(),
            "ferry: 2 Linux roots found: /dev/sda1 (debian 12.0), /dev/sdb1 (debian 12.0); \
             choose one with --root DEVICE (e.g. --root /dev/sda1) or --root first",
            "{extra:?}"
        );
        assert_eq!(list(&out), Vec::<String>::new(), "{extra:?} left output behind");
    }
    let (o, _) = convert("nosuch", &["--root", "/dev/sdc1"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.starts_with("ferry: --root /dev/sdc1: no Linux root on that device; roots found: /dev/sda1"),
        "{stderr}"
    );

    let (o, out) = convert("second", &["--root", "/dev/sdb1"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("Converting debian 12 on xvdb1"), "{stdout}");
    assert_same_content(&a, "raw", &out.join("two-sda"), "qcow2");
    let w = t.path().join("w2");
    std::fs::create_dir(&w).unwrap();
    let part = root_part(&out.join("two-sdb"), &w);
    let fsck = Command::new("e2fsck").arg("-fn").arg(&part).output().unwrap();
    assert!(fsck.status.success(), "{}", String::from_utf8_lossy(&fsck.stdout));
    assert_eq!(debugfs_cat(&part, "/etc/hostname"), "beta\n");
    let fstab = debugfs_cat(&part, "/etc/fstab");
    assert!(fstab.starts_with("UUID=") && !fstab.contains("xvdb"), "{fstab}");
    assert!(debugfs_cat(&part, "/etc/network/interfaces").contains("iface enp0s5 inet dhcp"));

    let (o, out) = convert("first", &["--root", "first"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Converting debian 12 on xvda1"));
    assert_same_content(&b, "raw", &out.join("two-sdb"), "qcow2");
    assert_eq!((sha256(&a), sha256(&b)), before, "a source disk changed");
}
