//! The conversion plan on real Debian 12 guests: the trees that `testdata/guests/` builds with
//! debootstrap (VMware-style and Xen PV) and caches in `$FERRY_CACHE/guest-debian-*/root`. Their
//! `/etc`, `/boot` menus, unit files and `modules.dep` are what Debian's own tools wrote. Skipped,
//! with a message, when those guests have not been built on this machine.

mod linux_support;

use ferry_converters::guestfs::HostDirFs;
use ferry_converters::linux::{self, ChangeKind, NetStrategy, NicTarget, TargetLayout};
use linux_support::*;
use std::path::{Path, PathBuf};

/// The newest cached root tree of the guest `kind` (`debian-vmware`, `debian-xenpv`).
fn cached_root(kind: &str) -> Option<PathBuf> {
    let cache = std::env::var_os("FERRY_CACHE")
        .map_or_else(|| PathBuf::from("/var/tmp/ferry-cache"), PathBuf::from);
    let prefix = format!("guest-{kind}-");
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&cache)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path().join("root"))
        .filter(|r| r.join("etc/fstab").is_file() && r.join("boot/grub/grub.cfg").is_file())
        .filter_map(|r| Some((std::fs::metadata(&r).ok()?.modified().ok()?, r)))
        .collect();
    found.sort();
    found.pop().map(|(_, r)| r)
}

/// Copies what the conversion reads from a real root: all of /etc, /boot (kernel and initrd
/// images as empty stand-ins), unit files, systemd, and each kernel's modules.dep/builtin.
fn copy_real(src: &Path, dst: &Path) {
    copy_tree(&src.join("etc"), &dst.join("etc"));
    std::fs::create_dir_all(dst.join("boot/grub")).unwrap();
    for e in std::fs::read_dir(src.join("boot")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_file() {
            let big = name.starts_with("vmlinuz-") || name.starts_with("initrd.img-");
            if big {
                std::fs::write(dst.join("boot").join(&name), b"").unwrap();
            } else {
                std::fs::copy(e.path(), dst.join("boot").join(&name)).unwrap();
            }
        }
    }
    std::fs::copy(
        src.join("boot/grub/grub.cfg"),
        dst.join("boot/grub/grub.cfg"),
    )
    .unwrap();
    std::os::unix::fs::symlink("usr/lib", dst.join("lib")).unwrap();
    copy_tree(
        &src.join("usr/lib/systemd/system"),
        &dst.join("usr/lib/systemd/system"),
    );
    std::fs::copy(
        src.join("usr/lib/systemd/systemd"),
        dst.join("usr/lib/systemd/systemd"),
    )
    .unwrap();
    for k in std::fs::read_dir(src.join("usr/lib/modules")).unwrap() {
        let k = k.unwrap();
        let d = dst.join("usr/lib/modules").join(k.file_name());
        std::fs::create_dir_all(&d).unwrap();
        for f in ["modules.dep", "modules.builtin"] {
            std::fs::copy(k.path().join(f), d.join(f)).unwrap();
        }
    }
}

fn plan_apply(root: &Path, layout: &TargetLayout) -> linux::Plan {
    let mut fs = HostDirFs::new(root);
    let facts = linux::detect::detect(&fs).unwrap();
    let plan = linux::plan(&facts, layout, &fs).unwrap();
    eprintln!("{plan}");
    let report = linux::apply(&plan, &mut fs).unwrap();
    assert_eq!(
        report.deferred.len(),
        1,
        "one initramfs rebuild for the caller"
    );
    let again = linux::plan(&linux::detect::detect(&fs).unwrap(), layout, &fs).unwrap();
    assert!(
        again
            .changes
            .iter()
            .all(|c| matches!(c.kind, ChangeKind::InitramfsRebuild { .. })),
        "{again}"
    );
    plan
}

fn read(root: &Path, p: &str) -> String {
    std::fs::read_to_string(root.join(p.trim_start_matches('/'))).unwrap()
}

fn layout(disk: &str) -> TargetLayout {
    TargetLayout {
        disks: vec![linux::DiskTarget {
            source: disk.into(),
        }],
        nics: vec![NicTarget {
            old_name: None,
            mac: "52:54:00:00:00:01".into(),
            new_name: NicTarget::predictable_name(3),
        }],
        net: NetStrategy::Rename,
        ..Default::default()
    }
}

#[test]
fn real_debian_vmware_guest() {
    let Some(src) = cached_root("debian-vmware") else {
        eprintln!("skipping: no debian-vmware guest in the cache (built by testdata/guests/debian-vmware.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    copy_real(&src, dir.path());
    let root = dir.path();
    let plan = plan_apply(root, &layout("sda"));
    assert_eq!(findmnt_sources(&root.join("etc/fstab")), ["/dev/vda1"]);
    grub_script_check(&root.join("boot/grub/grub.cfg"));
    let cfg = read(root, "/boot/grub/grub.cfg");
    assert!(cfg.contains("root=/dev/vda1 ro") && !cfg.contains("/dev/sda"));
    assert!(read(root, "/etc/network/interfaces").contains("\niface enp0s3 inet static\n"));
    assert_eq!(
        std::fs::read_link(root.join("etc/systemd/system/open-vm-tools.service")).unwrap(),
        Path::new("/dev/null")
    );
    let modules = read(root, "/etc/initramfs-tools/modules");
    for m in ["virtio_pci", "virtio_blk", "virtio_net", "virtio_scsi"] {
        assert!(
            modules.lines().any(|l| l == m),
            "{m} in /etc/initramfs-tools/modules"
        );
    }
    let rebuild = plan.changes.iter().find_map(|c| match &c.kind {
        ChangeKind::InitramfsRebuild { modules, .. } => Some((c.path.clone(), modules.clone())),
        _ => None,
    });
    let (initrd, modules) = rebuild.unwrap();
    // open-vm-tools' own /etc/vmware-tools is not mistaken for a tarball install.
    assert!(
        !plan.notes.iter().any(|n| n.contains("tarball")),
        "{:?}",
        plan.notes
    );
    assert!(initrd.starts_with("/boot/initrd.img-6."));
    // Debian builds these as modules: the real modules.dep lists them.
    for m in [
        "virtio_pci",
        "virtio_pci_modern_dev",
        "virtio_pci_legacy_dev",
        "virtio_blk",
    ] {
        assert!(
            modules.iter().any(|x| x == m),
            "{m} in the rebuild list {modules:?}"
        );
    }
}

#[test]
fn real_debian_xenpv_guest() {
    let Some(src) = cached_root("debian-xenpv") else {
        eprintln!("skipping: no debian-xenpv guest in the cache (built by testdata/guests/debian-xenpv.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    copy_real(&src, dir.path());
    let root = dir.path();
    plan_apply(root, &layout("xvda"));
    assert_eq!(findmnt_sources(&root.join("etc/fstab"))[0], "/dev/vda1");
    grub_script_check(&root.join("boot/grub/grub.cfg"));
    let cfg = read(root, "/boot/grub/grub.cfg");
    assert!(cfg.contains("root=/dev/vda1 ro console=ttyS0") && !cfg.contains("hvc0"));
    assert!(read(root, "/etc/default/grub").contains("GRUB_CMDLINE_LINUX=\"console=ttyS0\""));
    let wants = root.join("etc/systemd/system/getty.target.wants");
    assert!(
        wants.join("serial-getty@ttyS0.service").is_symlink()
            && !wants.join("serial-getty@hvc0.service").exists()
    );
}

#[test]
fn real_debian_dracut_guest() {
    let Some(src) = cached_root("debian-dracut") else {
        eprintln!("skipping: no debian-dracut guest in the cache (built by testdata/guests/debian-dracut.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    copy_real(&src, dir.path());
    let root = dir.path();
    let plan = plan_apply(root, &layout("sda"));
    let facts = linux::detect::detect(&HostDirFs::new(root)).unwrap();
    assert_eq!(facts.initramfs, linux::InitramfsGenerator::Dracut);
    let conf = read(root, "/etc/dracut.conf.d/ferry-virtio.conf");
    assert!(conf.contains(
        "add_drivers+=\" virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk"
    ));
    // The host-only VMware configuration omitted virtio: those names are gone from it.
    for f in std::fs::read_dir(root.join("etc/dracut.conf.d")).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        for l in text
            .lines()
            .filter(|l| l.trim_start().starts_with("omit_drivers"))
        {
            assert!(!l.contains("virtio"), "{l}");
        }
    }
    assert!(plan.changes.iter().any(|c| matches!(
        &c.kind,
        ChangeKind::InitramfsRebuild {
            generator: linux::InitramfsGenerator::Dracut,
            ..
        }
    )));
    // dracut itself reads the result: `dracut --print-cmdline` is not host-safe, so check the
    // shell syntax of every configuration file with bash, which is how dracut sources them.
    for f in std::fs::read_dir(root.join("etc/dracut.conf.d")).unwrap() {
        let p = f.unwrap().path();
        let out = std::process::Command::new("bash")
            .arg("-n")
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            p.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
