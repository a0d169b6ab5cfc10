use std::path::{Path, PathBuf};

/// Every way reading or writing a disk image can fail. Each message is one line naming the
/// file, and for bad input the field and the value.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{}: {op}: {source}", path.display())]
    Io { path: PathBuf, op: &'static str, source: std::io::Error },

    #[error("{}: invalid {field} {value}: {reason}", path.display())]
    Invalid { path: PathBuf, field: String, value: String, reason: String },

    #[error("{}: unsupported {what}", path.display())]
    Unsupported { path: PathBuf, what: String },

    /// An operation refused to protect data (an output that is a source).
    #[error("{}: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },

    #[error("{}: range {offset}+{length} is outside the disk ({size} bytes)", path.display())]
    OutOfRange { path: PathBuf, offset: u64, length: u64, size: u64 },
}

impl DiskError {
    pub fn io(path: &Path, op: &'static str, source: std::io::Error) -> Self {
        DiskError::Io { path: path.to_path_buf(), op, source }
    }

    pub fn invalid(
        path: &Path,
        field: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        DiskError::Invalid {
            path: path.to_path_buf(),
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    pub fn refused(path: &Path, reason: impl Into<String>) -> Self {
        DiskError::Refused { path: path.to_path_buf(), reason: reason.into() }
    }

    pub fn unsupported(path: &Path, what: impl Into<String>) -> Self {
        DiskError::Unsupported { path: path.to_path_buf(), what: what.into() }
    }
}
