//! How the filesystem writers' errors read as [`GuestFsError`]s, for every mount type.

use super::GuestFsError;
use crate::fs::{FsError, PathProblem};

/// Whether `e` says the path (or a directory on it) does not exist.
pub(super) fn not_found(e: &FsError) -> bool {
    matches!(e.path_problem(), Some(PathProblem::NotFound | PathProblem::NotDirectory))
}

/// Maps a filesystem error onto the [`GuestFsError`] for the guest path `path`; `bad_name`
/// says why a name was refused (`not a valid file name on ext4`).
pub(super) fn fs_err(path: &str, op: &'static str, e: FsError, bad_name: &'static str) -> GuestFsError {
    let path = path.to_string();
    match e.path_problem() {
        Some(PathProblem::NotFound) => GuestFsError::NotFound { path },
        Some(PathProblem::NotDirectory) => GuestFsError::NotADirectory { path },
        Some(PathProblem::Exists) => GuestFsError::AlreadyExists { path },
        Some(PathProblem::SymlinkLoop) => GuestFsError::SymlinkLoop { path },
        Some(PathProblem::InvalidName | PathProblem::NameTooLong) => GuestFsError::InvalidPath { path, reason: bad_name },
        _ => match e {
            FsError::Unsupported { .. } => GuestFsError::Unsupported { path, reason: e.to_string() },
            _ => GuestFsError::Io { path, op, source: std::io::Error::other(e.to_string()) },
        },
    }
}
