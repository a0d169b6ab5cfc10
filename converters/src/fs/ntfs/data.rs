//! Reading and writing MFT records and attribute data: records through `$MFT`'s runs (the
//! first ones mirrored in `$MFTMirr`), values resident or through their runlists.

use super::bytes::*;
use super::record::*;
use super::runs::{self, Run};
use super::Ntfs;
use crate::fs::FsError;

/// Largest metadata value read whole into memory (`$Bitmap` of a 64 TiB volume of 4 KiB
/// clusters is 2 GiB; refused above this).
const MAX_META: u64 = 256 << 20;

/// Sizes of a non-resident attribute: allocated, data, initialized.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sizes {
    pub alloc: u64,
    pub size: u64,
    pub init: u64,
}

impl<'a> Ntfs<'a> {
    fn record_pos(&self, n: u64) -> Result<u64, FsError> {
        let rec = self.geo.record as u64;
        if n.saturating_add(1).saturating_mul(rec) > self.mft_size {
            return Err(self.bad("MFT record number", n.to_string(), format!("past $MFT ({} bytes)", self.mft_size)));
        }
        self.map(&self.mft_runs, n * rec, "$MFT").map_err(|e| self.bad("$MFT runs", n.to_string(), e))
    }

    /// Volume byte offset of byte `off` of data held in `runs` (the whole record or block
    /// lies in one cluster run: records and blocks are cluster-aligned or within one).
    pub(super) fn map(&self, runs: &[Run], off: u64, what: &str) -> Result<u64, String> {
        let c = self.geo.cluster;
        let (mut vcn, want) = (0u64, off / c);
        for r in runs {
            if want < vcn + r.len {
                let Some(lcn) = r.lcn else { return Err(format!("{what}: byte {off} is in a sparse run")) };
                return Ok((lcn + want - vcn) * c + off % c);
            }
            vcn += r.len;
        }
        Err(format!("{what}: byte {off} is past the runs ({vcn} clusters)"))
    }

    /// Reads MFT record `n`.
    pub(super) fn read_record(&self, n: u64) -> Result<Record, FsError> {
        let mut b = vec![0u8; self.geo.record];
        let c = self.geo.cluster as usize;
        let first = self.record_pos(n)?;
        if self.geo.record <= c {
            self.read(&mut b, first)?;
        } else {
            for (i, chunk) in b.chunks_mut(c).enumerate() {
                let pos = self.map(&self.mft_runs, n * self.geo.record as u64 + (i * c) as u64, "$MFT").map_err(|e| self.bad("$MFT runs", n.to_string(), e))?;
                self.read(chunk, pos)?;
            }
        }
        Record::parse(n, b).map_err(|(f, v, r)| self.bad(&f, v, r))
    }

    /// Writes record `rec` (fixups applied), and its `$MFTMirr` copy.
    pub(super) fn write_record(&self, rec: &Record) -> Result<(), FsError> {
        let b = fixup(&rec.b);
        let c = self.geo.cluster as usize;
        let n = rec.num;
        for (i, chunk) in b.chunks(c.min(b.len())).enumerate() {
            let pos = self.map(&self.mft_runs, n * self.geo.record as u64 + (i * c) as u64, "$MFT").map_err(|e| self.bad("$MFT runs", n.to_string(), e))?;
            self.write(chunk, pos)?;
        }
        if n < self.mirr {
            self.write(&b, self.geo.mirr_lcn * self.geo.cluster + n * self.geo.record as u64)?;
        }
        Ok(())
    }

    /// The runs of non-resident attribute `a` of `rec` (it must hold all of them).
    pub(super) fn attr_runs(&self, rec: &Record, a: &Attr) -> Result<(Vec<Run>, Sizes), FsError> {
        let raw = rec.raw(a);
        let lowest = u64_at(raw, 0x10).unwrap_or(0);
        let mp = u16_at(raw, 0x20).unwrap_or(0) as usize;
        let sizes = Sizes { alloc: u64_at(raw, 0x28).unwrap_or(0), size: u64_at(raw, 0x30).unwrap_or(0), init: u64_at(raw, 0x38).unwrap_or(0) };
        let v = || format!("record {} attribute {:#x}", rec.num, a.ty);
        if lowest != 0 {
            return Err(self.bad("lowest VCN", format!("{} ({lowest})", v()), "attribute split over records (attribute list) is not supported"));
        }
        let r = runs::decode(&raw[mp..], self.geo.clusters).map_err(|e| self.bad("mapping pairs", v(), e))?;
        let have = runs::clusters(&r).saturating_mul(self.geo.cluster);
        if sizes.size > sizes.alloc || sizes.init > sizes.size || sizes.alloc > have {
            return Err(self.bad("attribute sizes", format!("{}: allocated {}, size {}, initialized {}, runs {have} bytes", v(), sizes.alloc, sizes.size, sizes.init), "inconsistent"));
        }
        Ok((r, sizes))
    }

    /// Walks the `len` bytes at `off` of data held in `runs`, calling `piece(lcn, disk byte
    /// offset within the run's first cluster, range of the caller's buffer)` for each run
    /// they cross, in order; refused when the runs end first.
    fn walk_runs(
        &self,
        runs: &[Run],
        off: u64,
        len: usize,
        mut piece: impl FnMut(Option<u64>, u64, std::ops::Range<usize>) -> Result<(), FsError>,
    ) -> Result<(), FsError> {
        let c = self.geo.cluster;
        let (mut vcn, mut done) = (0u64, 0usize);
        for r in runs {
            let (start, end) = (vcn * c, (vcn + r.len) * c);
            vcn += r.len;
            let pos = off + done as u64;
            if done == len {
                break;
            }
            if pos >= end {
                continue;
            }
            let n = ((end - pos) as usize).min(len - done);
            piece(r.lcn.map(|l| l * c), pos - start, done..done + n)?;
            done += n;
        }
        if done < len {
            return Err(self.bad("runlist", format!("{} clusters", vcn), format!("ends before byte {}", off + len as u64)));
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes at `off` of data held in `runs` (sparse runs read as zeros).
    pub(super) fn read_runs(&self, runs: &[Run], off: u64, buf: &mut [u8]) -> Result<(), FsError> {
        self.walk_runs(runs, off, buf.len(), |disk, within, range| match disk {
            Some(d) => self.read(&mut buf[range], d + within),
            None => {
                buf[range].fill(0);
                Ok(())
            }
        })
    }

    /// Writes `buf` at `off` of data held in `runs` (no sparse run may be touched).
    pub(super) fn write_runs(&self, runs: &[Run], off: u64, buf: &[u8]) -> Result<(), FsError> {
        self.walk_runs(runs, off, buf.len(), |disk, within, range| {
            let Some(d) = disk else {
                return Err(self.bad("runlist", format!("byte {}", off + range.start as u64), "a sparse run would be written"));
            };
            self.write(&buf[range], d + within)
        })
    }

    /// The whole value of attribute `a` of `rec`, refused above `limit` bytes.
    pub(super) fn attr_value(&self, rec: &Record, a: &Attr, limit: u64) -> Result<Vec<u8>, FsError> {
        if !a.nonres {
            return Ok(rec.value(a).to_vec());
        }
        if a.flags & 0x00ff != 0 || a.flags & 0x4000 != 0 {
            return Err(self.bad("attribute flags", format!("record {} attribute {:#x}: {:#06x}", rec.num, a.ty, a.flags), "compressed or encrypted data is not supported"));
        }
        let (r, s) = self.attr_runs(rec, a)?;
        if s.size > limit {
            return Err(self.bad("data size", format!("record {} attribute {:#x}: {}", rec.num, a.ty, s.size), format!("more than the {limit} bytes read")));
        }
        let mut v = vec![0u8; s.size as usize];
        self.read_runs(&r, 0, &mut v[..s.init as usize])?;
        Ok(v)
    }

    /// The unnamed `$DATA` of system file `n`.
    fn system_data(&self, n: u64, what: &str) -> Result<(Vec<Run>, Sizes), FsError> {
        let rec = self.read_record(n)?;
        let a = rec.find(AT_DATA, &[]).filter(|a| a.nonres).ok_or_else(|| self.bad(what, format!("record {n}"), "no non-resident $DATA"))?;
        self.attr_runs(&rec, &a)
    }

    /// The runs of one extent of a non-resident attribute (its first VCN and runs).
    fn extent_runs(&self, rec: &Record, a: &Attr) -> Result<(u64, Vec<Run>), FsError> {
        let raw = rec.raw(a);
        let lowest = u64_at(raw, 0x10).unwrap_or(0);
        let mp = u16_at(raw, 0x20).unwrap_or(0) as usize;
        let r = runs::decode(&raw[mp..], self.geo.clusters).map_err(|e| self.bad("mapping pairs", format!("record {} attribute {:#x}", rec.num, a.ty), e))?;
        Ok((lowest, r))
    }

    pub(super) fn load_mft(&mut self) -> Result<(), FsError> {
        let rec = self.geo.record;
        let mut b = vec![0u8; rec];
        self.read(&mut b, self.geo.mft_lcn * self.geo.cluster)?;
        let r0 = Record::parse(0, b).map_err(|(f, v, r)| self.bad(&f, v, r))?;
        let a = r0.find(AT_DATA, &[]).filter(|a| a.nonres).ok_or_else(|| self.bad("$MFT", "record 0", "no non-resident $DATA"))?;
        let raw = r0.raw(&a);
        let s = Sizes { alloc: u64_at(raw, 0x28).unwrap_or(0), size: u64_at(raw, 0x30).unwrap_or(0), init: u64_at(raw, 0x38).unwrap_or(0) };
        let (lowest, mut runs) = self.extent_runs(&r0, &a)?;
        if lowest != 0 || s.size < 16 * rec as u64 || s.size > s.alloc || runs.first().and_then(|r| r.lcn) != Some(self.geo.mft_lcn) {
            return Err(self.bad("$MFT data", format!("{} bytes at {:?}", s.size, runs.first()), "does not match the boot sector"));
        }
        self.mft_runs = runs.clone();
        self.mft_size = s.size.min(runs::clusters(&runs).saturating_mul(self.geo.cluster));
        // A fragmented $MFT continues its $DATA in other records, named by its attribute
        // list; those records lie in the part already mapped.
        if let Some(l) = r0.find(AT_ATTRIBUTE_LIST, &[]) {
            self.mft_list = true;
            let list = self.attr_value(&r0, &l, 1 << 18)?;
            let mut p = 0usize;
            let mut extents = Vec::new();
            while p + 0x1a <= list.len() {
                let (ty, len) = (u32_at(&list, p).unwrap_or(0), u16_at(&list, p + 4).unwrap_or(0) as usize);
                if len < 0x1a || p + len > list.len() {
                    return Err(self.bad("$MFT attribute list", format!("entry at {p} of length {len}"), "outside the list"));
                }
                let fref = u64_at(&list, p + 0x10).unwrap_or(0) & ((1 << 48) - 1);
                if ty == AT_DATA && list[p + 6] == 0 && fref != 0 {
                    extents.push((u64_at(&list, p + 8).unwrap_or(0), fref));
                }
                p += len;
            }
            extents.sort();
            for (vcn, n) in extents {
                if vcn != runs::clusters(&runs) {
                    return Err(self.bad("$MFT attribute list", format!("$DATA extent at VCN {vcn} in record {n}"), format!("expected VCN {}", runs::clusters(&runs))));
                }
                let ext = self.read_record(n)?;
                let e = ext.attrs().into_iter().find(|x| x.ty == AT_DATA && x.nonres && x.name.is_empty() && u64_at(ext.raw(x), 0x10) == Some(vcn));
                let Some(e) = e else { return Err(self.bad("$MFT attribute list", format!("record {n}"), format!("no $DATA extent at VCN {vcn}"))) };
                let (_, more) = self.extent_runs(&ext, &e)?;
                runs.extend(more);
                self.mft_runs = runs.clone();
                self.mft_size = s.size.min(runs::clusters(&runs).saturating_mul(self.geo.cluster));
            }
        }
        if runs::clusters(&runs).saturating_mul(self.geo.cluster) < s.size {
            return Err(self.bad("$MFT data", format!("{} bytes", s.size), "longer than its runs"));
        }
        let (_, ms) = self.system_data(1, "$MFTMirr")?;
        self.mirr = (ms.size / rec as u64).min(self.mft_size / rec as u64);
        Ok(())
    }

    pub(super) fn check_clean(&self) -> Result<(), FsError> {
        let rec = self.read_record(3)?;
        let a = rec.find(0x70, &[]).filter(|a| !a.nonres).ok_or_else(|| self.bad("$Volume", "record 3", "no $VOLUME_INFORMATION"))?;
        let v = rec.value(&a);
        let (major, flags) = (v.get(8).copied().unwrap_or(0), u16_at(v, 10).unwrap_or(0));
        if major != 3 {
            return Err(self.unsupported("$Volume", format!("NTFS version {major} (Ferry writes NTFS 3.x)")));
        }
        if flags & 1 != 0 {
            return Err(FsError::Unclean {
                fs: self.name.clone(),
                reason: "the NTFS volume is marked dirty: start Windows and shut it down fully (no hibernation, Fast Startup off)".into(),
            });
        }
        Ok(())
    }

    pub(super) fn load_bitmap(&mut self) -> Result<(), FsError> {
        let (r, s) = self.system_data(6, "$Bitmap")?;
        let need = self.geo.clusters.div_ceil(8);
        if s.size < need || s.size > MAX_META || s.init < need {
            return Err(self.bad("$Bitmap size", s.size.to_string(), format!("the volume has {} clusters", self.geo.clusters)));
        }
        let mut b = vec![0u8; need as usize];
        self.read_runs(&r, 0, &mut b)?;
        self.bitmap = b;
        self.bitmap_runs = r;
        Ok(())
    }

    pub(super) fn load_upcase(&mut self) -> Result<(), FsError> {
        let rec = self.read_record(10)?;
        let a = rec.find(AT_DATA, &[]).ok_or_else(|| self.bad("$UpCase", "record 10", "no $DATA"))?;
        let v = self.attr_value(&rec, &a, 1 << 17)?;
        if v.len() != 1 << 17 {
            return Err(self.bad("$UpCase size", v.len().to_string(), "expected 131072 bytes"));
        }
        self.upcase = v.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        Ok(())
    }
}
