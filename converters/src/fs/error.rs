//! Errors of host-side filesystem editing.

use ferry_formats::disk::DiskError;

/// What went wrong with a path operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathProblem {
    NotFound,
    Exists,
    NotDirectory,
    IsDirectory,
    NotEmpty,
    SymlinkLoop,
    NameTooLong,
    TooLarge,
    InvalidName,
    IntoItself,
}

impl std::fmt::Display for PathProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PathProblem::NotFound => "no such file or directory",
            PathProblem::Exists => "already exists",
            PathProblem::NotDirectory => "not a directory",
            PathProblem::IsDirectory => "is a directory",
            PathProblem::NotEmpty => "directory not empty",
            PathProblem::SymlinkLoop => "too many levels of symbolic links",
            PathProblem::NameTooLong => "file name too long",
            PathProblem::TooLarge => "file too large",
            PathProblem::InvalidName => "invalid file name",
            PathProblem::IntoItself => "cannot move a directory into itself",
        })
    }
}

/// Every way reading or editing a guest filesystem can fail; each message is one line that
/// names the filesystem (device and partition) and, for bad metadata, the field and value.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error(transparent)]
    Disk(#[from] DiskError),

    #[error("{fs}: invalid {field} {value}: {reason}")]
    Invalid { fs: String, field: String, value: String, reason: String },

    #[error("{fs}: filesystem journal needs recovery: shut the guest down cleanly")]
    NeedsRecovery { fs: String },

    #[error("the XFS log of {fs} needs recovery: shut the guest down cleanly")]
    LogNeedsRecovery { fs: String },

    #[error("{fs}: {reason}")]
    Unclean { fs: String, reason: String },

    #[error("{fs}: unsupported {what}")]
    Unsupported { fs: String, what: String },

    #[error("{fs}: {path}: {problem}")]
    Path { fs: String, path: String, problem: PathProblem },

    #[error("{fs}: no space left on the filesystem for {what}")]
    NoSpace { fs: String, what: String },

    #[error("{fs}: {message}")]
    Fat { fs: String, message: String },
}

impl FsError {
    /// The problem, for path errors.
    pub fn path_problem(&self) -> Option<PathProblem> {
        match self {
            FsError::Path { problem, .. } => Some(*problem),
            _ => None,
        }
    }
}
