//! Grain directory + grain tables, shared by KDMV sparse, COWD and seSparse extents: they differ
//! only in entry width and in how a table entry encodes a grain.
use super::cache::GtCache;
use super::source::Source;
use crate::disk::DiskError;
use std::sync::Arc;

/// Most grain-directory entries we accept (32 MiB of decoded GD; covers 64 TiB seSparse).
pub const MAX_GD_ENTRIES: u64 = 4 << 20;

/// Most grain-directory entries all extents of one chain may hold together (64 MiB).
pub const MAX_CHAIN_GD_ENTRIES: u64 = 8 << 20;

/// How table entries are encoded.
#[derive(Clone, Copy, Debug)]
pub enum Flavour {
    /// KDMV: u32 GTEs holding grain sectors; 1 is a zeroed grain when `zero_grain` is set.
    Kdmv { zero_grain: bool },
    /// COWD: u32 GTEs holding grain sectors.
    Cowd,
    /// seSparse: u64 GD/GT entries with type nibbles.
    SeSparse { tables_offset: u64, grains_offset: u64 },
}

/// What one grain-table entry says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gte {
    /// Not allocated here: read the parent, or zeros.
    Unallocated,
    /// Reads as zeros, even over a parent.
    Zero,
    /// The grain starts at this sector of the extent file.
    At(u64),
}

const GTE_ZERO: u64 = u64::MAX;

/// The decoded directory of one sparse extent plus access to its tables.
pub struct Tables {
    pub src: Arc<dyn Source>,
    pub flavour: Flavour,
    /// Byte offset of each grain table in the file; 0 = no table.
    gd: Vec<u64>,
    pub gtes_per_gt: u64,
    pub grain_sectors: u64,
    cache: Arc<GtCache>,
    id: u64,
}

impl Tables {
    /// Reads and decodes the grain directory (`entries` entries at byte `gd_offset`).
    /// `entries` must already be bounded by [`MAX_GD_ENTRIES`].
    pub fn load(
        src: Arc<dyn Source>,
        flavour: Flavour,
        gd_offset: u64,
        entries: u64,
        gtes_per_gt: u64,
        grain_sectors: u64,
        cache: Arc<GtCache>,
    ) -> Result<Self, DiskError> {
        let path = src.path().to_path_buf();
        if entries > MAX_GD_ENTRIES {
            return Err(DiskError::invalid(&path, "grain directory entries", entries, "more than 4194304"));
        }
        let width: u64 = if matches!(flavour, Flavour::SeSparse { .. }) { 8 } else { 4 };
        let bytes = entries * width;
        // A KDMV directory running past the end of the file reads as zeros there, as in
        // qemu (which zero-fills reads past the end): those grain tables are absent.
        let kdmv = matches!(flavour, Flavour::Kdmv { .. });
        let avail = if kdmv { src.len().saturating_sub(gd_offset).min(bytes) } else { bytes };
        let end = gd_offset.checked_add(bytes);
        if end.is_none() || (!kdmv && end.is_some_and(|end| end > src.len())) {
            return Err(DiskError::invalid(
                &path,
                "grain directory offset",
                gd_offset / 512,
                format!("{entries} entries run past end of file ({} bytes)", src.len()),
            ));
        }
        cache.reserve_gd(entries).map_err(|total| {
            DiskError::invalid(
                &path,
                "grain directory entries",
                entries,
                format!("the chain's directories would hold {total} entries (at most {MAX_CHAIN_GD_ENTRIES})"),
            )
        })?;
        let mut raw = vec![0u8; bytes as usize];
        if avail > 0 {
            src.read_exact_at(&mut raw[..avail as usize], gd_offset, "grain directory")?;
        }
        let gt_bytes = gtes_per_gt * width;
        let mut gd = Vec::with_capacity(entries as usize);
        for (i, e) in raw.chunks_exact(width as usize).enumerate() {
            let off = match flavour {
                Flavour::Kdmv { .. } | Flavour::Cowd => u64::from(super::source::le32(e, 0)) * 512,
                Flavour::SeSparse { tables_offset, .. } => {
                    let v = super::source::le64(e, 0);
                    if v == 0 {
                        0
                    } else if v >> 32 != 0x1000_0000 {
                        return Err(DiskError::invalid(
                            &path,
                            format!("grain directory entry {i}"),
                            format!("{v:#x}"),
                            "not an allocated seSparse grain table",
                        ));
                    } else {
                        (tables_offset * 512).saturating_add((v & 0xffff_ffff) * gt_bytes)
                    }
                }
            };
            if off != 0 && off.checked_add(gt_bytes).is_none_or(|end| end > src.len()) {
                return Err(DiskError::invalid(
                    &path,
                    format!("grain directory entry {i}"),
                    off / 512,
                    format!("grain table runs past end of file ({} bytes)", src.len()),
                ));
            }
            gd.push(off);
        }
        let id = cache.new_id();
        Ok(Tables { src, flavour, gd, gtes_per_gt, grain_sectors, cache, id })
    }

    /// Bytes covered by one grain table.
    pub fn gt_span(&self) -> u64 {
        self.gtes_per_gt * self.grain_sectors * 512
    }

    /// Whether grain table `index` exists (false: the whole span is unallocated).
    pub fn has_table(&self, index: u64) -> bool {
        self.gd.get(index as usize).is_some_and(|&o| o != 0)
    }

    fn load_table(&self, off: u64) -> Result<Vec<u64>, DiskError> {
        let width = if matches!(self.flavour, Flavour::SeSparse { .. }) { 8 } else { 4 };
        let mut raw = vec![0u8; self.gtes_per_gt as usize * width];
        self.src.read_exact_at(&mut raw, off, "grain table")?;
        let n = self.gtes_per_gt as usize;
        // Fast paths: an empty table (common in qemu files, whose tables are preallocated),
        // and the u32 flavours decoded with a plain loop.
        const ZEROS: [u8; 512] = [0; 512];
        if raw.chunks(512).all(|c| c == &ZEROS[..c.len()]) {
            // An empty vector stands for a table of unallocated entries.
            return Ok(Vec::new());
        }
        if let Flavour::Kdmv { .. } | Flavour::Cowd = self.flavour {
            let zero_grain = matches!(self.flavour, Flavour::Kdmv { zero_grain: true });
            let mut out = Vec::with_capacity(n);
            for e in raw.chunks_exact(4) {
                let v = u64::from(u32::from_le_bytes([e[0], e[1], e[2], e[3]]));
                out.push(if zero_grain && v == 1 { GTE_ZERO } else { v });
            }
            return Ok(out);
        }
        let path = self.src.path();
        raw.chunks_exact(width)
            .map(|e| match self.flavour {
                Flavour::Kdmv { zero_grain } => {
                    let v = u64::from(super::source::le32(e, 0));
                    Ok(if zero_grain && v == 1 { GTE_ZERO } else { v })
                }
                Flavour::Cowd => Ok(u64::from(super::source::le32(e, 0))),
                Flavour::SeSparse { grains_offset, .. } => {
                    let v = super::source::le64(e, 0);
                    match v >> 60 {
                        0 if v == 0 => Ok(0),
                        1 | 2 => Ok(GTE_ZERO),
                        3 => {
                            let cluster = ((v >> 48) & 0xfff) | ((v & 0xffff_ffff_ffff) << 12);
                            cluster
                                .checked_mul(self.grain_sectors)
                                .and_then(|s| s.checked_add(grains_offset))
                                .filter(|&s| s != 0 && s < 1 << 54)
                                .ok_or_else(|| {
                                    DiskError::invalid(
                                        path,
                                        "grain table entry",
                                        format!("{v:#x}"),
                                        "grain offset overflows",
                                    )
                                })
                        }
                        _ => Err(DiskError::invalid(
                            path,
                            "grain table entry",
                            format!("{v:#x}"),
                            "unknown seSparse grain type",
                        )),
                    }
                }
            })
            .collect()
    }

    /// Grain table `gt`, decoded (cached), or `None` when the directory has no table. An
    /// empty table means every entry is unallocated.
    pub fn table(&self, gt: u64) -> Result<Option<Arc<[u64]>>, DiskError> {
        let Some(&off) = self.gd.get(gt as usize) else { return Ok(None) };
        if off == 0 {
            return Ok(None);
        }
        Ok(Some(self.cache.get_or_load(self.id, gt, || self.load_table(off))?))
    }

    /// Decodes one cached table entry.
    pub fn decode(v: u64) -> Gte {
        match v {
            0 => Gte::Unallocated,
            GTE_ZERO => Gte::Zero,
            s => Gte::At(s),
        }
    }

    /// The entry for grain number `grain` (counted from the start of the extent).
    pub fn lookup(&self, grain: u64) -> Result<Gte, DiskError> {
        let Some(table) = self.table(grain / self.gtes_per_gt)? else { return Ok(Gte::Unallocated) };
        Ok(Self::decode(table.get((grain % self.gtes_per_gt) as usize).copied().unwrap_or(0)))
    }
}
