//! `ferry convert` of a small synthetic Linux guest (built here with sfdisk + `mkfs.ext4 -d`,
//! no cache needed): a Xen xl config whose disk is a raw file. The converted qcow2's root
//! passes `e2fsck -fn` and holds the planned edits (read back with debugfs); the source raw
//! file is byte-identical afterwards; `--dry-run` writes nothing; `--json` reports the plan.
//! With SELinux and a file_contexts, the labels the ext4 writer cannot set fall back to
//! `/.autorelabel`, with a warning.

mod convert_linux_support;

use convert_linux_support::*;
use std::path::Path;

/// A raw disk: MBR, one Linux partition at 1 MiB with an ext4 made from a tiny Debian-like tree.
fn make_guest(dir: &Path) -> Option<std::path::PathBuf> {
    if !tiny_tools() {
        return None;
    }
    let tree = dir.join("tree");
    write_tree(&tree, &tiny_debian("tiny", "xvda", "console=hvc0"));
    let raw = dir.join("tiny.raw");
    mbr_ext4_disk(&raw, 64 << 20, &tree);
    Some(raw)
}

fn xl(dir: &Path, raw: &Path) -> std::path::PathBuf {
    let cfg = dir.join("tiny.cfg");
    let text = format!(
        "name = \"tiny\"\ntype = \"pv\"\nmemory = 512\nvcpus = 1\n\
         disk = [ 'format=raw, vdev=xvda, access=rw, target={}' ]\nvif = [ 'mac=00:16:3e:00:00:01, bridge=xenbr0' ]\n",
        raw.display()
    );
    std::fs::write(&cfg, text).unwrap();
    cfg
}

#[test]
fn raw_xen_guest_is_converted_on_its_overlay() {
    let t = tempfile::tempdir().unwrap();
    let Some(raw) = make_guest(t.path()) else { return };
    let cfg = xl(t.path(), &raw);
    let before = sha256(&raw);
    let out = new_dir(t.path(), "out");

    // --dry-run: the plan, nothing written.
    let plan = convert_local_ok("xen", &cfg, &out, &["--dry-run"]);
    assert!(
        plan.contains("edit    /etc/fstab") && plan.contains("iface enp0s5 inet dhcp"),
        "{plan}"
    );
    assert_eq!(list(&out), Vec::<String>::new());

    let json = convert_local_ok("xen", &cfg, &out, &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["guest"]["os_type"], "linux");
    assert!(v["guest"]["applied"].as_u64().unwrap() >= 4, "{json}");
    assert!(v["disks"][0]["edited-bytes"].as_u64().unwrap() > 0, "{json}");
    assert_eq!(sha256(&raw), before, "the source disk changed");

    let img = out.join("tiny-sda");
    assert_qcow2_clean(&img);
    let part = first_partition(&img, t.path());
    e2fsck_clean(&part, "the converted root");
    let fstab = debugfs_cat(&part, "/etc/fstab");
    assert!(fstab.starts_with("UUID=") && !fstab.contains("xvda"), "{fstab}");
    let grub = debugfs_cat(&part, "/boot/grub/grub.cfg");
    assert!(grub.contains("console=ttyS0") && !grub.contains("xvda1"), "{grub}");
    assert!(debugfs_cat(&part, "/etc/network/interfaces").contains("iface enp0s5 inet dhcp"));
    assert_eq!(sha256(&raw), before, "the source disk changed");
}

#[test]
fn a_kernel_without_virtio_pci_is_refused_and_one_without_module_metadata_gets_transitional_devices() {
    if !tiny_tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    // Module metadata that lists no virtio_pci: the guest cannot drive virtio at all.
    let tree = t.path().join("tree");
    let mut files = tiny_debian("tiny", "xvda", "console=hvc0");
    files.push(("lib/modules/6.1.0-9-amd64/modules.dep".into(), "kernel/drivers/block/xen-blkfront.ko:\n".into()));
    files.push(("lib/modules/6.1.0-9-amd64/modules.builtin".into(), "kernel/fs/ext4/ext4.ko\n".into()));
    write_tree(&tree, &files);
    let raw = t.path().join("tiny.raw");
    mbr_ext4_disk(&raw, 64 << 20, &tree);
    let cfg = xl(t.path(), &raw);
    let out = new_dir(t.path(), "out");
    let o = convert_local("xen", &cfg, &out, &[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("kernel 6.1.0-9-amd64 has no virtio_pci driver"), "{err}");
    assert_eq!(list(&out), Vec::<String>::new());

    // No /lib/modules at all: nothing tells which drivers it has, so transitional devices.
    let Some(raw) = make_guest(&t.path().join("bare")) else { return };
    let cfg = xl(&t.path().join("bare"), &raw);
    let json = convert_local_ok("xen", &cfg, &out, &["--dry-run", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["virtio"]["model"], "transitional", "{json}");
    assert!(v["virtio"]["reason"].as_str().unwrap().contains("conservative"), "{json}");
}

/// An ext4 guest with SELinux enforcing and a file_contexts for its policy: the ext4 writer
/// sets no xattrs, so the plan's labels fall back to `/.autorelabel` when applied, with a
/// warning naming why; the root passes `e2fsck -fn`.
#[test]
fn fctx_selinux_ext4_guest_falls_back_to_autorelabel() {
    let t = tempfile::tempdir().unwrap();
    if !tiny_tools() {
        return;
    }
    let tree = t.path().join("tree");
    let mut files = tiny_debian("tiny", "xvda", "console=hvc0");
    for (p, d) in [
        ("etc/selinux/config", "SELINUX=enforcing\nSELINUXTYPE=targeted\n"),
        ("etc/selinux/targeted/contexts/files/file_contexts", "/.*\tsystem_u:object_r:default_t:s0\n/etc(/.*)?\tsystem_u:object_r:etc_t:s0\n/etc/systemd/system(/.*)?\tsystem_u:object_r:systemd_unit_t:s0\n"),
        ("lib/systemd/system/open-vm-tools.service", "[Service]\n"),
    ] {
        files.push((p.into(), d.into()));
    }
    write_tree(&tree, &files);
    let raw = t.path().join("tiny.raw");
    mbr_ext4_disk(&raw, 64 << 20, &tree);
    let cfg = xl(t.path(), &raw);
    let out = new_dir(t.path(), "out");
    let stdout = convert_local_ok("xen", &cfg, &out, &[]);
    assert!(stdout.contains("label   /etc/systemd/system/open-vm-tools.service system_u:object_r:systemd_unit_t:s0: SELinux"), "{stdout}");
    assert!(stdout.contains("note: SELinux: labelled from the guest's file_contexts (3 files)"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("warning: SELinux: /etc/systemd not labelled (") && l.contains("do not write attributes") && l.ends_with("/.autorelabel created, the guest relabels itself at its first boot")),
        "{stdout}"
    );
    let part = first_partition(&out.join("tiny-sda"), t.path());
    e2fsck_clean(&part, "the converted root");
    assert!(debugfs(&part, "stat /.autorelabel").contains("Size: 0"), "no /.autorelabel");
}
