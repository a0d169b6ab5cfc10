//! Installed kernels: /boot/vmlinuz-VER with /lib/modules/VER, their initrd, virtio
//! drivers (built in or modules) and Xen-PV-only builds.

use super::super::{Driver, GuestFs, Kernel};
use crate::fs::FileKind;

/// Module base names and the Kconfig options that build them.
const DRIVERS: [(&str, &str); 4] = [
    ("virtio_blk", "CONFIG_VIRTIO_BLK"),
    ("virtio_net", "CONFIG_VIRTIO_NET"),
    ("virtio_pci", "CONFIG_VIRTIO_PCI"),
    ("virtio_scsi", "CONFIG_SCSI_VIRTIO"),
];
const MODULE_SUFFIXES: [&str; 4] = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"];

/// Kernels found, and kernel images that have no modules directory.
pub fn detect(g: &GuestFs) -> (Vec<Kernel>, Vec<String>) {
    let boot = g.list("/boot");
    let mut kernels = Vec::new();
    let mut orphans = Vec::new();
    for (name, kind) in &boot {
        let Some(ver) = name.strip_prefix("vmlinuz-") else { continue };
        if *kind == FileKind::Dir {
            continue;
        }
        let modules_dir = format!("/lib/modules/{ver}");
        if !g.is_dir(&modules_dir) {
            orphans.push(format!("/boot/{name}"));
            continue;
        }
        let config = g.text(&format!("/boot/config-{ver}")).unwrap_or_default();
        let builtin = g.text(&format!("{modules_dir}/modules.builtin")).unwrap_or_default();
        let modules = module_names(g, &modules_dir);
        let driver = |m: &str, opt: &str| {
            let builtin_listed = builtin.lines().any(|l| base(l) == m);
            match config_value(&config, opt) {
                _ if builtin_listed => Driver::Builtin,
                Some("y") => Driver::Builtin,
                _ if modules.iter().any(|x| x == m) => Driver::Module,
                _ => Driver::Absent,
            }
        };
        let xen = ["CONFIG_X86_XEN", "CONFIG_X86_64_XEN"].iter().any(|o| config_value(&config, o) == Some("y"));
        kernels.push(Kernel {
            version: ver.to_string(),
            vmlinuz: format!("/boot/{name}"),
            initrd: initrd(&boot, ver),
            modules_dir,
            virtio_blk: driver(DRIVERS[0].0, DRIVERS[0].1),
            virtio_net: driver(DRIVERS[1].0, DRIVERS[1].1),
            virtio_pci: driver(DRIVERS[2].0, DRIVERS[2].1),
            virtio_scsi: driver(DRIVERS[3].0, DRIVERS[3].1),
            xen_pv_only: xen,
        });
    }
    (kernels, orphans)
}

fn config_value<'a>(config: &'a str, opt: &str) -> Option<&'a str> {
    config.lines().find_map(|l| l.strip_prefix(opt)?.strip_prefix('=').map(str::trim))
}

/// `kernel/drivers/block/virtio_blk.ko.xz` -> `virtio_blk` (dashes as underscores).
fn base(path: &str) -> String {
    let file = path.trim().rsplit('/').next().unwrap_or_default();
    let stem = MODULE_SUFFIXES.iter().rev().find_map(|s| file.strip_suffix(s)).unwrap_or(file);
    stem.replace('-', "_")
}

/// Names of the module files under the kernel's module tree (depth-limited walk).
fn module_names(g: &GuestFs, dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![(format!("{dir}/kernel"), 0)];
    while let Some((d, depth)) = stack.pop() {
        if depth > 8 || out.len() > 20000 {
            continue;
        }
        for (name, kind) in g.list(&d) {
            let p = format!("{d}/{name}");
            match kind {
                FileKind::Dir => stack.push((p, depth + 1)),
                _ if MODULE_SUFFIXES.iter().any(|s| name.ends_with(s)) => out.push(base(&name)),
                _ => {}
            }
        }
    }
    out
}

/// The shortest `initrd.img-*VER*` / `initramfs-*VER*.img` / `initrd-*VER*`, not kdump.
fn initrd(boot: &[(String, FileKind)], ver: &str) -> Option<String> {
    boot.iter()
        .map(|(n, _)| n)
        .filter(|n| n.starts_with("initrd") || n.starts_with("initramfs"))
        .filter(|n| n.contains(ver) && !n.contains("kdump"))
        .min_by_key(|n| n.len())
        .map(|n| format!("/boot/{n}"))
}
