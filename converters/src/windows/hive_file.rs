//! A registry hive file on an NTFS volume edited in one step: read through the NTFS
//! writer, edited in memory by [`Hive`], written back (in place through its clusters when
//! its size in clusters is unchanged, else grown or shrunk by the writer).

use super::hive::{Hive, HiveError};
use crate::fs::ntfs::Ntfs;
use crate::fs::FsError;

/// Hives larger than this are refused (real SOFTWARE hives are tens of MiB).
const MAX_HIVE_FILE: u64 = 1 << 30;

/// Every way editing a hive file fails; one line naming the volume and the file.
#[derive(Debug, thiserror::Error)]
pub enum HiveFileError {
    #[error(transparent)]
    Fs(#[from] FsError),

    #[error(transparent)]
    Hive(#[from] HiveError),

    #[error("{volume}: {path}: no such hive file")]
    Missing { volume: String, path: String },

    #[error("{volume}: invalid driver name \"{name}\" (letters, digits, _ and -, at most 32)")]
    DriverName { volume: String, name: String },
}

/// Applies `edit` to the hive at `path` on the volume and writes it back.
pub fn edit_hive_file(
    w: &mut Ntfs<'_>,
    volume: &str,
    path: &str,
    edit: impl FnOnce(&mut Hive) -> Result<(), HiveError>,
) -> Result<(), HiveFileError> {
    let Some(old) = w.read_file(path, MAX_HIVE_FILE)? else {
        return Err(HiveFileError::Missing { volume: volume.into(), path: path.into() });
    };
    let mut hive = Hive::open(&format!("{volume}: {path}"), old)?;
    edit(&mut hive)?;
    w.write_file(path, &hive.to_bytes())?;
    Ok(())
}
