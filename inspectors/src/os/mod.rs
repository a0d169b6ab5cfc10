//! Operating-system facts, as virt-inspector reports them: which filesystems are OS roots,
//! and for each root its type, distro, version, arch, hostname, packages, kernels,
//! bootloader, fstab, network configuration, hypervisor tools (Linux) or registry facts
//! (Windows).

mod arch;
pub mod linux;
pub mod vfs;
pub mod windows;
mod windows_services;
mod windows_state;

pub use windows_services::{WindowsService, WindowsUninstall};
pub use windows_state::WindowsState;

pub use vfs::GuestFs;

use serde::Serialize;

/// A known block device with its identifiers, for resolving fstab specs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KnownDevice {
    pub device: String,
    pub fstype: Option<String>,
    pub uuid: Option<String>,
    pub label: Option<String>,
    pub partuuid: Option<String>,
    pub partlabel: Option<String>,
}

/// One fstab line and the device it names, if found.
#[derive(Clone, Debug, Serialize)]
pub struct FstabEntry {
    pub spec: String,
    pub mountpoint: String,
    pub fstype: String,
    pub options: String,
    /// The device found for `spec`, `None` if no inspected device matches.
    pub device: Option<String>,
}

/// Whether a kernel has a driver, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Builtin,
    Module,
    Absent,
}

/// An installed kernel.
#[derive(Clone, Debug, Serialize)]
pub struct Kernel {
    pub version: String,
    pub vmlinuz: String,
    pub initrd: Option<String>,
    pub modules_dir: String,
    pub virtio_blk: Driver,
    pub virtio_net: Driver,
    pub virtio_pci: Driver,
    pub virtio_scsi: Driver,
    pub virtio_console: Driver,
    pub virtio_rng: Driver,
    pub virtio_balloon: Driver,
    /// Which virtio-pci interface the kernel drives, and why.
    pub virtio: linux::virtio::VirtioSupport,
    /// The virtio drivers its initramfs holds (`None`: no initramfs).
    pub initrd_virtio: Option<crate::initramfs::InitrdDrivers>,
    /// Built only for Xen paravirtualisation (CONFIG_X86_XEN / CONFIG_X86_64_XEN).
    pub xen_pv_only: bool,
}

/// A network configuration file and the interfaces it configures.
#[derive(Clone, Debug, Serialize)]
pub struct NetConfig {
    /// ifupdown, ifcfg, networkmanager, netplan, systemd-networkd.
    pub kind: String,
    pub file: String,
    pub interfaces: Vec<String>,
}

/// Everything found about one OS root.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OsInfo {
    /// The root filesystem's device.
    pub root: String,
    /// `linux` or `windows`.
    pub os_type: String,
    pub distro: String,
    pub product_name: String,
    pub product_variant: String,
    pub major_version: u32,
    pub minor_version: u32,
    pub arch: String,
    pub hostname: String,
    pub package_format: String,
    pub package_management: String,
    pub osinfo: String,
    /// `bios` or `uefi`.
    pub firmware: String,
    /// (mountpoint, device), shortest mountpoint first.
    pub mountpoints: Vec<(String, String)>,
    pub fstab: Vec<FstabEntry>,
    /// btrfs: the snapshots of the root subvolume (snapper's and others), never roots.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<String>,
    pub kernels: Vec<Kernel>,
    /// Kernel images in /boot without a /lib/modules directory.
    pub kernels_without_modules: Vec<String>,
    /// grub2, grub-legacy, extlinux.
    pub bootloader: Option<String>,
    pub bootloader_config: Option<String>,
    /// initramfs-tools, dracut, mkinitrd.
    pub initramfs_generator: Option<String>,
    pub network: Vec<NetConfig>,
    /// open-vm-tools, vmware-tools, xe-guest-utilities, virtualbox-guest-additions.
    pub hypervisor_tools: Vec<String>,
    /// enforcing, permissive, disabled; `None` when SELinux is not configured.
    pub selinux: Option<String>,
    /// Windows: `\Windows`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows_systemroot: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows_current_control_set: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows_edition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows_build: Option<String>,
    /// Windows: services and drivers that matter to conversion (storage, network,
    /// hypervisor, virtio), from the current control set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub windows_services: Vec<WindowsService>,
    /// Windows: Uninstall entries of hypervisor tools (VMware Tools, Xen PV drivers).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub windows_uninstall: Vec<WindowsUninstall>,
    /// Windows: where PnP binds boot devices: `DriverDatabase` (8 and later) or
    /// `CriticalDeviceDatabase`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows_device_database: Option<String>,
    /// Windows: dirty, hibernated, Fast Startup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows_state: Option<WindowsState>,
    /// Facts that could not be read, one line each.
    pub warnings: Vec<String>,
}

/// What kind of root a filesystem looks like, virt-inspector's rules.
pub fn root_kind(g: &GuestFs) -> Option<&'static str> {
    let bin = g.lstat("/bin").is_some();
    if g.is_dir("/etc") && bin && (g.exists("/etc/fstab") || g.exists("/etc/hosts")) {
        return Some("linux");
    }
    let win = g.find_nocase("/", "Windows")?;
    let sys = g.find_nocase(&win, "System32")?;
    let cfg = g.find_nocase(&sys, "config")?;
    g.is_dir(&cfg).then_some("windows")
}
