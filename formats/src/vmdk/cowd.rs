//! COWD (vmfsSparse, the ESX "-delta.vmdk" of VMDK3): a 2048-byte header, u32 grain directory
//! at `gdOffset`, 4096-entry grain tables, grain sizes in sectors.
use super::cache::GtCache;
use super::header::MAX_GRAIN_SECTORS;
use super::source::{le32, Source};
use super::sparse::SparseExtent;
use super::tables::{Flavour, Tables, MAX_GD_ENTRIES};
use crate::disk::DiskError;
use std::sync::Arc;

pub const COWD_MAGIC: &[u8; 4] = b"COWD";
/// Entries per COWD grain table.
pub const COWD_GTES: u64 = 4096;
/// Size of the COWD header.
pub const COWD_HEADER: u64 = 2048;

/// The fields of a COWD header we use.
#[derive(Debug)]
pub struct CowdHeader {
    pub version: u32,
    pub num_sectors: u32,
    pub grain_size: u32,
    pub gd_offset: u32,
    pub num_gd_entries: u32,
}

/// Reads and checks a COWD header.
pub fn read_header(src: &dyn Source) -> Result<CowdHeader, DiskError> {
    let path = src.path();
    if src.len() < COWD_HEADER {
        return Err(DiskError::invalid(
            path,
            "COWD header",
            format!("{} bytes", src.len()),
            "file shorter than 2048 bytes",
        ));
    }
    let mut b = vec![0u8; COWD_HEADER as usize];
    src.read_exact_at(&mut b, 0, "COWD header")?;
    if b.get(..4) != Some(COWD_MAGIC) {
        return Err(DiskError::invalid(
            path,
            "magic",
            format!("{:02x?}", b.get(..4).unwrap_or_default()),
            "not a COWD extent",
        ));
    }
    let h = CowdHeader {
        version: le32(&b, 4),
        num_sectors: le32(&b, 12),
        grain_size: le32(&b, 16),
        gd_offset: le32(&b, 20),
        num_gd_entries: le32(&b, 24),
    };
    if h.version != 1 {
        return Err(DiskError::invalid(path, "COWD version", h.version, "expected 1"));
    }
    if h.grain_size == 0 || u64::from(h.grain_size) > MAX_GRAIN_SECTORS {
        return Err(DiskError::invalid(path, "COWD grainSize", h.grain_size, "must be 1..4096 sectors"));
    }
    let needed = u64::from(h.num_sectors).div_ceil(u64::from(h.grain_size) * COWD_GTES);
    if u64::from(h.num_gd_entries) < needed || u64::from(h.num_gd_entries) > MAX_GD_ENTRIES {
        return Err(DiskError::invalid(
            path,
            "COWD numGDEntries",
            h.num_gd_entries,
            format!("capacity needs {needed} (at most 4194304)"),
        ));
    }
    if u64::from(h.gd_offset) * 512 < COWD_HEADER || u64::from(h.gd_offset) * 512 >= src.len() {
        return Err(DiskError::invalid(
            path,
            "COWD gdOffset",
            h.gd_offset,
            format!("outside the file ({} bytes)", src.len()),
        ));
    }
    Ok(h)
}

/// Opens a COWD extent; `len` is its size in the disk when a descriptor gives one.
pub fn open(src: Arc<dyn Source>, cache: Arc<GtCache>, len: Option<u64>) -> Result<SparseExtent, DiskError> {
    let h = read_header(src.as_ref())?;
    let grain = u64::from(h.grain_size);
    let capacity = u64::from(h.num_sectors);
    let entries = capacity.div_ceil(grain * COWD_GTES);
    let tables = Tables::load(src, Flavour::Cowd, u64::from(h.gd_offset) * 512, entries, COWD_GTES, grain, cache)?;
    let bytes = capacity * 512;
    Ok(SparseExtent::new(tables, bytes, len.unwrap_or(bytes), false, false))
}
