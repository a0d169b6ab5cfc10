//! A registry hive file on an NTFS volume edited in one step: read through the NTFS
//! writer, edited in memory by [`Hive`], written back in place. The hive must keep its file
//! size (edits within its free cells or its slack), the one NTFS write supported so far.

use super::hive::{Hive, HiveError};
use super::ntfs::{NtfsWriteError, NtfsWriter};

/// Hives larger than this are refused (real SOFTWARE hives are tens of MiB).
const MAX_HIVE_FILE: u64 = 1 << 30;

/// Every way editing a hive file fails; one line naming the volume and the file.
#[derive(Debug, thiserror::Error)]
pub enum HiveFileError {
    #[error(transparent)]
    Ntfs(#[from] NtfsWriteError),

    #[error(transparent)]
    Hive(#[from] HiveError),

    #[error("{volume}: {path}: no such hive file")]
    Missing { volume: String, path: String },

    #[error("{volume}: {path}: the edited hive needs {new} bytes, its file holds {old}; growing NTFS files is not supported yet")]
    Grew { volume: String, path: String, old: usize, new: usize },
}

/// Applies `edit` to the hive at `path` on the volume and writes it back in place.
pub fn edit_hive_file(
    w: &mut NtfsWriter<'_>,
    volume: &str,
    path: &str,
    edit: impl FnOnce(&mut Hive) -> Result<(), HiveError>,
) -> Result<(), HiveFileError> {
    let Some(old) = w.read_file(path, MAX_HIVE_FILE)? else {
        return Err(HiveFileError::Missing { volume: volume.into(), path: path.into() });
    };
    let len = old.len();
    let mut hive = Hive::open(&format!("{volume}: {path}"), old)?;
    edit(&mut hive)?;
    let new = hive.to_bytes();
    if new.len() != len {
        return Err(HiveFileError::Grew { volume: volume.into(), path: path.into(), old: len, new: new.len() });
    }
    w.replace_data(path, &new)?;
    Ok(())
}
