//! Initramfs images as the Linux kernel reads them: a sequence of segments, each a cpio
//! "newc" archive either stored (the early-microcode prefix) or compressed (gzip, xz, lzma,
//! zstd, lz4 legacy), with zero padding between them; and which virtio drivers they hold.
//! Converters rewrite images through the same types (`ferry_converters::initramfs`).

pub mod compress;
pub mod cpio;
pub mod image;
pub mod modules;

pub use compress::Compression;
pub use cpio::Entry;
pub use image::{Initramfs, Segment};
pub use modules::{virtio_drivers, InitrdDrivers};

/// Bounds on what parsing an image may allocate.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest decompressed size of one segment.
    pub max_segment: u64,
    /// Largest total decompressed size of the image.
    pub max_total: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_segment: 1 << 30,
            max_total: 2 << 30,
        }
    }
}

/// Errors of the initramfs readers and writers.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    /// Malformed input: one line naming the file, the field and the value.
    #[error("{path}: invalid {field} {value}: {reason}")]
    Invalid {
        /// The image (or member) being read.
        path: String,
        /// The field or structure that is wrong.
        field: &'static str,
        /// The offending value.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// A format the kernel may accept but this crate does not handle.
    #[error("{path}: {what} is not supported")]
    Unsupported {
        /// The image.
        path: String,
        /// What is not supported.
        what: String,
    },
    /// Compressing or decompressing failed.
    #[error("{path}: {what}: {source}")]
    Codec {
        /// The image.
        path: String,
        /// The operation.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl InitramfsError {
    /// Builds [`InitramfsError::Invalid`].
    pub fn invalid(
        path: impl Into<String>,
        field: &'static str,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        InitramfsError::Invalid {
            path: path.into(),
            field,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}
