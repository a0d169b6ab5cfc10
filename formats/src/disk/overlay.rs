//! A copy-on-write overlay over a read-only source device.
//!
//! Guest edits made during conversion land here; the source is never written. Written data
//! lives in a sparse temporary file at the same offsets as on the virtual disk, and an
//! in-memory map (one entry per written 4 KiB block, so memory grows with what was written,
//! never with the disk's size) records which blocks the overlay holds. Reads merge overlay
//! over source, and [`map`](BlockDevice::map) reports overlay blocks as data (or zero, after a
//! discard), so a copy can stream source + overlay to the output in one pass.

use super::{check_range, coalesce, BlockDevice, DiskError, Extent, ExtentKind, ImageInfo, WritableDevice};
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The overlay's unit: writes smaller than this copy the rest of the block from the source.
pub const OVERLAY_BLOCK: u64 = 4096;

/// What the overlay holds for one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// The block's bytes are in the temporary file.
    Data,
    /// The block was discarded: it reads as zeros.
    Zero,
}

/// A writable view of `source` whose writes go to a temporary file.
#[derive(Debug)]
pub struct CowOverlay<S: BlockDevice> {
    source: S,
    temp: File,
    name: PathBuf,
    slots: RwLock<BTreeMap<u64, Slot>>,
}

impl<S: BlockDevice> CowOverlay<S> {
    /// An overlay over `source` whose data spills to an anonymous file in the system temp dir.
    pub fn new(source: S) -> Result<Self, DiskError> {
        let name = overlay_name(&source);
        let temp = tempfile::tempfile().map_err(|e| DiskError::io(&name, "create overlay file", e))?;
        Ok(Self::with_file(source, temp, name))
    }

    /// An overlay whose anonymous temporary file lives in `dir`.
    pub fn new_in(source: S, dir: &Path) -> Result<Self, DiskError> {
        let name = overlay_name(&source);
        let temp = tempfile::tempfile_in(dir).map_err(|e| DiskError::io(dir, "create overlay file", e))?;
        Ok(Self::with_file(source, temp, name))
    }

    fn with_file(source: S, temp: File, name: PathBuf) -> Self {
        CowOverlay { source, temp, name, slots: RwLock::new(BTreeMap::new()) }
    }

    /// The device under the overlay.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Bytes of the virtual disk the overlay holds (written or discarded blocks).
    pub fn overlay_bytes(&self) -> u64 {
        self.read_slots().len() as u64 * OVERLAY_BLOCK
    }

    /// The ranges the overlay holds, in order, adjacent ones merged: `Data` for written
    /// blocks, `Zero` for discarded ones. What an in-place conversion writes back.
    pub fn edited(&self) -> Vec<Extent> {
        let slots = self.read_slots();
        let extents = slots
            .iter()
            .map(|(&i, &slot)| Extent {
                offset: i * OVERLAY_BLOCK,
                length: self.block_len(i),
                kind: if slot == Slot::Data { ExtentKind::Data } else { ExtentKind::Zero },
            })
            .collect();
        coalesce(extents)
    }

    fn read_slots(&self) -> RwLockReadGuard<'_, BTreeMap<u64, Slot>> {
        // A panic while holding the lock cannot leave the map half-updated (each update is
        // one insert), so a poisoned lock is still consistent.
        self.slots.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_slots(&self) -> RwLockWriteGuard<'_, BTreeMap<u64, Slot>> {
        self.slots.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Length of block `index` (the last block of an odd-sized device is short).
    fn block_len(&self, index: u64) -> u64 {
        let start = index * OVERLAY_BLOCK;
        OVERLAY_BLOCK.min(self.source.size().saturating_sub(start))
    }

    fn temp_read(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        // The temp file is sparse and may end before `offset`: bytes past its end are zeros.
        let mut done = 0;
        while done < buf.len() {
            let n = self
                .temp
                .read_at(&mut buf[done..], offset + done as u64)
                .map_err(|e| DiskError::io(&self.name, "read overlay", e))?;
            if n == 0 {
                buf[done..].fill(0);
                break;
            }
            done += n;
        }
        Ok(())
    }

    fn temp_write(&self, buf: &[u8], offset: u64) -> Result<(), DiskError> {
        self.temp.write_all_at(buf, offset).map_err(|e| DiskError::io(&self.name, "write overlay", e))
    }

    /// Current bytes of a whole block, from whichever layer holds it.
    fn block_bytes(&self, slots: &BTreeMap<u64, Slot>, index: u64) -> Result<Vec<u8>, DiskError> {
        let len = self.block_len(index) as usize;
        let mut buf = vec![0u8; len];
        match slots.get(&index) {
            Some(Slot::Data) => self.temp_read(&mut buf, index * OVERLAY_BLOCK)?,
            Some(Slot::Zero) => {}
            None => self.source.read_at(&mut buf, index * OVERLAY_BLOCK)?,
        }
        Ok(buf)
    }

    fn punch(&self, offset: u64, len: u64) {
        let (Ok(off), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
            return;
        };
        use std::os::unix::io::AsRawFd;
        // SAFETY: fallocate on a file descriptor we own; punching a hole only frees space in
        // our private temp file. Failure is harmless (the slot map says the block is zero).
        unsafe {
            libc::fallocate(self.temp.as_raw_fd(), libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, off, len);
        }
    }
}

fn overlay_name<S: BlockDevice>(source: &S) -> PathBuf {
    let src = source.info().files.first().cloned().unwrap_or_else(|| PathBuf::from("<device>"));
    PathBuf::from(format!("{} (overlay)", src.display()))
}

impl<S: BlockDevice> BlockDevice for CowOverlay<S> {
    fn size(&self) -> u64 {
        self.source.size()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        check_range(&self.name, offset, buf.len() as u64, self.size())?;
        let slots = self.read_slots();
        let end = offset + buf.len() as u64;
        let mut pos = offset;
        while pos < end {
            let index = pos / OVERLAY_BLOCK;
            let slot = slots.get(&index).copied();
            // Extend the run over following blocks from the same layer.
            let mut run_end = ((index + 1) * OVERLAY_BLOCK).min(end);
            while run_end < end && slots.get(&(run_end / OVERLAY_BLOCK)).copied() == slot {
                run_end = ((run_end / OVERLAY_BLOCK + 1) * OVERLAY_BLOCK).min(end);
            }
            let part = &mut buf[(pos - offset) as usize..(run_end - offset) as usize];
            match slot {
                Some(Slot::Data) => self.temp_read(part, pos)?,
                Some(Slot::Zero) => part.fill(0),
                None => self.source.read_at(part, pos)?,
            }
            pos = run_end;
        }
        Ok(())
    }

    fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
        check_range(&self.name, offset, length, self.size())?;
        let end = offset + length;
        let source = self.source.map(offset, length)?;
        let slots = self.read_slots();
        // The overlay's own extents, clipped to the range.
        let mut layer: Vec<Extent> = Vec::new();
        for (&index, &slot) in slots.range(offset / OVERLAY_BLOCK..end.div_ceil(OVERLAY_BLOCK)) {
            let a = (index * OVERLAY_BLOCK).max(offset);
            let b = ((index + 1) * OVERLAY_BLOCK).min(end);
            let kind = if slot == Slot::Data { ExtentKind::Data } else { ExtentKind::Zero };
            layer.push(Extent { offset: a, length: b - a, kind });
        }
        let layer = coalesce(layer);
        drop(slots);
        // Paint the overlay extents over the source's.
        let mut out = Vec::with_capacity(source.len() + 2 * layer.len());
        let mut pos = offset;
        let mut si = 0;
        let mut push_source = |from: u64, to: u64, out: &mut Vec<Extent>| {
            while si < source.len() && source[si].offset + source[si].length <= from {
                si += 1;
            }
            let mut i = si;
            while i < source.len() && source[i].offset < to {
                let a = source[i].offset.max(from);
                let b = (source[i].offset + source[i].length).min(to);
                if b > a {
                    out.push(Extent { offset: a, length: b - a, kind: source[i].kind });
                }
                i += 1;
            }
        };
        for e in &layer {
            push_source(pos, e.offset, &mut out);
            out.push(*e);
            pos = e.offset + e.length;
        }
        push_source(pos, end, &mut out);
        Ok(coalesce(out))
    }

    fn info(&self) -> ImageInfo {
        let mut info = self.source.info();
        info.details.insert("overlay_bytes".into(), serde_json::Value::from(self.overlay_bytes()));
        info
    }

    fn granularity(&self) -> u64 {
        self.source.granularity()
    }
}

impl<S: BlockDevice> WritableDevice for CowOverlay<S> {
    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), DiskError> {
        check_range(&self.name, offset, buf.len() as u64, self.size())?;
        let mut slots = self.write_slots();
        let end = offset + buf.len() as u64;
        let mut pos = offset;
        while pos < end {
            let index = pos / OVERLAY_BLOCK;
            let block_start = index * OVERLAY_BLOCK;
            let block_end = block_start + self.block_len(index);
            if pos == block_start && end >= block_end {
                // A run of whole blocks: one write.
                let run_blocks = (end - pos) / OVERLAY_BLOCK;
                let mut run_end = pos + run_blocks * OVERLAY_BLOCK;
                if run_blocks == 0 {
                    run_end = block_end; // the short last block of the device
                }
                self.temp_write(&buf[(pos - offset) as usize..(run_end - offset) as usize], pos)?;
                for i in index..run_end.div_ceil(OVERLAY_BLOCK) {
                    slots.insert(i, Slot::Data);
                }
                pos = run_end;
                continue;
            }
            // Partial block: merge with its current contents.
            let mut block = self.block_bytes(&slots, index)?;
            let to = end.min(block_end);
            block[(pos - block_start) as usize..(to - block_start) as usize]
                .copy_from_slice(&buf[(pos - offset) as usize..(to - offset) as usize]);
            self.temp_write(&block, block_start)?;
            slots.insert(index, Slot::Data);
            pos = to;
        }
        Ok(())
    }

    /// The overlay is scratch space deleted when dropped; there is nothing to make durable.
    fn flush(&self) -> Result<(), DiskError> {
        Ok(())
    }

    fn discard(&self, offset: u64, length: u64) -> Result<(), DiskError> {
        check_range(&self.name, offset, length, self.size())?;
        let end = offset + length;
        let first_full = offset.div_ceil(OVERLAY_BLOCK);
        let last_full = if end == self.size() { end.div_ceil(OVERLAY_BLOCK) } else { end / OVERLAY_BLOCK };
        if first_full >= last_full {
            let zeros = vec![0u8; length as usize];
            return self.write_at(&zeros, offset);
        }
        let head = first_full * OVERLAY_BLOCK - offset;
        if head > 0 {
            self.write_at(&vec![0u8; head as usize], offset)?;
        }
        let tail_start = (last_full * OVERLAY_BLOCK).min(end);
        if tail_start < end {
            self.write_at(&vec![0u8; (end - tail_start) as usize], tail_start)?;
        }
        let mut slots = self.write_slots();
        for i in first_full..last_full {
            slots.insert(i, Slot::Zero);
        }
        drop(slots);
        self.punch(first_full * OVERLAY_BLOCK, (last_full - first_full) * OVERLAY_BLOCK);
        Ok(())
    }
}

#[cfg(test)]
#[path = "overlay_tests.rs"]
mod tests;
