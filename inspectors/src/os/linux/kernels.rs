//! Installed kernels: /boot/vmlinuz-VER with /lib/modules/VER, their initrd, virtio
//! drivers (built in or modules) and Xen-PV-only builds.

use super::super::{Driver, GuestFs, Kernel};
use super::virtio::{self, KernelEvidence, ModuleFile};
use crate::fs::FileKind;
use crate::initramfs::{self, InitrdDrivers, Limits};

/// Module base names and the Kconfig options that build them.
const DRIVERS: [(&str, &str); 7] = [
    ("virtio_blk", "CONFIG_VIRTIO_BLK"),
    ("virtio_net", "CONFIG_VIRTIO_NET"),
    ("virtio_pci", "CONFIG_VIRTIO_PCI"),
    ("virtio_scsi", "CONFIG_SCSI_VIRTIO"),
    ("virtio_console", "CONFIG_VIRTIO_CONSOLE"),
    ("virtio_rng", "CONFIG_HW_RANDOM_VIRTIO"),
    ("virtio_balloon", "CONFIG_VIRTIO_BALLOON"),
];
/// The largest virtio_pci module read for its `.modinfo`.
const MODULE_LIMIT: u64 = 8 << 20;
const MODULE_SUFFIXES: [&str; 4] = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"];
/// The largest initramfs image read, and what reading it may decompress.
const INITRD_LIMIT: u64 = 256 << 20;
const INITRD_LIMITS: Limits = Limits { max_segment: 512 << 20, max_total: 512 << 20 };

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
        let (modules, paths) = module_names(g, &modules_dir);
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
        let pci = driver(DRIVERS[2].0, DRIVERS[2].1);
        let builtin_modinfo = g.read(&format!("{modules_dir}/modules.builtin.modinfo"), 16 << 20).ok().flatten();
        let module_bytes;
        let module_path = paths.iter().find(|p| base(p) == "virtio_pci").map(|p| format!("{modules_dir}/{p}"));
        let module = match (&pci, &module_path) {
            (Driver::Module, Some(p)) if p.ends_with(".ko") => {
                // Missing: None; unreadable or too large: empty (judged as damaged).
                module_bytes = g.read(p, MODULE_LIMIT).unwrap_or(Some(Vec::new()));
                ModuleFile::Plain(p, module_bytes.as_deref())
            }
            (Driver::Module, Some(p)) => ModuleFile::Compressed(p),
            _ => ModuleFile::NotModule,
        };
        let virtio = virtio::assess(&KernelEvidence {
            version: ver,
            config: &config,
            has_virtio_pci: pci != Driver::Absent,
            builtin_modinfo: builtin_modinfo.as_deref(),
            builtin: pci == Driver::Builtin,
            module,
            modules: &modules,
            force_legacy: force_legacy(g, ver),
        });
        let initrd = initrd(&boot, ver);
        let initrd_virtio = initrd.as_deref().map(|p| {
            let mut d = initrd_drivers(g, p);
            if d.error.is_none() {
                // The converted root disk is on virtio-blk behind virtio-pci: a kernel that has
                // them as modules needs them in its initramfs, with virtio_pci's library
                // modules (5.x+: virtio_pci_modern_dev, virtio_pci_legacy_dev) when it has them.
                let lib = |m: &str| if pci == Driver::Module && modules.iter().any(|x| x == m) { Driver::Module } else { Driver::Absent };
                let boot = [
                    ("virtio_pci_modern_dev", lib("virtio_pci_modern_dev")),
                    ("virtio_pci_legacy_dev", lib("virtio_pci_legacy_dev")),
                    (DRIVERS[2].0, pci),
                    (DRIVERS[0].0, driver(DRIVERS[0].0, DRIVERS[0].1)),
                ];
                for (m, drv) in boot {
                    if drv == Driver::Module && !d.holds(m) {
                        d.missing.push(m.to_string());
                    }
                }
            }
            d
        });
        kernels.push(Kernel {
            version: ver.to_string(),
            vmlinuz: format!("/boot/{name}"),
            initrd,
            initrd_virtio,
            modules_dir,
            virtio_blk: driver(DRIVERS[0].0, DRIVERS[0].1),
            virtio_net: driver(DRIVERS[1].0, DRIVERS[1].1),
            virtio_pci: pci,
            virtio_scsi: driver(DRIVERS[3].0, DRIVERS[3].1),
            virtio_console: driver(DRIVERS[4].0, DRIVERS[4].1),
            virtio_rng: driver(DRIVERS[5].0, DRIVERS[5].1),
            virtio_balloon: driver(DRIVERS[6].0, DRIVERS[6].1),
            virtio,
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

/// Where `virtio_pci.force_legacy` is set for kernel `ver`: its boot entries' command lines
/// (GRUB menus, BLS entries), the default command line, or modprobe configuration.
fn force_legacy(g: &GuestFs, ver: &str) -> Option<String> {
    let image = format!("vmlinuz-{ver}");
    let mut menus: Vec<String> =
        ["/boot/grub/grub.cfg", "/boot/grub2/grub.cfg", "/boot/grub/grub.conf", "/boot/grub/menu.lst", "/boot/extlinux/extlinux.conf"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    for (d, _) in g.list("/boot/efi/EFI") {
        menus.push(format!("/boot/efi/EFI/{d}/grub.cfg"));
    }
    for (f, _) in g.list("/boot/loader/entries") {
        if f.contains(ver) {
            menus.push(format!("/boot/loader/entries/{f}"));
        }
    }
    for m in &menus {
        let Some(t) = g.text(m) else { continue };
        let bls = m.starts_with("/boot/loader/entries/");
        if t.lines().any(|l| (bls || l.contains(&image)) && virtio::force_legacy_cmdline(l)) {
            return Some(format!("kernel command line in {m}"));
        }
    }
    for (f, key) in [("/etc/default/grub", "GRUB_CMDLINE_LINUX"), ("/boot/grub2/grubenv", "kernelopts"), ("/boot/grub/grubenv", "kernelopts")] {
        let Some(t) = g.text(f) else { continue };
        if t.lines().any(|l| l.trim_start().starts_with(key) && virtio::force_legacy_cmdline(l.split_once('=').map_or("", |x| x.1))) {
            return Some(format!("kernel command line in {f}"));
        }
    }
    let mut conf = vec!["/etc/modprobe.conf".to_string()];
    for d in ["/etc/modprobe.d", "/lib/modprobe.d", "/usr/lib/modprobe.d", "/run/modprobe.d"] {
        for (f, _) in g.list(d).into_iter().take(1000) {
            if f.ends_with(".conf") {
                conf.push(format!("{d}/{f}"));
            }
        }
    }
    conf.into_iter().find(|f| g.text(f).is_some_and(|t| virtio::force_legacy_modprobe(&t))).map(|f| format!("modprobe options in {f}"))
}

/// Names of the kernel's modules, and their paths relative to `dir` from depmod's
/// modules.dep when present (one read), else by walking the module tree (depth-limited).
fn module_names(g: &GuestFs, dir: &str) -> (Vec<String>, Vec<String>) {
    if let Ok(Some(dep)) = g.read(&format!("{dir}/modules.dep"), 64 << 20) {
        let dep = String::from_utf8_lossy(&dep);
        let paths: Vec<String> = dep.lines().filter_map(|l| l.split(':').next()).map(|p| p.trim().to_string()).collect();
        return (paths.iter().map(|p| base(p)).collect(), paths);
    }
    let mut out = Vec::new();
    let mut paths = Vec::new();
    let mut stack = vec![(format!("{dir}/kernel"), 0)];
    while let Some((d, depth)) = stack.pop() {
        if depth > 8 || out.len() > 20000 {
            continue;
        }
        for (name, kind) in g.list(&d) {
            let p = format!("{d}/{name}");
            match kind {
                FileKind::Dir => stack.push((p, depth + 1)),
                _ if MODULE_SUFFIXES.iter().any(|s| name.ends_with(s)) => {
                    out.push(base(&name));
                    paths.push(p.strip_prefix(dir).unwrap_or(&p).trim_start_matches('/').to_string());
                }
                _ => {}
            }
        }
    }
    (out, paths)
}

/// The virtio drivers of the initramfs at `path`; a missing, oversized or damaged image is
/// recorded as unreadable with a one-line reason.
fn initrd_drivers(g: &GuestFs, path: &str) -> InitrdDrivers {
    match g.read(path, INITRD_LIMIT) {
        Ok(Some(raw)) => initramfs::virtio_drivers(path, raw, INITRD_LIMITS).unwrap_or_else(|e| InitrdDrivers::unreadable(path, e)),
        Ok(None) => InitrdDrivers::unreadable(path, format!("{path}: not found")),
        Err(e) => InitrdDrivers::unreadable(path, format!("{path}: {e}")),
    }
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
