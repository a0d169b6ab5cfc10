//! Initramfs images: the reader and writer live in `ferry_inspectors::initramfs` (inspection
//! reads the same images) and are re-exported here; this module adds the injection of kernel
//! modules (virtio) into an initramfs-tools or dracut image.

pub mod inject;

pub use ferry_inspectors::initramfs::{compress, cpio, image};
pub use ferry_inspectors::initramfs::{Compression, Entry, Initramfs, Limits, Segment};
pub use inject::{add_modules, Flavor, InjectReport, VIRTIO_MODULES};

use crate::kmod::KmodError;

/// Errors of the initramfs injection: the image's own, or the guest's modules'.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    /// Reading or writing the image failed.
    #[error(transparent)]
    Image(#[from] ferry_inspectors::initramfs::InitramfsError),
    /// Reading the guest's modules failed.
    #[error(transparent)]
    Kmod(#[from] KmodError),
}

impl InitramfsError {
    /// Malformed input: one line naming the file, the field and the value.
    pub fn invalid(
        path: impl Into<String>,
        field: &'static str,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        InitramfsError::Image(ferry_inspectors::initramfs::InitramfsError::invalid(
            path, field, value, reason,
        ))
    }
}
