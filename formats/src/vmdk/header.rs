//! The KDMV sparse extent header (monolithicSparse, split sparse, streamOptimized), its
//! validation, and the streamOptimized footer (`gdOffset = GD_AT_END`).
use super::source::{le16, le32, le64, Source};
use super::tables::MAX_GD_ENTRIES;
use crate::disk::DiskError;
use std::path::Path;

pub const KDMV_MAGIC: &[u8; 4] = b"KDMV";
pub const GD_AT_END: u64 = u64::MAX;
pub const FLAG_RGD: u32 = 1 << 1;
pub const FLAG_ZERO_GRAIN: u32 = 1 << 2;
pub const FLAG_COMPRESSED: u32 = 1 << 16;
pub const FLAG_MARKERS: u32 = 1 << 17;
pub const FLAG_NL_TEST: u32 = 1;
/// Largest grain we accept: 2 MiB (VMware uses 64 KiB).
pub const MAX_GRAIN_SECTORS: u64 = 4096;
/// Largest capacity we accept: 2^46 sectors = 32 PiB... bounded further by the GD cap.
const MAX_CAPACITY: u64 = 1 << 46;

/// Marker types of streamOptimized files.
pub const MARKER_EOS: u32 = 0;
pub const MARKER_FOOTER: u32 = 3;

/// A decoded KDMV header (all offsets and sizes in sectors).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SparseHeader {
    pub version: u32,
    pub flags: u32,
    pub capacity: u64,
    pub grain_size: u64,
    pub desc_offset: u64,
    pub desc_size: u64,
    pub gtes_per_gt: u32,
    pub rgd_offset: u64,
    pub gd_offset: u64,
    pub overhead: u64,
    pub compress_algorithm: u16,
}

impl SparseHeader {
    /// Decodes the 512-byte header (magic included); checks magic and version only.
    pub fn decode(path: &Path, b: &[u8]) -> Result<Self, DiskError> {
        let magic = b.get(..4).unwrap_or_default();
        if magic != KDMV_MAGIC {
            return Err(DiskError::invalid(path, "magic", format!("{magic:02x?}"), "not a KDMV sparse extent"));
        }
        let h = SparseHeader {
            version: le32(b, 4),
            flags: le32(b, 8),
            capacity: le64(b, 12),
            grain_size: le64(b, 20),
            desc_offset: le64(b, 28),
            desc_size: le64(b, 36),
            gtes_per_gt: le32(b, 44),
            rgd_offset: le64(b, 48),
            gd_offset: le64(b, 56),
            overhead: le64(b, 64),
            compress_algorithm: le16(b, 77),
        };
        if !(1..=3).contains(&h.version) {
            return Err(DiskError::invalid(path, "version", h.version, "expected 1, 2 or 3"));
        }
        if h.flags & FLAG_NL_TEST != 0 && b.get(73..77) != Some(b"\n \r\n") {
            return Err(DiskError::invalid(
                path,
                "newline check bytes",
                format!("{:02x?}", b.get(73..77).unwrap_or_default()),
                "file was corrupted by a text-mode transfer",
            ));
        }
        Ok(h)
    }

    pub fn compressed(&self) -> bool {
        self.compress_algorithm == 1
    }

    pub fn markers(&self) -> bool {
        self.flags & FLAG_MARKERS != 0
    }

    /// Number of grain-directory entries the capacity needs.
    pub fn gd_entries(&self) -> u64 {
        let span = self.grain_size * u64::from(self.gtes_per_gt);
        self.capacity.div_ceil(span.max(1))
    }

    /// Bounds every field that sizes an allocation or a table walk.
    pub fn validate(&self, path: &Path, file_len: u64) -> Result<(), DiskError> {
        if self.compress_algorithm > 1 {
            return Err(DiskError::invalid(
                path,
                "compressAlgorithm",
                self.compress_algorithm,
                "only 0 (none) and 1 (deflate) exist",
            ));
        }
        if self.grain_size == 0 || self.grain_size > MAX_GRAIN_SECTORS {
            return Err(DiskError::invalid(path, "grainSize", self.grain_size, "must be 1..4096 sectors"));
        }
        if self.gtes_per_gt == 0 || self.gtes_per_gt > 512 {
            return Err(DiskError::invalid(path, "numGTEsPerGT", self.gtes_per_gt, "must be 1..512"));
        }
        if self.capacity > MAX_CAPACITY {
            return Err(DiskError::invalid(path, "capacity", self.capacity, "larger than 2^46 sectors"));
        }
        if self.gd_entries() > MAX_GD_ENTRIES {
            return Err(DiskError::invalid(path, "capacity", self.capacity, "needs more than 4194304 grain tables"));
        }
        let sectors = file_len.div_ceil(512);
        // A gdOffset (or rgdOffset) past the end of the file is tolerated, as qemu does:
        // the grain directory reads as zeros there (no grain tables), and the redundant
        // directory is never read.
        if self.overhead > sectors {
            return Err(DiskError::invalid(
                path,
                "overHead",
                self.overhead,
                format!("past end of file ({file_len} bytes)"),
            ));
        }
        Ok(())
    }

    /// Reads the header and, for `GD_AT_END`, the footer that supersedes it.
    pub fn read(src: &dyn Source) -> Result<Self, DiskError> {
        let path = src.path();
        let mut b = [0u8; 512];
        if src.len() < 512 {
            return Err(DiskError::invalid(
                path,
                "header",
                format!("{} bytes", src.len()),
                "file shorter than one sector",
            ));
        }
        src.read_exact_at(&mut b, 0, "header")?;
        let h = Self::decode(path, &b)?;
        if h.gd_offset != GD_AT_END || h.capacity == 0 {
            return Ok(h);
        }
        let footer = read_footer(src)?;
        if footer.gd_offset == GD_AT_END {
            return Err(DiskError::invalid(
                path,
                "footer gdOffset",
                "GD_AT_END",
                "the footer must give the grain directory",
            ));
        }
        Ok(footer)
    }
}

/// The footer of a VMware streamOptimized file: footer marker at EOF-1536, header copy at
/// EOF-1024, end-of-stream marker at EOF-512.
fn read_footer(src: &dyn Source) -> Result<SparseHeader, DiskError> {
    let path = src.path();
    let end = src.len().div_ceil(512) * 512;
    let Some(start) = end.checked_sub(1536) else {
        return Err(DiskError::invalid(path, "footer", format!("{} bytes", src.len()), "file too short for a footer"));
    };
    let mut f = vec![0u8; 1536];
    src.read_padded(&mut f, start, "footer")?;
    let (mval, msize, mtype) = (le64(&f, 0), le32(&f, 8), le32(&f, 12));
    if msize != 0 || mtype != MARKER_FOOTER {
        return Err(DiskError::invalid(
            path,
            "footer marker",
            format!("size {msize} type {mtype} at offset {start}"),
            "expected a FOOTER marker 1536 bytes before end of file",
        ));
    }
    let _ = mval;
    let (eval, esize, etype) = (le64(&f, 1024), le32(&f, 1032), le32(&f, 1036));
    if eval != 0 || esize != 0 || etype != MARKER_EOS {
        return Err(DiskError::invalid(
            path,
            "end-of-stream marker",
            format!("val {eval} size {esize} type {etype}"),
            "expected EOS in the last sector",
        ));
    }
    SparseHeader::decode(path, f.get(512..1024).unwrap_or_default())
}
