//! Per-OS guest conversion steps, applied host-side.

pub mod initramfs;
pub mod kmod;
