//! What the Linux conversion needs to know about the guest (filled by the inspector, or by
//! [`super::detect`]) and about the target machine (disk order, NIC slots).

pub use ferry_inspectors::initramfs::InitrdDrivers;
pub use ferry_inspectors::os::linux::virtio::{VirtioInterface, VirtioSupport};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Distribution family: decides file layouts (ifupdown vs ifcfg, initramfs-tools vs dracut).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DistroFamily {
    /// Debian, Ubuntu and derivatives.
    Debian,
    /// RHEL, CentOS, Fedora, Rocky, Alma, Oracle Linux.
    Rhel,
    /// SLES, openSUSE.
    Suse,
    /// Anything else.
    Other,
}

/// One installed kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelFacts {
    /// `uname -r` version, e.g. `6.1.0-27-amd64`.
    pub version: String,
    /// Guest path of the kernel image, e.g. `/boot/vmlinuz-6.1.0-27-amd64`.
    pub vmlinuz: String,
    /// Guest path of its initramfs, if there is one.
    pub initrd: Option<String>,
    /// Built for Xen paravirtualisation only (`CONFIG_X86_XEN` / `CONFIG_X86_64_XEN`): cannot boot on KVM.
    pub xen_pv_only: bool,
    /// The virtio drivers this kernel has, as a module or built in (`virtio_blk`, `virtio_pci`...).
    pub virtio: Vec<String>,
    /// Those of `virtio` that are built into the kernel image (they need no initramfs).
    #[serde(default)]
    pub builtin: Vec<String>,
    /// Which virtio-pci interface the kernel drives (modern, legacy, unknown, none) and why.
    #[serde(default)]
    pub virtio_pci: VirtioSupport,
    /// The virtio drivers its initramfs holds, when it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initrd_drivers: Option<InitrdDrivers>,
}

impl KernelFacts {
    /// Whether the kernel has `module` (module or built in).
    pub fn has(&self, module: &str) -> bool {
        self.virtio.iter().any(|m| m == module)
    }
    /// Whether `module` is built into the kernel.
    pub fn is_builtin(&self, module: &str) -> bool {
        self.builtin.iter().any(|m| m == module)
    }
    /// A debug build (`+debug`, `-debug`, `.debug` in the version).
    pub fn is_debug(&self) -> bool {
        self.version.contains("debug")
    }
}

/// Which boot loader configuration the guest uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootloaderKind {
    /// GRUB 2 (`grub.cfg`, `/etc/default/grub`).
    Grub2,
    /// GRUB legacy (`grub.conf` / `menu.lst`).
    GrubLegacy,
    /// None found.
    None,
}

/// The boot loader and its configuration files (guest paths).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bootloader {
    /// Kind.
    pub kind: BootloaderKind,
    /// The generated menu: `/boot/grub/grub.cfg`, `/boot/grub2/grub.cfg` or `/boot/grub/grub.conf`.
    pub config: Option<String>,
    /// GRUB 2 environment block (`grubenv`), holding `saved_entry`/`kernelopts`.
    pub grubenv: Option<String>,
    /// GRUB 2 Boot Loader Specification entries directory, when `GRUB_ENABLE_BLSCFG` is used.
    pub bls_dir: Option<String>,
    /// GRUB legacy `device.map`.
    pub device_map: Option<String>,
}

/// Who builds the guest's initramfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitramfsGenerator {
    /// Debian's initramfs-tools (`update-initramfs`).
    InitramfsTools,
    /// dracut.
    Dracut,
    /// Old Red Hat / SUSE `mkinitrd`.
    Mkinitrd,
    /// Not known.
    Unknown,
}

/// Firmware the guest boots with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    /// Legacy BIOS.
    Bios,
    /// UEFI.
    Uefi,
}

/// What the conversion needs to know about the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestFacts {
    /// Family.
    pub family: DistroFamily,
    /// os-release `ID` (`debian`, `rhel`, `centos`...).
    pub distro: String,
    /// os-release `VERSION_ID` (`12`, `9.4`, `6.10`).
    pub version: String,
    /// Installed kernels.
    pub kernels: Vec<KernelFacts>,
    /// Boot loader.
    pub bootloader: Bootloader,
    /// initramfs generator.
    pub initramfs: InitramfsGenerator,
    /// Firmware.
    pub firmware: Firmware,
    /// SELinux enabled (enforcing or permissive) in `/etc/selinux/config`.
    pub selinux: bool,
}

/// One source disk, in the order of the target's virtio-blk disks (first → `vda`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskTarget {
    /// The disk's name as the guest saw it: `sda`, `hdb`, `xvda`, `nvme0n1`.
    pub source: String,
}

/// One NIC of the target machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicTarget {
    /// The guest's name for it before conversion (`ens192`, `eth0`); when `None` it is found by
    /// MAC address in the guest's configuration, or taken as the only configured interface.
    pub old_name: Option<String>,
    /// MAC address (kept across the conversion), `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// The predictable name it gets on KVM from its PCI slot (q35 bus 0, slot N: `enp0sN`).
    pub new_name: String,
}

impl NicTarget {
    /// The predictable name of a NIC at PCI bus 0, slot `slot` (function 0).
    pub fn predictable_name(slot: u8) -> String {
        format!("enp0s{slot}")
    }
}

/// How to keep the network configuration working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetStrategy {
    /// Rewrite the guest's network configuration to the new predictable names.
    #[default]
    Rename,
    /// Keep the old names by pinning them to the MAC address with systemd `.link` files.
    PinOldName,
}

/// The target machine as far as the guest's configuration is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TargetLayout {
    /// Source disks in target order (index 0 becomes `vda`).
    pub disks: Vec<DiskTarget>,
    /// Filesystem identities by source device name (`sda1` → `UUID=0a1b...` or `LABEL=root`):
    /// where one is known it is written instead of the new `/dev/vdX` name.
    pub fs_ids: BTreeMap<String, String>,
    /// NICs.
    pub nics: Vec<NicTarget>,
    /// Network strategy.
    pub net: NetStrategy,
}
