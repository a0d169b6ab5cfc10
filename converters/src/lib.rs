//! Per-OS guest conversion steps, applied host-side.

pub mod fs;
pub mod guestfs;
pub mod initramfs;
pub mod kmod;
pub mod linux;
pub mod lv;
pub mod windows;
