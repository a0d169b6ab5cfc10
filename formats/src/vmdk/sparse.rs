//! Sparse extents (KDMV, COWD, seSparse): reading grains through the grain tables, whole
//! grains at a time, contiguous grains in one pread, compressed grains inflated once per read.
use super::cache::GtCache;
use super::extent::{push_hole, ExtentReader, Hole};
use super::header::{SparseHeader, FLAG_ZERO_GRAIN};
use super::source::{le32, Source};
use super::tables::{Flavour, Gte, Tables};
use crate::disk::{inflate_grain, DiskError, Extent, ExtentKind};
use std::path::PathBuf;
use std::sync::Arc;

/// Marker before each compressed grain: lba (u64) + compressed size (u32).
const GRAIN_MARKER: usize = 12;

/// Appends an extent to a map, merging with the previous one when adjacent and alike.
pub fn push_extent(out: &mut Vec<Extent>, offset: u64, length: u64, kind: ExtentKind) {
    if length == 0 {
        return;
    }
    if let Some(last) = out.last_mut() {
        if last.kind == kind && last.offset + last.length == offset {
            last.length += length;
            return;
        }
    }
    out.push(Extent { offset, length, kind });
}

fn kind_of(v: u64) -> ExtentKind {
    match Tables::decode(v) {
        Gte::Unallocated => ExtentKind::Unallocated,
        Gte::Zero => ExtentKind::Zero,
        Gte::At(_) => ExtentKind::Data,
    }
}

/// A sparse extent of any flavour.
pub struct SparseExtent {
    tables: Tables,
    /// Bytes the extent's own header covers (its capacity).
    capacity: u64,
    /// Bytes the extent takes in the virtual disk (the descriptor line's size).
    len: u64,
    grain: u64,
    compressed: bool,
    markers: bool,
}

impl SparseExtent {
    /// Wraps decoded tables; `len` is the extent's size in the disk (bytes).
    pub fn new(tables: Tables, capacity: u64, len: u64, compressed: bool, markers: bool) -> Self {
        let grain = tables.grain_sectors * 512;
        SparseExtent { tables, capacity, len, grain, compressed, markers }
    }

    /// Opens a KDMV sparse extent (header, optional footer, grain directory).
    pub fn open_kdmv(
        src: Arc<dyn Source>,
        cache: Arc<GtCache>,
        len: Option<u64>,
    ) -> Result<(Self, SparseHeader), DiskError> {
        let h = SparseHeader::read(src.as_ref())?;
        h.validate(src.path(), src.len())?;
        let flavour = Flavour::Kdmv { zero_grain: h.flags & FLAG_ZERO_GRAIN != 0 };
        let gd = match h.gd_offset.checked_mul(512) {
            Some(gd) => gd,
            None if h.gd_entries() == 0 => 0,
            None => return Err(DiskError::invalid(src.path(), "gdOffset", h.gd_offset, "not a sector of the file")),
        };
        let tables = Tables::load(src, flavour, gd, h.gd_entries(), u64::from(h.gtes_per_gt), h.grain_size, cache)?;
        let capacity = h.capacity * 512;
        let ext = SparseExtent::new(tables, capacity, len.unwrap_or(capacity), h.compressed(), h.markers());
        Ok((ext, h))
    }

    pub fn compressed(&self) -> bool {
        self.compressed
    }

    /// Bytes of grain `g` inside the capacity (the last grain may be partial).
    fn grain_len(&self, g: u64) -> u64 {
        self.grain.min(self.capacity.saturating_sub(g * self.grain))
    }

    /// Length of the run starting at `abs` that one lookup decides: the rest of the grain,
    /// or the rest of a missing grain table's span.
    fn step(&self, abs: u64, remaining: u64) -> (u64, bool) {
        if abs >= self.capacity {
            return (remaining, false);
        }
        let grain = abs / self.grain;
        let gt = grain / self.tables.gtes_per_gt;
        let limit = remaining.min(self.capacity - abs);
        if !self.tables.has_table(gt) {
            let end = (gt + 1).saturating_mul(self.tables.gt_span());
            return ((end - abs).min(limit), false);
        }
        ((self.grain - abs % self.grain).min(limit), true)
    }

    fn read_compressed(&self, sector: u64, grain: u64, in_grain: u64, out: &mut [u8]) -> Result<(), DiskError> {
        let src = &self.tables.src;
        let path = src.path();
        let base = sector * 512;
        let avail = src.len().saturating_sub(base);
        let max = 2 * self.grain + 4096;
        let hdr = if self.markers { GRAIN_MARKER as u64 } else { 0 };
        // With a marker the size is known after the first read; without one the grain's
        // compressed length is unknown: read up to twice the grain and let inflate stop.
        let guess = if self.markers { hdr + self.grain } else { 2 * self.grain };
        let first = guess.min(avail).min(max);
        if first <= hdr {
            return Err(DiskError::invalid(
                path,
                "compressed grain sector",
                sector,
                format!("past end of file ({} bytes)", src.len()),
            ));
        }
        let mut data = vec![0u8; first as usize];
        src.read_exact_at(&mut data, base, "compressed grain")?;
        if self.markers {
            let size = u64::from(le32(&data, 8));
            if size == 0 || size > max || hdr + size > avail {
                return Err(DiskError::invalid(
                    path,
                    "compressed grain size",
                    size,
                    format!("at sector {sector}: zero, over {max} bytes, or past end of file"),
                ));
            }
            let total = (hdr + size) as usize;
            if total > data.len() {
                let old = data.len();
                data.resize(total, 0);
                src.read_exact_at(&mut data[old..], base + old as u64, "compressed grain")?;
            }
            data.truncate(total);
        }
        self.inflate_into(data.get(hdr as usize..).unwrap_or_default(), grain, in_grain, out)
    }

    /// Inflates grain `grain` from `payload` and copies `out.len()` bytes from `in_grain`;
    /// a whole grain is inflated straight into `out`.
    fn inflate_into(&self, payload: &[u8], grain: u64, in_grain: u64, out: &mut [u8]) -> Result<(), DiskError> {
        let path = self.tables.src.path();
        let glen = self.grain_len(grain) as usize;
        let lba = grain * self.tables.grain_sectors;
        if in_grain == 0 && out.len() == glen {
            return inflate_grain(path, lba, payload, out);
        }
        let mut tmp = vec![0u8; glen];
        inflate_grain(path, lba, payload, &mut tmp)?;
        let s = in_grain as usize;
        out.copy_from_slice(tmp.get(s..s + out.len()).unwrap_or_default());
        Ok(())
    }

    /// Reads the compressed grain at `pos` of `buf` and the following ones the request covers
    /// while they are stored in increasing order (as every writer lays them out), with one
    /// pread for the whole run; returns the bytes of `buf` filled.
    fn read_compressed_run(&self, buf: &mut [u8], pos: u64, off: u64, first: u64) -> Result<u64, DiskError> {
        const MAX_SPAN: u64 = 8 << 20;
        let total = buf.len() as u64;
        // (grain, sector, position in buf, length)
        let mut run: Vec<(u64, u64, u64, u64)> = Vec::new();
        let (mut p, mut sector) = (pos, first);
        loop {
            let (n, _) = self.step(off + p, total - p);
            run.push(((off + p) / self.grain, sector, p, n));
            p += n;
            if p >= total || !self.step(off + p, total - p).1 {
                break;
            }
            match self.tables.lookup((off + p) / self.grain)? {
                Gte::At(s) if s > sector && (s - first) * 512 < MAX_SPAN => sector = s,
                _ => break,
            }
        }
        let src = &self.tables.src;
        let (hdr, base) = (if self.markers { GRAIN_MARKER } else { 0 }, first * 512);
        let guess = if self.markers { GRAIN_MARKER as u64 + self.grain } else { 2 * self.grain };
        let end = (sector * 512 + guess).min(src.len());
        if run.len() == 1 || end <= base {
            let (grain, sector, p, n) = run[0];
            self.read_compressed(sector, grain, (off + p) % self.grain, &mut buf[p as usize..(p + n) as usize])?;
            return Ok(n);
        }
        let mut data = vec![0u8; (end - base) as usize];
        src.read_exact_at(&mut data, base, "compressed grains")?;
        for (i, &(grain, sector, p, n)) in run.iter().enumerate() {
            let out = &mut buf[p as usize..(p + n) as usize];
            let in_grain = (off + p) % self.grain;
            let start = (sector * 512 - base) as usize;
            let payload = if self.markers {
                let size = le32(&data, start + 8) as usize;
                data.get(start + hdr..start + hdr + size).filter(|_| size != 0)
            } else {
                let limit = run.get(i + 1).map_or(data.len(), |r| (r.1 * 512 - base) as usize);
                data.get(start..limit.min(start + 2 * self.grain as usize))
            };
            match payload {
                Some(payload) => self.inflate_into(payload, grain, in_grain, out)?,
                // Larger than the guess, or broken: the single-grain path reads or reports it.
                None => self.read_compressed(sector, grain, in_grain, out)?,
            }
        }
        Ok(p - pos)
    }
}

impl ExtentReader for SparseExtent {
    fn len(&self) -> u64 {
        self.len
    }

    fn read(&self, buf: &mut [u8], off: u64, holes: &mut Vec<Hole>) -> Result<(), DiskError> {
        let total = buf.len() as u64;
        let mut pos = 0u64;
        while pos < total {
            let abs = off + pos;
            let (n, mapped) = self.step(abs, total - pos);
            let grain = abs / self.grain;
            let gte = if mapped { self.tables.lookup(grain)? } else { Gte::Unallocated };
            let mut n = n;
            let range = pos as usize..(pos + n) as usize;
            match gte {
                Gte::Unallocated => {
                    buf[range].fill(0);
                    push_hole(holes, abs, n);
                }
                Gte::Zero => buf[range].fill(0),
                Gte::At(sector) if self.compressed => n = self.read_compressed_run(buf, pos, off, sector)?,
                Gte::At(sector) => {
                    // Extend over following grains stored right after this one.
                    let gs = self.tables.grain_sectors;
                    let (mut next, mut expect) = (grain + 1, sector + gs);
                    while pos + n < total {
                        let (m, mapped) = self.step(abs + n, total - pos - n);
                        if !mapped || self.tables.lookup(next)? != Gte::At(expect) {
                            break;
                        }
                        n += m;
                        next += 1;
                        expect += gs;
                    }
                    let at = sector * 512 + abs % self.grain;
                    self.tables.src.read_exact_at(&mut buf[pos as usize..(pos + n) as usize], at, "grain")?;
                }
            }
            pos += n;
        }
        Ok(())
    }

    fn map(&self, off: u64, len: u64, out: &mut Vec<Extent>) -> Result<(), DiskError> {
        // One table fetch per grain table, not per grain: maps of multi-TiB disks stay fast.
        let (end, gtes) = (off + len, self.tables.gtes_per_gt);
        let mut abs = off;
        while abs < end {
            if abs >= self.capacity {
                push_extent(out, abs, end - abs, ExtentKind::Unallocated);
                break;
            }
            let limit = end.min(self.capacity);
            let gt = abs / self.grain / gtes;
            let gt_end = (gt + 1).saturating_mul(self.tables.gt_span()).min(limit);
            let table = match self.tables.table(gt)? {
                Some(t) if !t.is_empty() => t,
                _ => {
                    push_extent(out, abs, gt_end - abs, ExtentKind::Unallocated);
                    abs = gt_end;
                    continue;
                }
            };
            // Runs of entries of one kind at a time.
            let base = gt * gtes;
            let bound = (gt_end.div_ceil(self.grain) - base) as usize;
            let mut i = (abs / self.grain - base) as usize;
            while abs < gt_end {
                let k = kind_of(table.get(i).copied().unwrap_or(0));
                let mut j = i + 1;
                while j < bound && kind_of(table.get(j).copied().unwrap_or(0)) == k {
                    j += 1;
                }
                let run_end = ((base + j as u64) * self.grain).min(gt_end);
                push_extent(out, abs, run_end - abs, k);
                abs = run_end;
                i = j;
            }
        }
        Ok(())
    }

    fn files(&self) -> Vec<(PathBuf, u64)> {
        vec![(self.tables.src.path().to_path_buf(), self.tables.src.allocated())]
    }

    fn grain(&self) -> Option<u64> {
        Some(self.grain)
    }
}
