//! VHD (Virtual PC, Hyper-V, Azure, XenServer's blktap "vpc" in qemu's name), read-only:
//! fixed disks (footer at the end), dynamic disks (footer copy, dynamic header, block
//! allocation table) and differencing disks (per-block sector bitmaps over a parent found
//! through the parent locators). Sizes follow qemu's table of creator applications (CHS
//! for Virtual PC and old qemu, `current_size` for Hyper-V, disk2vhd and Xen).
mod footer;
mod parent;
mod reader;

pub use footer::DiskType;
pub use reader::{VhdImage, MAX_CHAIN};

use crate::disk::{BlockDevice, DiskError};
use std::path::Path;

/// Opens a VHD and, for a differencing disk, its parent chain, read-only.
pub fn open(path: &Path) -> Result<Box<dyn BlockDevice>, DiskError> {
    Ok(Box::new(VhdImage::open(path)?))
}

/// Whether a 512-byte block is a VHD footer (the `conectix` cookie).
pub fn is_footer(b: &[u8]) -> bool {
    b.starts_with(footer::COOKIE)
}

/// Parses `bytes` as a whole VHD file (without its parent) and reads everything it maps.
/// For fuzzing: any input must give `Ok` or an error, never a panic or an unbounded
/// allocation.
pub fn fuzz_image(bytes: &[u8]) -> Result<(), DiskError> {
    crate::disk::fuzz_file(bytes, "vhd", |file| {
        let img = VhdImage::open_no_parent(file)?;
        crate::disk::read_mapped(&img)
    })
}
