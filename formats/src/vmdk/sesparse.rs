//! seSparse (vSphere 6.5+ "-sesparse.vmdk"): a const header (0xcafebabe), a volatile header
//! (0xcafecafe) whose journal must not need replay, u64 grain directory and tables.
use super::cache::GtCache;
use super::source::{le64, Source};
use super::sparse::SparseExtent;
use super::tables::{Flavour, Tables, MAX_GD_ENTRIES};
use crate::disk::DiskError;
use std::sync::Arc;

pub const CONST_MAGIC: u64 = 0xcafe_babe;
pub const VOLATILE_MAGIC: u64 = 0xcafe_cafe;
pub const VERSION: u64 = 0x2_0000_0001;
/// Grain size (sectors) and grain table size (sectors) seSparse always uses.
pub const GRAIN: u64 = 8;
pub const GT_SECTORS: u64 = 64;
const GTES: u64 = GT_SECTORS * 512 / 8;
/// 64 TiB, the format's limit.
const MAX_CAPACITY: u64 = 1 << 37;

/// The const header fields we use (sectors).
#[derive(Debug)]
pub struct ConstHeader {
    pub capacity: u64,
    pub volatile_offset: u64,
    pub gd_offset: u64,
    pub gd_size: u64,
    pub tables_offset: u64,
    pub grains_offset: u64,
}

/// Reads and checks both headers.
pub fn read_header(src: &dyn Source) -> Result<ConstHeader, DiskError> {
    let path = src.path();
    if src.len() < 512 {
        return Err(DiskError::invalid(
            path,
            "seSparse header",
            format!("{} bytes", src.len()),
            "file shorter than one sector",
        ));
    }
    let mut b = [0u8; 512];
    src.read_exact_at(&mut b, 0, "seSparse const header")?;
    let check = |field: &str, got: u64, want: u64| {
        if got == want {
            Ok(())
        } else {
            Err(DiskError::invalid(path, field, format!("{got:#x}"), format!("expected {want:#x}")))
        }
    };
    check("seSparse magic", le64(&b, 0), CONST_MAGIC)?;
    check("seSparse version", le64(&b, 8), VERSION)?;
    check("seSparse grain size", le64(&b, 24), GRAIN)?;
    check("seSparse grain table size", le64(&b, 32), GT_SECTORS)?;
    check("seSparse flags", le64(&b, 40), 0)?;
    let h = ConstHeader {
        capacity: le64(&b, 16),
        volatile_offset: le64(&b, 80),
        gd_offset: le64(&b, 128),
        gd_size: le64(&b, 136),
        tables_offset: le64(&b, 144),
        grains_offset: le64(&b, 192),
    };
    if h.capacity > MAX_CAPACITY {
        return Err(DiskError::invalid(path, "seSparse capacity", h.capacity, "larger than 64 TiB"));
    }
    let needed = h.capacity.div_ceil(GRAIN * GTES);
    let have = h.gd_size.saturating_mul(512 / 8);
    if have < needed || needed > MAX_GD_ENTRIES {
        return Err(DiskError::invalid(
            path,
            "seSparse grain directory size",
            h.gd_size,
            format!("capacity needs {needed} entries"),
        ));
    }
    for (field, v) in [("seSparse grain tables offset", h.tables_offset), ("seSparse grains offset", h.grains_offset)] {
        if v == 0 || v > (1 << 48) {
            return Err(DiskError::invalid(path, field, v, "must be a nonzero sector number"));
        }
    }
    let mut v = [0u8; 512];
    let voff = h.volatile_offset.saturating_mul(512);
    src.read_exact_at(&mut v, voff, "seSparse volatile header")?;
    check("seSparse volatile magic", le64(&v, 0), VOLATILE_MAGIC)?;
    let replay = le64(&v, 24);
    if replay != 0 {
        return Err(DiskError::invalid(
            path,
            "seSparse replayJournal",
            replay,
            "the journal needs replaying; open the disk in ESXi first",
        ));
    }
    Ok(h)
}

/// Opens a seSparse extent.
pub fn open(src: Arc<dyn Source>, cache: Arc<GtCache>, len: Option<u64>) -> Result<SparseExtent, DiskError> {
    let h = read_header(src.as_ref())?;
    let entries = h.capacity.div_ceil(GRAIN * GTES);
    let flavour = Flavour::SeSparse { tables_offset: h.tables_offset, grains_offset: h.grains_offset };
    let gd = h.gd_offset.saturating_mul(512);
    let tables = Tables::load(src, flavour, gd, entries, GTES, GRAIN, cache)?;
    let bytes = h.capacity * 512;
    Ok(SparseExtent::new(tables, bytes, len.unwrap_or(bytes), false, false))
}
