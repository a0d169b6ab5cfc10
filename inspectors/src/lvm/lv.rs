//! Logical volumes as block devices: linear and striped segments mapped onto PV devices.

use ferry_formats::disk::{check_range, BlockDevice, DiskError, Extent, ExtentKind, ImageInfo};
use std::path::PathBuf;
use std::sync::Arc;

/// One stripe of a segment: which PV and where on it (bytes from the PV start).
#[derive(Clone)]
pub struct Stripe {
    pub pv: Arc<dyn BlockDevice>,
    /// The PV's device name (`/dev/sda2`), so that a caller can map the stripe onto its own
    /// view of that device (a writable one, in conversion).
    pub pv_name: String,
    pub offset: u64,
}

/// A contiguous range of the LV.
#[derive(Clone)]
pub struct Segment {
    /// Start in bytes within the LV.
    pub start: u64,
    pub length: u64,
    /// Stripe size in bytes (only meaningful with more than one stripe).
    pub stripe_size: u64,
    pub stripes: Vec<Stripe>,
}

/// A linear or striped LV.
pub struct LvDevice {
    pub name: PathBuf,
    pub size: u64,
    pub segments: Vec<Segment>,
}

impl Segment {
    /// Where LV byte `pos` lives: the index of its stripe, the byte offset on that stripe's
    /// PV, and how many bytes follow contiguously there. `None` when `pos` is outside the
    /// segment or the segment is malformed (no stripes, a zero stripe size).
    pub fn locate(&self, pos: u64) -> Option<(usize, u64, u64)> {
        let o = pos.checked_sub(self.start).filter(|o| *o < self.length)?;
        let n = self.stripes.len() as u64;
        if n == 1 {
            let s = self.stripes.first()?;
            return Some((0, s.offset.checked_add(o)?, self.length - o));
        }
        let ss = self.stripe_size;
        if n == 0 || ss == 0 {
            return None;
        }
        let chunk = o / ss;
        let i = (chunk % n) as usize;
        let s = self.stripes.get(i)?;
        let within = o % ss;
        let at = s.offset.checked_add((chunk / n).checked_mul(ss)?.checked_add(within)?)?;
        Some((i, at, (ss - within).min(self.length - o)))
    }
}

impl LvDevice {
    /// The segment holding LV byte `pos`.
    pub fn segment_at(&self, pos: u64) -> Option<&Segment> {
        self.segments.iter().find(|s| pos >= s.start && pos - s.start < s.length)
    }
}

impl BlockDevice for LvDevice {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        check_range(&self.name, offset, buf.len() as u64, self.size)?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let seg = self
                .segment_at(pos)
                .ok_or_else(|| DiskError::invalid(&self.name, "offset", pos, "not covered by any segment"))?;
            let (i, at, avail) = seg
                .locate(pos)
                .ok_or_else(|| DiskError::invalid(&self.name, "segment", seg.start, "has no usable stripes"))?;
            let stripe = seg
                .stripes
                .get(i)
                .ok_or_else(|| DiskError::invalid(&self.name, "segment", seg.start, "has no usable stripes"))?;
            let n = ((buf.len() - done) as u64).min(avail) as usize;
            let out = buf.get_mut(done..done + n).unwrap_or_default();
            stripe.pv.read_at(out, at)?;
            done += n;
        }
        Ok(())
    }

    fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
        check_range(&self.name, offset, length, self.size)?;
        Ok(vec![Extent { offset, length, kind: ExtentKind::Data }])
    }

    fn info(&self) -> ImageInfo {
        ImageInfo { format: "lvm".into(), virtual_size: self.size, ..Default::default() }
    }
}
