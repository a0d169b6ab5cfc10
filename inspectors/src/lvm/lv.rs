//! Logical volumes as block devices: linear and striped segments mapped onto PV devices.

use ferry_formats::disk::{check_range, BlockDevice, DiskError, Extent, ExtentKind, ImageInfo};
use std::path::PathBuf;
use std::sync::Arc;

/// One stripe of a segment: which PV and where on it (bytes from the PV start).
#[derive(Clone)]
pub struct Stripe {
    pub pv: Arc<dyn BlockDevice>,
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

impl LvDevice {
    /// Where LV byte `pos` (inside `seg`) lives, and how many bytes follow contiguously.
    fn locate(seg: &Segment, pos: u64) -> Option<(&Stripe, u64, u64)> {
        let o = pos - seg.start;
        let n = seg.stripes.len() as u64;
        if n == 1 {
            let s = seg.stripes.first()?;
            return Some((s, s.offset + o, seg.length - o));
        }
        let ss = seg.stripe_size;
        let chunk = o / ss;
        let s = seg.stripes.get((chunk % n) as usize)?;
        let within = o % ss;
        Some((s, s.offset + (chunk / n) * ss + within, (ss - within).min(seg.length - o)))
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
                .segments
                .iter()
                .find(|s| pos >= s.start && pos < s.start + s.length)
                .ok_or_else(|| DiskError::invalid(&self.name, "offset", pos, "not covered by any segment"))?;
            let (stripe, at, avail) = Self::locate(seg, pos)
                .ok_or_else(|| DiskError::invalid(&self.name, "segment", seg.start, "has no stripes"))?;
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
