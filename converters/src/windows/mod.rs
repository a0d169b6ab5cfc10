//! Host-side Windows conversion pieces: registry hives edited in place (`hive`), joined
//! with the NTFS writer ([`crate::fs::ntfs`]) by [`edit_hive_file`]; a boot-start driver
//! installed with both ([`install_boot_driver`]); the conversion plan ([`plan`]): virtio-win
//! drivers chosen by version and architecture, copied, bound and made boot-start; the
//! first-boot service ([`firstboot`]) that finishes the job inside the guest; the UEFI
//! fallback loader on the ESP ([`esp`]).

mod boot_driver;
pub mod esp;
pub mod firstboot;
pub mod hive;
mod hive_file;
pub mod plan;

pub use boot_driver::install_boot_driver;
pub use hive_file::{edit_hive_file, HiveFileError};
pub use plan::{WindowsPlan, WindowsPlanError};
