//! Linux guest conversion to KVM/virtio: [`plan`] looks at the guest (read-only, through a
//! [`GuestFs`]) and returns a [`Plan`] of changes; [`apply`] writes them. Each step lives in its
//! own file:
//!
//! | step | file |
//! |------|------|
//! | kernel choice (Xen PV-only kernels refused), boot default | `kernel.rs`, `grub.rs` |
//! | block device names `sdX`/`hdX`/`xvdX`/`nvmeXn1` → `vdX` (SUSE snapper menus and `/etc/sysconfig/bootloader` included) | `devices.rs` |
//! | console `hvc0`/`xvc0` → `ttyS0` | `console.rs` |
//! | hypervisor tools disabled | `tools.rs` |
//! | `modprobe` aliases, X11 driver | `modprobe.rs`, `xorg.rs` |
//! | network names, udev persistent-net rules | `network/` |
//! | SELinux labels from the guest's policy, or a relabel at first boot | `selinux.rs`, `file_contexts.rs` |
//! | virtio in the initramfs (configuration, SUSE `INITRD_MODULES`, rebuild step) | `initramfs.rs` |
//! | UEFI: the removable-media fallback loader (`\EFI\BOOT\BOOTX64.EFI`) | `uefi.rs` |
//!
//! The caller fills [`GuestFacts`] (from the inspector, or [`detect::detect`]) and the
//! [`TargetLayout`] (disk order, NIC slots), prints the plan for `--dry-run` (its `Display`) or
//! serialises it for `--json`, then applies it and performs the returned
//! [`ChangeKind::InitramfsRebuild`] steps itself, then the [`ChangeKind::Label`] steps of the
//! images they wrote ([`plan::label`]):
//!
//! ```
//! use ferry_converters::guestfs::{GuestFs, MemFs};
//! use ferry_converters::linux::{self, DiskTarget, TargetLayout};
//!
//! let mut fs = MemFs::new();
//! fs.mkdir_p("/boot", 0o755)?;
//! fs.mkdir_p("/etc", 0o755)?;
//! fs.write_file("/etc/os-release", b"ID=debian\nVERSION_ID=12\n", 0o644)?;
//! fs.write_file("/boot/vmlinuz-6.1.0-27-amd64", b"", 0o644)?;
//! fs.write_file("/etc/fstab", b"/dev/sda1 / ext4 defaults 0 1\n", 0o644)?;
//! let facts = linux::detect::detect(&fs)?;
//! let layout = TargetLayout { disks: vec![DiskTarget { source: "sda".into() }], ..Default::default() };
//! let plan = linux::plan(&facts, &layout, &fs)?;
//! println!("{plan}");
//! let report = linux::apply(&plan, &mut fs)?;
//! assert!(report.deferred.is_empty()); // no initrd: nothing to rebuild
//! assert_eq!(fs.read_file("/etc/fstab")?, b"/dev/vda1 / ext4 defaults 0 1\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod console;
pub mod detect;
mod devices;
pub mod diff;
mod draft;
pub mod facts;
pub mod file_contexts;
mod grub;
mod grubcfg;
mod grubmenu;
pub mod initramfs;
mod kernel;
mod modprobe;
mod network;
pub mod plan;
pub mod rebuild;
pub mod selinux;
pub mod text;
mod tools;
mod uefi;
mod xorg;

pub use facts::*;
pub use kernel::choose as choose_kernel;
pub use kernel::VirtioNeed;
pub use plan::{apply, ApplyReport, Change, ChangeKind, Plan};

use crate::guestfs::{GuestFs, GuestFsError};
use draft::Draft;

/// Errors of Linux conversion.
#[derive(Debug, thiserror::Error)]
pub enum LinuxError {
    /// A guest file operation failed.
    #[error(transparent)]
    Fs(#[from] GuestFsError),
    /// No installed kernel can boot on KVM.
    #[error("no kernel that can boot on KVM: only Xen PV kernels are installed ({kernels})")]
    NoKvmKernel { kernels: String },
    /// No kernel at all was found.
    #[error("no kernel found in /boot")]
    NoKernel,
    /// The guest changed between planning and applying.
    #[error("{path}: changed since the plan was made; plan again")]
    Stale { path: String },
    /// A bad guest file that the conversion cannot work around.
    #[error("{path}: invalid {field} {value:?}: {reason}")]
    Invalid {
        path: String,
        field: String,
        value: String,
        reason: String,
    },
    /// A bug: an inconsistency inside the planner.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Plans the conversion of the guest mounted at `fs`.
pub fn plan(
    facts: &GuestFacts,
    target: &TargetLayout,
    fs: &dyn GuestFs,
) -> Result<Plan, LinuxError> {
    let mut d = Draft::new(fs);
    let best = kernel::choose(facts)?;
    d.note(format!(
        "booting kernel {} ({})",
        best.version, best.vmlinuz
    ));
    devices::plan(&mut d, facts, target)?;
    console::plan(&mut d, facts)?;
    tools::plan(&mut d)?;
    modprobe::plan(&mut d)?;
    xorg::plan(&mut d)?;
    network::plan(&mut d, facts, target)?;
    initramfs::plan(&mut d, facts, best)?;
    grub::plan_default(&mut d, facts, best)?;
    uefi::plan(&mut d, facts)?;
    selinux::plan(&mut d, facts)?;
    let need = kernel::virtio_need(facts, best);
    d.note(format!(
        "virtio devices: {} (kernel {}: {})",
        if need.transitional {
            "transitional"
        } else {
            "modern"
        },
        need.kernel,
        need.reason
    ));
    let mut plan = d.finish();
    plan.virtio = need;
    Ok(plan)
}
