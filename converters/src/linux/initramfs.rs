//! virtio drivers in the initramfs: make the guest's own generator include them from now on
//! (`/etc/initramfs-tools/modules`, `/etc/dracut.conf.d/ferry-virtio.conf`, SUSE's
//! `INITRD_MODULES` in `/etc/sysconfig/kernel`; `btrfs` too when the root is btrfs), and ask the caller
//! to rebuild the chosen kernel's image now ([`ChangeKind::InitramfsRebuild`]).

use super::draft::Draft;
use super::facts::{DistroFamily, GuestFacts, InitramfsGenerator, KernelFacts};
use super::plan::{Change, ChangeKind};
use super::LinuxError;

/// The drivers a KVM guest needs early, in load order.
pub const VIRTIO_MODULES: [&str; 8] = [
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "virtio_net",
    "virtio_console",
    "virtio_rng",
];

const REASON: &str = "the root disk is on virtio-blk under KVM";
/// dracut configuration written by Ferry.
pub const DRACUT_CONF: &str = "/etc/dracut.conf.d/ferry-virtio.conf";

/// Drivers the kernel needs to find its root disk.
const BOOT_CRITICAL: [&str; 5] = [
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
];

/// `--block-driver virtio-scsi`: why the kernel `best` cannot boot with its disks on a
/// virtio-scsi controller (it has no `virtio_scsi`, built in or as a module), in one line;
/// None when it can. Where it is a module, [`plan`] puts it in the initramfs (it is one of
/// [`BOOT_CRITICAL`]).
pub fn lacks_virtio_scsi(best: &KernelFacts) -> Option<String> {
    (!best.has("virtio_scsi")).then(|| format!("kernel {} has no virtio_scsi driver (built in or as a module): it would not find its disks on virtio-scsi; use --block-driver virtio-blk", best.version))
}

/// The modules of [`VIRTIO_MODULES`] that some bootable kernel has as a loadable module.
fn wanted(facts: &GuestFacts) -> Vec<&'static str> {
    VIRTIO_MODULES
        .iter()
        .copied()
        .filter(|m| {
            facts
                .kernels
                .iter()
                .any(|k| !k.xen_pv_only && k.has(m) && !k.is_builtin(m))
        })
        .collect()
}

/// Xen paravirtual drivers that SUSE lists in `/etc/sysconfig/kernel` for its initrd (the
/// xenlinux names virt-v2v removes, and the pvops front ends of SLES 12+ kernels).
const XEN_INITRD_MODULES: [&str; 8] = ["xennet", "xen-vnif", "xenblk", "xen-vbd", "xen-blkfront", "xen-netfront", "xen_blkfront", "xen_netfront"];
/// VMware paravirtual drivers (PVSCSI, vmxnet, balloon, VMCI, shared folders): no such device on KVM.
const VMWARE_INITRD_MODULES: [&str; 6] = ["vmw_pvscsi", "vmxnet3", "vmxnet", "vmw_balloon", "vmw_vmci", "vmhgfs"];
/// The virtio drivers SUSE's `INITRD_MODULES` gets (their dependencies follow from `modules.dep`).
const SUSE_INITRD_VIRTIO: [&str; 4] = ["virtio_pci", "virtio_blk", "virtio_scsi", "virtio_net"];

/// The filesystem type of `/` in the guest's fstab, as planned so far.
pub fn root_fstype(d: &mut Draft<'_>) -> Result<Option<String>, LinuxError> {
    let Some(text) = d.read("/etc/fstab")? else { return Ok(None) };
    Ok(text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&"/"))
        .and_then(|f| f.get(2).map(|t| (*t).to_owned())))
}

/// SUSE: `/etc/sysconfig/kernel` lists the drivers its initrd must hold, and the `mkinitrd`
/// wrapper (dracut's `mkinitrd-suse.sh` on SLES 12+, the old `mkinitrd` before) reads it. The
/// Xen and VMware paravirtual drivers are dropped from `INITRD_MODULES` and
/// `DOMU_INITRD_MODULES` (as virt-v2v does for Xen); `INITRD_MODULES` gets the virtio drivers
/// the kernels have as modules, and `btrfs` when the root filesystem is btrfs.
fn suse_sysconfig_kernel(d: &mut Draft<'_>, add: &[&str]) -> Result<(), LinuxError> {
    let path = "/etc/sysconfig/kernel";
    let Some(text) = d.read(path)? else {
        return Ok(());
    };
    let mut odd: Vec<String> = Vec::new();
    let new: String = text
        .split_inclusive('\n')
        .map(|l| {
            let Some((key, value)) = l.split_once('=') else {
                return l.to_owned();
            };
            let key_t = key.trim();
            if !matches!(key_t, "INITRD_MODULES" | "DOMU_INITRD_MODULES") || key.starts_with('#') {
                return l.to_owned();
            }
            let v = value.trim().trim_matches('"').trim_matches('\'');
            if v.contains(['"', '\'', '#', '$', '`', ';', '\\']) {
                // Not a plain word list (a comment, an expansion): rewriting it could break the shell.
                odd.push(key_t.to_owned());
                return l.to_owned();
            }
            let old: Vec<&str> = v.split_whitespace().collect();
            let mut kept: Vec<&str> = old
                .iter()
                .copied()
                .filter(|m| !XEN_INITRD_MODULES.contains(m) && !VMWARE_INITRD_MODULES.contains(m))
                .collect();
            if key_t == "INITRD_MODULES" {
                for m in add {
                    if !kept.contains(m) {
                        kept.push(m);
                    }
                }
            }
            if kept == old {
                return l.to_owned();
            }
            format!("{key}=\"{}\"\n", kept.join(" "))
        })
        .collect();
    for key in odd {
        d.warn(format!("{path}: {key} is not a plain list of modules; left unchanged: add the virtio drivers to it by hand"));
    }
    d.edit(path, new, "the initrd needs the virtio drivers (and not the Xen or VMware ones) on KVM")
}

/// dracut configuration that omits virtio drivers (a host-only image made on VMware) would
/// defeat `add_drivers`: those names are taken out of `omit_drivers`.
fn unomit_dracut(d: &mut Draft<'_>, mods: &[&str]) -> Result<(), LinuxError> {
    let mut files = vec!["/etc/dracut.conf".to_owned()];
    files.extend(
        d.list_dir("/etc/dracut.conf.d")?
            .into_iter()
            .filter(|n| n.ends_with(".conf"))
            .map(|n| format!("/etc/dracut.conf.d/{n}")),
    );
    let virtio = |w: &str| {
        mods.contains(&w) || w == "virtio" || w == "virtio_ring" || w.starts_with("virtio_pci")
    };
    for path in files {
        if path == DRACUT_CONF {
            continue;
        }
        let Some(text) = d.read(&path)? else { continue };
        let new: String = text
            .split_inclusive('\n')
            .map(|l| {
                let t = l.trim_start();
                let Some((key, value)) = t.split_once('=') else {
                    return l.to_owned();
                };
                if key.trim_end_matches('+').trim() != "omit_drivers"
                    || !value
                        .split(|c: char| c.is_whitespace() || c == '"')
                        .any(virtio)
                {
                    return l.to_owned();
                }
                let quote = if value.trim_start().starts_with('\'') {
                    '\''
                } else {
                    '"'
                };
                let kept: Vec<&str> = value
                    .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                    .filter(|w| !w.is_empty() && !virtio(w))
                    .collect();
                let indent = &l[..l.len() - t.len()];
                let words = if kept.is_empty() {
                    String::from(" ")
                } else {
                    format!(" {} ", kept.join(" "))
                };
                format!("{indent}{key}={quote}{words}{quote}\n")
            })
            .collect();
        d.edit(
            &path,
            new,
            "omitting virtio drivers would leave the initramfs unable to find the root disk on KVM",
        )?;
    }
    Ok(())
}

/// Plans the configuration and the rebuild of `best`'s initramfs.
pub fn plan(d: &mut Draft<'_>, facts: &GuestFacts, best: &KernelFacts) -> Result<(), LinuxError> {
    let mods = wanted(facts);
    let btrfs_root = root_fstype(d)?.as_deref() == Some("btrfs");
    if facts.family == DistroFamily::Suse {
        let mut add: Vec<&str> = SUSE_INITRD_VIRTIO.iter().copied().filter(|m| mods.contains(m)).collect();
        if btrfs_root {
            add.push("btrfs");
        }
        suse_sysconfig_kernel(d, &add)?;
    }
    if !best.has("virtio_blk") || !best.has("virtio_pci") {
        d.warn(format!(
            "kernel {} lacks virtio_blk or virtio_pci: it will not find its disks on virtio-blk",
            best.version
        ));
    }
    if !mods.iter().any(|m| BOOT_CRITICAL.contains(m)) {
        d.note(format!(
            "the virtio drivers of kernel {} are built in: its initramfs needs no change",
            best.version
        ));
        return Ok(());
    }
    match facts.initramfs {
        InitramfsGenerator::InitramfsTools => {
            let path = "/etc/initramfs-tools/modules";
            let text = d.read(path)?.unwrap_or_default();
            let listed: Vec<&str> = text
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .filter(|w| !w.starts_with('#'))
                .collect();
            let missing: Vec<&str> = mods
                .iter()
                .copied()
                .filter(|m| !listed.contains(m))
                .collect();
            if !missing.is_empty() {
                let mut new = text.clone();
                if !new.is_empty() && !new.ends_with('\n') {
                    new.push('\n');
                }
                new.push_str("# virtio drivers, added by ferry when converting to KVM\n");
                for m in missing {
                    new.push_str(m);
                    new.push('\n');
                }
                d.create(path, new, 0o644, REASON)?;
            }
        }
        InitramfsGenerator::Dracut => {
            unomit_dracut(d, &mods)?;
            let mut text = format!("# Written by ferry when converting to KVM: the root disk is on virtio.\nadd_drivers+=\" {} \"\n", mods.join(" "));
            if btrfs_root {
                // A host-only image made elsewhere may lack it; the root filesystem is btrfs.
                text.push_str("filesystems+=\" btrfs \"\n");
            }
            d.create(DRACUT_CONF, text, 0o644, REASON)?;
        }
        InitramfsGenerator::Mkinitrd | InitramfsGenerator::Unknown
            if facts.family == DistroFamily::Suse
                && d.read("/etc/sysconfig/kernel")?.is_some_and(|t| t.lines().any(|l| l.trim_start().starts_with("INITRD_MODULES="))) =>
        {
            d.note("SUSE mkinitrd reads INITRD_MODULES from /etc/sysconfig/kernel: later rebuilds in the guest keep the virtio drivers".into());
        }
        InitramfsGenerator::Mkinitrd | InitramfsGenerator::Unknown => {
            d.warn("the initramfs generator is not initramfs-tools or dracut: a later rebuild in the guest may drop the virtio drivers".into());
        }
    }
    let Some(initrd) = best.initrd.clone() else {
        d.warn(format!(
            "kernel {} has no initramfs: it must have the virtio drivers built in",
            best.version
        ));
        return Ok(());
    };
    let done = d.fs().lstat(&format!("{initrd}.pre-ferry"))?.is_some();
    let needed: Vec<String> = mods
        .iter()
        .copied()
        .filter(|m| best.has(m) && !best.is_builtin(m))
        .map(str::to_owned)
        .collect();
    let critical = needed.iter().any(|m| BOOT_CRITICAL.contains(&m.as_str()));
    if let Some(held) = best.initrd_drivers.as_ref().filter(|_| critical) {
        let lacks: Vec<&str> = needed
            .iter()
            .map(String::as_str)
            .filter(|m| BOOT_CRITICAL.contains(m) && !held.holds(m))
            .collect();
        match &held.error {
            Some(e) => d.note(format!(
                "the initramfs of kernel {} could not be listed: {e}",
                best.version
            )),
            None if lacks.is_empty() => d.note(format!(
                "the initramfs {} of kernel {} already holds its disk drivers ({})",
                held.path,
                best.version,
                held.modules.join(" ")
            )),
            None => d.note(format!(
                "the initramfs {} of kernel {} lacks {}: they are added to it",
                held.path,
                best.version,
                lacks.join(" ")
            )),
        }
    }
    if !critical {
        d.note(format!(
            "the disk drivers of kernel {} are built in: its initramfs needs no rebuild",
            best.version
        ));
    } else if !done {
        d.other(Change {
            path: initrd,
            kind: ChangeKind::InitramfsRebuild {
                kernel_version: best.version.clone(),
                generator: facts.initramfs,
                modules: needed,
            },
            reason: REASON.into(),
        });
    }
    Ok(())
}
