//! Linux guest conversion to KVM/virtio: [`plan`] looks at the guest (read-only, through a
//! [`GuestFs`]) and returns a [`Plan`] of changes; [`apply`] writes them. Each step lives in its
//! own file:
//!
//! | step | file |
//! |------|------|
//! | kernel choice (Xen PV-only kernels refused), boot default | `kernel.rs`, `grub.rs` |
//! | block device names `sdX`/`hdX`/`xvdX`/`nvmeXn1` → `vdX` | `devices.rs` |
//! | console `hvc0`/`xvc0` → `ttyS0` | `console.rs` |
//! | hypervisor tools disabled | `tools.rs` |
//! | `modprobe` aliases, X11 driver | `modprobe.rs`, `xorg.rs` |
//! | network names | `network/` |
//! | SELinux relabel | `selinux.rs` |
//! | virtio in the initramfs (configuration + rebuild step) | `initramfs.rs` |

mod console;
pub mod detect;
mod devices;
pub mod diff;
mod draft;
pub mod facts;
mod grub;
mod grubmenu;
pub mod initramfs;
mod kernel;
mod modprobe;
mod network;
pub mod plan;
pub mod selinux;
pub mod text;
mod tools;
mod xorg;

pub use facts::*;
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
    Invalid { path: String, field: String, value: String, reason: String },
    /// A bug: an inconsistency inside the planner.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Plans the conversion of the guest mounted at `fs`.
pub fn plan(facts: &GuestFacts, target: &TargetLayout, fs: &dyn GuestFs) -> Result<Plan, LinuxError> {
    let mut d = Draft::new(fs);
    let best = kernel::choose(facts)?;
    d.note(format!("booting kernel {} ({})", best.version, best.vmlinuz));
    devices::plan(&mut d, facts, target)?;
    console::plan(&mut d, facts)?;
    tools::plan(&mut d)?;
    modprobe::plan(&mut d)?;
    xorg::plan(&mut d)?;
    network::plan(&mut d, target)?;
    selinux::plan(&mut d, facts)?;
    initramfs::plan(&mut d, facts, best)?;
    grub::plan_default(&mut d, facts, best)?;
    Ok(d.finish())
}
