//! Hive bins and cells: the walk that checks every "hbin" and cell on open, and the cell
//! allocator (best fit over free cells, split and coalesced within a bin; a new bin is
//! appended when nothing fits). Offsets are relative to the first bin, as in the format.

use super::base::{put_u32, u32_at, BASE_SIZE};
use super::error::HiveError;
use std::collections::{BTreeMap, BTreeSet};

const BIN_HEADER: u32 = 32;
/// Hives are capped well under the format's 2 GiB (offsets are 31-bit in practice).
pub(crate) const MAX_HIVE: u64 = 1 << 30;

/// The hive's bytes with an index of its bins and cells.
pub(crate) struct Store {
    pub file: String,
    pub data: Vec<u8>,
    /// Every cell: offset -> size; allocated cells only (free ones are in `free`).
    used: BTreeMap<u32, u32>,
    free: BTreeMap<u32, u32>,
    /// The free cells by (size, offset), for best-fit allocation.
    by_size: BTreeSet<(u32, u32)>,
    /// Every bin: offset -> size.
    bins: BTreeMap<u32, u32>,
    bins_size: u32,
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    u32_at(b, at) as i32
}

impl Store {
    /// Walks the `bins_size` bytes of bins after the base block. Bytes after the bins (slack
    /// some hive files carry) are kept; new bins take their place first, so a hive that grows
    /// into its slack keeps its file size.
    pub fn open(file: &str, data: Vec<u8>, bins_size: u32) -> Result<Store, HiveError> {
        let mut s = Store {
            file: file.into(),
            data,
            used: BTreeMap::new(),
            free: BTreeMap::new(),
            by_size: BTreeSet::new(),
            bins: BTreeMap::new(),
            bins_size,
        };
        let mut at = 0u32;
        while at < bins_size {
            let p = BASE_SIZE + at as usize;
            let sig = &s.data[p..p + 4];
            if sig != b"hbin" {
                return Err(s.bad(&format!("hbin signature at offset {at:#x}"), super::error::escape(sig), "expected hbin"));
            }
            let (off, size) = (u32_at(&s.data, p + 4), u32_at(&s.data, p + 8));
            if off != at {
                return Err(s.bad(&format!("hbin offset at {at:#x}"), format!("{off:#x}"), "does not match its position"));
            }
            if size < 4096 || !size.is_multiple_of(4096) || size > bins_size - at {
                return Err(s.bad(&format!("hbin size at {at:#x}"), size.to_string(), "not a multiple of 4096 within the hive"));
            }
            let end = at + size;
            let mut c = at + BIN_HEADER;
            while c < end {
                let raw = i32_at(&s.data, BASE_SIZE + c as usize);
                let len = raw.unsigned_abs();
                if len < 8 || !len.is_multiple_of(8) || len > end - c {
                    return Err(s.bad(&format!("cell size at {c:#x}"), raw.to_string(), "not a multiple of 8 within its bin"));
                }
                if raw < 0 {
                    s.used.insert(c, len);
                } else {
                    s.free_insert(c, len);
                }
                c += len;
            }
            s.bins.insert(at, size);
            at = end;
        }
        Ok(s)
    }

    pub fn bins_size(&self) -> u32 {
        self.bins_size
    }

    pub fn bad(&self, field: &str, value: String, reason: &str) -> HiveError {
        HiveError::Invalid { file: self.file.clone(), field: field.into(), value, reason: reason.into() }
    }

    /// The data of the allocated cell at `off` (its size field excluded).
    pub fn cell(&self, off: u32) -> Result<&[u8], HiveError> {
        let len = *self.used.get(&off).ok_or_else(|| {
            self.bad("cell offset", format!("{off:#x}"), "does not point at an allocated cell")
        })?;
        let p = BASE_SIZE + off as usize;
        Ok(&self.data[p + 4..p + len as usize])
    }

    pub fn cell_mut(&mut self, off: u32) -> Result<&mut [u8], HiveError> {
        let len = *self.used.get(&off).ok_or_else(|| {
            self.bad("cell offset", format!("{off:#x}"), "does not point at an allocated cell")
        })?;
        let p = BASE_SIZE + off as usize;
        Ok(&mut self.data[p + 4..p + len as usize])
    }

    fn set_size(&mut self, off: u32, raw: i32) {
        put_u32(&mut self.data, BASE_SIZE + off as usize, raw as u32);
    }

    /// Allocates a zeroed cell with room for `len` bytes of data and returns its offset.
    pub fn alloc(&mut self, len: usize) -> Result<u32, HiveError> {
        let need = (len as u64 + 4).div_ceil(8) * 8;
        if need > MAX_HIVE {
            return Err(HiveError::TooLarge { file: self.file.clone(), limit: MAX_HIVE });
        }
        let need = need as u32;
        let found = self.by_size.range((need, 0)..).next().map(|&(s, o)| (o, s));
        let (off, size) = match found {
            Some(f) => f,
            None => self.grow(need)?,
        };
        self.free_remove(off);
        let take = if size - need >= 8 { need } else { size };
        if take < size {
            self.free_insert(off + take, size - take);
            self.set_size(off + take, (size - take) as i32);
        }
        self.used.insert(off, take);
        self.set_size(off, -(take as i32));
        let p = BASE_SIZE + off as usize;
        self.data[p + 4..p + take as usize].fill(0);
        Ok(off)
    }

    /// Appends a bin holding at least `need` bytes of cell, all of it one free cell.
    fn grow(&mut self, need: u32) -> Result<(u32, u32), HiveError> {
        let size = (need + BIN_HEADER).div_ceil(4096) * 4096;
        let at = self.bins_size;
        if at as u64 + size as u64 + BASE_SIZE as u64 > MAX_HIVE {
            return Err(HiveError::TooLarge { file: self.file.clone(), limit: MAX_HIVE });
        }
        let mut bin = vec![0u8; size as usize];
        bin[..4].copy_from_slice(b"hbin");
        put_u32(&mut bin, 4, at);
        put_u32(&mut bin, 8, size);
        bin[20..28].copy_from_slice(&super::base::filetime_now().to_le_bytes());
        put_u32(&mut bin, BIN_HEADER as usize, size - BIN_HEADER);
        let p = BASE_SIZE + at as usize;
        if self.data.len() < p + bin.len() {
            self.data.resize(p + bin.len(), 0);
        }
        self.data[p..p + bin.len()].copy_from_slice(&bin);
        self.bins.insert(at, size);
        self.bins_size += size;
        let cell = at + BIN_HEADER;
        self.free_insert(cell, size - BIN_HEADER);
        Ok((cell, size - BIN_HEADER))
    }

    /// Frees the allocated cell at `off`, merging it with free neighbours in its bin.
    pub fn free(&mut self, off: u32) -> Result<(), HiveError> {
        let Some(mut size) = self.used.remove(&off) else {
            return Err(self.bad("cell offset", format!("{off:#x}"), "freed but not allocated"));
        };
        let p = BASE_SIZE + off as usize;
        self.data[p + 4..p + size as usize].fill(0);
        let Some((&bin, &bin_size)) = self.bins.range(..=off).next_back() else {
            return Err(self.bad("cell offset", format!("{off:#x}"), "outside every hive bin"));
        };
        let mut start = off;
        if let Some((&prev, &psize)) = self.free.range(bin..off).next_back() {
            if prev + psize == off {
                self.free_remove(prev);
                start = prev;
                size += psize;
            }
        }
        let next = start + size;
        if next < bin + bin_size {
            if let Some(nsize) = self.free_remove(next) {
                size += nsize;
            }
        }
        self.free_insert(start, size);
        self.set_size(start, size as i32);
        Ok(())
    }

    fn free_insert(&mut self, off: u32, size: u32) {
        self.free.insert(off, size);
        self.by_size.insert((size, off));
    }

    fn free_remove(&mut self, off: u32) -> Option<u32> {
        let size = self.free.remove(&off)?;
        self.by_size.remove(&(size, off));
        Some(size)
    }

    /// Number of allocated cells (tests check frees balance allocations).
    pub fn used_cells(&self) -> usize {
        self.used.len()
    }
}
