//! `ferry convert --root`: a guest with two disks, each holding a Linux root (tiny
//! Debian-like trees made here with sfdisk + `mkfs.ext4 -d`). By default (`single`) that is a
//! one-line error listing both roots and how to choose; `--root ask` without a terminal does
//! the same; `--root /dev/sdb1` converts the second (its root passes `e2fsck -fn` and holds
//! the edits, read back with debugfs) and leaves the first disk's content as it was
//! (`qemu-img compare`); `--root first` converts the first.

mod convert_linux_support;

use convert_linux_support::*;
use std::path::{Path, PathBuf};

const SIZE: u64 = 64 << 20;

/// A raw disk with one Linux partition at 1 MiB whose root names itself `/dev/{dev}1`.
fn make_root(dir: &Path, host: &str, dev: &str) -> PathBuf {
    let tree = dir.join(format!("tree-{host}"));
    write_tree(&tree, &tiny_debian(host, dev, ""));
    let raw = dir.join(format!("{host}.raw"));
    mbr_ext4_disk(&raw, SIZE, &tree);
    raw
}

#[test]
fn several_roots_need_a_choice_and_root_device_converts_that_one() {
    if !tiny_tools() {
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
        let out = new_dir(t.path(), out);
        (convert_local("xen", &cfg, &out, extra), out)
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
    let part = first_partition(&out.join("two-sdb"), &new_dir(t.path(), "w2"));
    e2fsck_clean(&part, "the converted second root");
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
