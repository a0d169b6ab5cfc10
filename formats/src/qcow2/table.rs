//! L1/L2 entry decoding and the bounded L2 table cache shared by concurrent readers.
use crate::disk::DiskError;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Bits 9–55: a host offset in an L1 or standard L2 entry.
pub const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// Bit 63: refcount is exactly one.
pub const COPIED: u64 = 1 << 63;
/// Bit 62: compressed cluster.
pub const COMPRESSED: u64 = 1 << 62;
/// Bit 0 of a standard cluster descriptor (v3): reads as zeros.
pub const ZERO: u64 = 1;

/// Where one guest cluster's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// Not in this image: read from the backing file, or zeros.
    Unallocated,
    /// Reads as zeros (v3 zero flag).
    Zero,
    /// Stored plain at this host offset.
    Data(u64),
    /// Compressed: `len` bytes from host byte `offset` (may run past the stream's end).
    Compressed { offset: u64, len: u64 },
}

/// Decodes an L2 entry of an image with `cluster_bits`, checking the host offset.
pub fn decode_l2(path: &Path, entry: u64, cluster_bits: u32, version: u32, file_len: u64) -> Result<Mapping, DiskError> {
    let cs = 1u64 << cluster_bits;
    if entry & COMPRESSED != 0 {
        let x = 62 - (cluster_bits - 8);
        let offset = entry & ((1u64 << x) - 1);
        let sectors = (entry >> x) & ((1u64 << (cluster_bits - 8)) - 1);
        let len = (sectors + 1) * 512 - (offset & 511);
        if offset >= file_len {
            return Err(DiskError::invalid(
                path,
                "compressed cluster offset",
                offset,
                format!("past end of file ({file_len} bytes)"),
            ));
        }
        return Ok(Mapping::Compressed { offset, len: len.min(file_len - offset) });
    }
    if version >= 3 && entry & ZERO != 0 {
        return Ok(Mapping::Zero);
    }
    let host = entry & OFFSET_MASK;
    if host == 0 {
        return Ok(Mapping::Unallocated);
    }
    if !host.is_multiple_of(cs) {
        return Err(DiskError::invalid(path, "L2 entry offset", host, format!("not aligned to the cluster size {cs}")));
    }
    if host >= file_len {
        return Err(DiskError::invalid(
            path,
            "data cluster offset",
            host,
            format!("past end of file ({file_len} bytes)"),
        ));
    }
    Ok(Mapping::Data(host))
}

/// Checks an L1 entry's L2 table offset; `None` when the L2 table is unallocated.
pub fn decode_l1(path: &Path, entry: u64, cs: u64, file_len: u64) -> Result<Option<u64>, DiskError> {
    let off = entry & OFFSET_MASK;
    if off == 0 {
        return Ok(None);
    }
    if !off.is_multiple_of(cs) || off.checked_add(cs).is_none_or(|e| e > file_len) {
        return Err(DiskError::invalid(
            path,
            "L2 table offset",
            off,
            format!("not a cluster-aligned table inside the file ({file_len} bytes)"),
        ));
    }
    Ok(Some(off))
}

/// Parses big-endian 64-bit entries.
pub fn be_entries(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            u64::from_be_bytes(a)
        })
        .collect()
}

/// Cached tables as `(host offset, table, last use)`, with the use counter.
type Slots = (u64, Vec<(u64, Arc<Vec<u64>>, u64)>);

/// A small LRU of L2 tables keyed by host offset, bounded in bytes.
pub struct L2Cache {
    slots: Mutex<Slots>,
    capacity: usize,
}

impl L2Cache {
    /// A cache of at most `bytes` of tables of `cluster_size` (at least 4 tables).
    pub fn new(bytes: u64, cluster_size: u64) -> Self {
        let capacity = (bytes / cluster_size).clamp(4, 256) as usize;
        L2Cache { slots: Mutex::new((0, Vec::with_capacity(capacity))), capacity }
    }

    /// The table at `offset`, loading it with `load` on a miss.
    pub fn get(
        &self,
        offset: u64,
        load: impl FnOnce() -> Result<Vec<u64>, DiskError>,
    ) -> Result<Arc<Vec<u64>>, DiskError> {
        {
            let mut guard = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let (tick, slots) = &mut *guard;
            *tick += 1;
            if let Some(slot) = slots.iter_mut().find(|s| s.0 == offset) {
                slot.2 = *tick;
                return Ok(slot.1.clone());
            }
        }
        let table = Arc::new(load()?);
        let mut guard = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let (tick, slots) = &mut *guard;
        *tick += 1;
        let tick = *tick;
        if slots.iter().any(|s| s.0 == offset) {
            return Ok(table);
        }
        if slots.len() >= self.capacity {
            if let Some(i) = slots.iter().enumerate().min_by_key(|(_, s)| s.2).map(|(i, _)| i) {
                slots.swap_remove(i);
            }
        }
        slots.push((offset, table.clone(), tick));
        Ok(table)
    }
}
