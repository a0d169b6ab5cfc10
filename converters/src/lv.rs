//! A writable view of an LVM logical volume: the inspector's segment map
//! ([`ferry_inspectors::lvm::LvDevice`], linear and striped segments) laid over writable
//! devices that hold its PVs (in conversion, windows of the disks' copy-on-write overlays), so
//! that a filesystem on the LV can be opened read-write like one on a partition.

use ferry_formats::disk::{check_range, BlockDevice, DiskError, Extent, ExtentKind, ImageInfo, WritableDevice};
use ferry_inspectors::lvm::{LvDevice, Segment};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

/// Why an LV view cannot be built; one line naming the LV and the PV.
#[derive(Debug, thiserror::Error)]
pub enum LvError {
    /// A stripe names a PV the caller has no writable device for.
    #[error("{lv}: physical volume {pv} is not on a disk being converted")]
    MissingPv { lv: String, pv: String },
    /// A stripe (or the PV window) reaches past the end of the PV or of its device.
    #[error("{lv}: invalid extent range {offset}+{length} on {pv}: past the end of the {size}-byte physical volume")]
    OutOfRange { lv: String, pv: String, offset: u64, length: u64, size: u64 },
}

/// Where a PV lives: `len` bytes of `dev` starting at `base` (a partition, or a whole disk).
#[derive(Clone)]
pub struct PvPlace {
    pub dev: Arc<dyn WritableDevice>,
    pub base: u64,
    pub len: u64,
}

/// A linear or striped LV, readable and writable, over the devices holding its PVs.
pub struct WritableLv {
    name: PathBuf,
    size: u64,
    segments: Vec<Segment>,
    /// For each segment, the place of each of its stripes' PVs (same order as its stripes).
    places: Vec<Vec<PvPlace>>,
}

/// One contiguous piece of an I/O: which place, the absolute offset on its device, and the
/// range of the caller's buffer.
struct Piece<'a> {
    place: &'a PvPlace,
    at: u64,
    buf: Range<usize>,
}

impl WritableLv {
    /// The view of `lv` whose PVs are found with `place_of(pv_name)`. Every stripe is checked
    /// to lie inside its PV's window, and every window inside its device.
    pub fn new(lv: &LvDevice, place_of: impl Fn(&str) -> Option<PvPlace>) -> Result<Self, LvError> {
        let name = lv.name.to_string_lossy().into_owned();
        let mut places = Vec::new();
        for seg in &lv.segments {
            let n = seg.stripes.len().max(1) as u64;
            let per_stripe = seg.length / n;
            let mut row = Vec::new();
            for s in &seg.stripes {
                let p = place_of(&s.pv_name).ok_or_else(|| LvError::MissingPv {
                    lv: name.clone(),
                    pv: s.pv_name.clone(),
                })?;
                let bad = |offset, length, size| LvError::OutOfRange {
                    lv: name.clone(),
                    pv: s.pv_name.clone(),
                    offset,
                    length,
                    size,
                };
                if p.base.checked_add(p.len).is_none_or(|end| end > p.dev.size()) {
                    return Err(bad(p.base, p.len, p.dev.size()));
                }
                if s.offset.checked_add(per_stripe).is_none_or(|end| end > p.len) {
                    return Err(bad(s.offset, per_stripe, p.len));
                }
                row.push(p);
            }
            places.push(row);
        }
        Ok(WritableLv { name: lv.name.clone(), size: lv.size, segments: lv.segments.clone(), places })
    }

    /// The LV's device name (`/dev/vg0/root`).
    pub fn name(&self) -> &std::path::Path {
        &self.name
    }

    /// Splits the range `[offset, offset + len)` of the LV into contiguous pieces on the PVs.
    fn pieces(&self, offset: u64, len: usize) -> Result<Vec<Piece<'_>>, DiskError> {
        check_range(&self.name, offset, len as u64, self.size)?;
        let mut out = Vec::new();
        let mut done = 0usize;
        while done < len {
            let pos = offset + done as u64;
            let (si, seg) = self
                .segments
                .iter()
                .enumerate()
                .find(|(_, s)| pos >= s.start && pos - s.start < s.length)
                .ok_or_else(|| DiskError::invalid(&self.name, "offset", pos, "not covered by any segment"))?;
            let unusable = || DiskError::invalid(&self.name, "segment", seg.start, "has no usable stripes");
            let (stripe, at, avail) = seg.locate(pos).ok_or_else(unusable)?;
            let place = self.places.get(si).and_then(|r| r.get(stripe)).ok_or_else(unusable)?;
            let n = ((len - done) as u64).min(avail) as usize;
            let at = place.base.checked_add(at).ok_or_else(unusable)?;
            out.push(Piece { place, at, buf: done..done + n });
            done += n;
        }
        Ok(out)
    }
}

impl BlockDevice for WritableLv {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        for p in self.pieces(offset, buf.len())? {
            let part = buf.get_mut(p.buf).unwrap_or_default();
            p.place.dev.read_at(part, p.at)?;
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

impl WritableDevice for WritableLv {
    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), DiskError> {
        for p in self.pieces(offset, buf.len())? {
            let part = buf.get(p.buf).unwrap_or_default();
            p.place.dev.write_at(part, p.at)?;
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), DiskError> {
        for p in self.places.iter().flatten() {
            p.dev.flush()?;
        }
        Ok(())
    }

    fn discard(&self, offset: u64, length: u64) -> Result<(), DiskError> {
        check_range(&self.name, offset, length, self.size)?;
        // Pieces are found per chunk so that a huge discard needs no huge piece list.
        const CHUNK: u64 = 64 << 20;
        let mut pos = offset;
        while pos < offset + length {
            let n = (offset + length - pos).min(CHUNK);
            for p in self.pieces(pos, n as usize)? {
                p.place.dev.discard(p.at, (p.buf.end - p.buf.start) as u64)?;
            }
            pos += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_formats::disk::CowOverlay;
    use ferry_inspectors::lvm::Stripe;

    /// A memory disk: readable; writes go to an overlay above it.
    struct Mem(Vec<u8>);
    impl BlockDevice for Mem {
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
            check_range(std::path::Path::new("mem"), offset, buf.len() as u64, self.size())?;
            buf.copy_from_slice(&self.0[offset as usize..offset as usize + buf.len()]);
            Ok(())
        }
        fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
            Ok(vec![Extent { offset, length, kind: ExtentKind::Data }])
        }
        fn info(&self) -> ImageInfo {
            ImageInfo::default()
        }
    }

    fn overlay(size: usize, fill: u8) -> Arc<CowOverlay<Mem>> {
        Arc::new(CowOverlay::new(Mem(vec![fill; size])).unwrap())
    }

    /// Two PVs (at 1 MiB on disk A, the whole of disk B), one LV: a linear 64 KiB segment on A
    /// at PV offset 128 KiB, then a 2-way striped segment (4 KiB stripes) over A and B.
    fn lv(a: &Arc<CowOverlay<Mem>>, b: &Arc<CowOverlay<Mem>>) -> LvDevice {
        let (pa, pb): (Arc<dyn BlockDevice>, Arc<dyn BlockDevice>) = (a.clone(), b.clone());
        let stripe = |pv: &Arc<dyn BlockDevice>, name: &str, offset| Stripe { pv: pv.clone(), pv_name: name.into(), offset };
        LvDevice {
            name: "/dev/vg/lv".into(),
            size: (64 + 32) << 10,
            segments: vec![
                Segment { start: 0, length: 64 << 10, stripe_size: 0, stripes: vec![stripe(&pa, "/dev/sda2", 128 << 10)] },
                Segment {
                    start: 64 << 10,
                    length: 32 << 10,
                    stripe_size: 4 << 10,
                    stripes: vec![stripe(&pa, "/dev/sda2", 0), stripe(&pb, "/dev/sdb", 8 << 10)],
                },
            ],
        }
    }

    #[test]
    fn linear_and_striped_writes_land_on_the_right_pv_bytes() {
        let (a, b) = (overlay(4 << 20, 0), overlay(1 << 20, 0));
        let (da, db): (Arc<dyn WritableDevice>, Arc<dyn WritableDevice>) = (a.clone(), b.clone());
        let view = WritableLv::new(&lv(&a, &b), |n| match n {
            "/dev/sda2" => Some(PvPlace { dev: da.clone(), base: 1 << 20, len: 2 << 20 }),
            "/dev/sdb" => Some(PvPlace { dev: db.clone(), base: 0, len: 1 << 20 }),
            _ => None,
        })
        .unwrap();
        // Across the linear/striped boundary and three stripe chunks.
        let data: Vec<u8> = (0..12288u32).map(|i| (i % 251) as u8 + 1).collect();
        view.write_at(&data, (64 << 10) - 2048).unwrap();
        let mut back = vec![0; data.len()];
        view.read_at(&mut back, (64 << 10) - 2048).unwrap();
        assert_eq!(back, data);
        let read = |d: &Arc<CowOverlay<Mem>>, off: u64, n: usize| {
            let mut v = vec![0; n];
            d.read_at(&mut v, off).unwrap();
            v
        };
        // Linear tail: LV 62 KiB..64 KiB = A at 1 MiB + 128 KiB + 62 KiB.
        assert_eq!(read(&a, (1 << 20) + (190 << 10), 2048), data[..2048]);
        // Striped chunk 0 → A at 1 MiB + 0, chunk 1 → B at 8 KiB, chunk 2 → A at 1 MiB + 4 KiB.
        assert_eq!(read(&a, 1 << 20, 4096), data[2048..6144]);
        assert_eq!(read(&b, 8 << 10, 4096), data[6144..10240]);
        assert_eq!(read(&a, (1 << 20) + 4096, 2048), data[10240..]);
        // Nothing else on A's first MiB changed.
        assert!(read(&a, 0, 1 << 20).iter().all(|&x| x == 0));
        assert!(view.write_at(&[1], view.size()).is_err());
    }

    #[test]
    fn missing_and_short_pvs_are_one_line_errors() {
        let (a, b) = (overlay(4 << 20, 0), overlay(1 << 20, 0));
        let da: Arc<dyn WritableDevice> = a.clone();
        let e = WritableLv::new(&lv(&a, &b), |n| {
            (n == "/dev/sda2").then(|| PvPlace { dev: da.clone(), base: 1 << 20, len: 2 << 20 })
        })
        .err()
        .unwrap();
        assert_eq!(e.to_string(), "/dev/vg/lv: physical volume /dev/sdb is not on a disk being converted");
        let e = WritableLv::new(&lv(&a, &b), |_| Some(PvPlace { dev: da.clone(), base: 1 << 20, len: 64 << 10 }))
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "/dev/vg/lv: invalid extent range 131072+65536 on /dev/sda2: past the end of the 65536-byte physical volume"
        );
        let e = WritableLv::new(&lv(&a, &b), |_| Some(PvPlace { dev: da.clone(), base: 4 << 20, len: 1 }))
            .err()
            .unwrap();
        assert!(e.to_string().contains("past the end of the 4194304-byte"), "{e}");
    }
}
