//! qcow2 v2/v3: reading (zero clusters, zlib/zstd compressed clusters, backing chains) and the
//! one-pass writer. Being written: see issue "Foundation".
use crate::disk::{BlockDevice, DiskError};
use std::path::Path;

/// Opens a qcow2 image and its backing chain, read-only.
pub fn open(path: &Path) -> Result<Box<dyn BlockDevice>, DiskError> {
    Err(DiskError::unsupported(path, "qcow2 reading is not built yet"))
}
