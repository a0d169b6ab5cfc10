//! VMDK: every flavour a user brings (sparse, flat, split, stream, ESXi descriptors, COWD and
//! seSparse deltas, snapshot chains). Being written: see issue "Foundation".
use crate::disk::{BlockDevice, DiskError};
use std::path::Path;

/// Opens a VMDK (descriptor or monolithic file) and its whole parent chain, read-only.
pub fn open(path: &Path) -> Result<Box<dyn BlockDevice>, DiskError> {
    Err(DiskError::unsupported(path, "VMDK reading is not built yet"))
}
