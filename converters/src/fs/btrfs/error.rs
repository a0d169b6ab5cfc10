//! The writer's internal error, turned into [`FsError`] (naming the filesystem and path) at
//! the public boundary.

use crate::fs::{FsError, PathProblem};
use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Path(PathProblem),
    #[error("unsupported {0}")]
    Unsupported(String),
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
}

impl Error {
    pub fn into_fs(self, fs: &str, path: &str) -> FsError {
        match self {
            Error::Path(problem) => FsError::Path { fs: fs.into(), path: path.into(), problem },
            Error::Unsupported(what) => FsError::Unsupported { fs: fs.into(), what },
            Error::Corrupt(reason) => FsError::Invalid { fs: fs.into(), field: "btrfs metadata".into(), value: path.into(), reason },
            Error::Io(e) => FsError::Unclean { fs: fs.into(), reason: format!("btrfs {path}: {e}") },
        }
    }
}
