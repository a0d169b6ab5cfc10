//! Allocation: clusters through `$Bitmap` (kept in memory, changed bytes written back),
//! MFT records through `$MFT`'s `$BITMAP`, `$MFT` extended by whole clusters of formatted
//! free records when its bitmap has no free bit left.

use super::record::*;
use super::runs::{self, Run};
use super::Ntfs;
use crate::fs::FsError;

/// Records 0..24 are the system files and the reserved records after them.
const FIRST_USER_RECORD: u64 = 24;
/// `$MFT` grows by at least this many records at a time (and by a quarter of its size
/// when larger: few extents in record 0's runlist).
const MFT_GROWTH: u64 = 64;

/// Record 0, its `$BITMAP` attribute, the bitmap, and its runs when non-resident.
type MftBitmap = (Record, Attr, Vec<u8>, Option<Vec<Run>>);

impl<'a> Ntfs<'a> {
    fn bit(&self, c: u64) -> bool {
        self.bitmap[(c / 8) as usize] & (1 << (c % 8)) != 0
    }

    fn set_bits(&mut self, start: u64, len: u64, on: bool) -> Result<(), FsError> {
        for c in start..start + len {
            let (i, m) = ((c / 8) as usize, 1u8 << (c % 8));
            if on {
                self.bitmap[i] |= m;
            } else {
                self.bitmap[i] &= !m;
            }
        }
        let (a, b) = ((start / 8) as usize, ((start + len).div_ceil(8)) as usize);
        let bytes = self.bitmap[a..b].to_vec();
        let runs = self.bitmap_runs.clone();
        self.write_runs(&runs, a as u64, &bytes)
    }

    /// Allocates `n` clusters right after `runs` when they are free there, else as
    /// [`Self::alloc_clusters`] does.
    pub(super) fn alloc_after(&mut self, runs: &[Run], n: u64) -> Result<Vec<Run>, FsError> {
        if let Some(Run { lcn: Some(l), len }) = runs.last() {
            let goal = l + len;
            if n > 0 && goal.checked_add(n).is_some_and(|e| e <= self.geo.clusters) && (goal..goal + n).all(|c| !self.bit(c)) {
                self.set_bits(goal, n, true)?;
                return Ok(vec![Run { lcn: Some(goal), len: n }]);
            }
        }
        self.alloc_clusters(n)
    }

    /// Allocates `n` clusters, contiguous when a free extent that long exists.
    pub(super) fn alloc_clusters(&mut self, n: u64) -> Result<Vec<Run>, FsError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let total = self.geo.clusters;
        let mut best: Option<(u64, u64)> = None;
        let start = self.hint.min(total);
        // First fit from the hint, then from the start.
        'outer: for (from, to) in [(start, total), (0, start)] {
            let mut c = from;
            while c < to {
                if self.bit(c) {
                    c += 1;
                    continue;
                }
                let s = c;
                while c < to && !self.bit(c) && c - s < n {
                    c += 1;
                }
                if c - s == n {
                    best = Some((s, n));
                    break 'outer;
                }
            }
        }
        let mut out = Vec::new();
        if let Some((s, l)) = best {
            out.push(Run { lcn: Some(s), len: l });
        } else {
            let mut left = n;
            let mut c = 0u64;
            while c < total && left > 0 {
                if self.bit(c) {
                    c += 1;
                    continue;
                }
                let s = c;
                while c < total && !self.bit(c) && c - s < left {
                    c += 1;
                }
                runs::append(&mut out, &[Run { lcn: Some(s), len: c - s }]);
                left -= c - s;
            }
            if left > 0 {
                return Err(FsError::NoSpace { fs: self.name.clone(), what: format!("{n} clusters") });
            }
        }
        for r in &out {
            let l = r.lcn.unwrap_or(0);
            self.set_bits(l, r.len, true)?;
            self.hint = l + r.len;
        }
        Ok(out)
    }

    /// Frees the clusters of `runs` (sparse runs skipped).
    pub(super) fn free_clusters(&mut self, runs: &[Run]) -> Result<(), FsError> {
        for r in runs {
            if let Some(l) = r.lcn {
                self.set_bits(l, r.len, false)?;
            }
        }
        Ok(())
    }

    /// `$MFT`'s `$BITMAP` value, and its runs when non-resident.
    fn mft_bitmap(&self) -> Result<MftBitmap, FsError> {
        let r0 = self.read_record(0)?;
        let a = r0.find(AT_BITMAP, &[]).ok_or_else(|| self.bad("$MFT", "record 0", "no $BITMAP"))?;
        if !a.nonres {
            let v = r0.value(&a).to_vec();
            return Ok((r0, a, v, None));
        }
        let (runs, s) = self.attr_runs(&r0, &a)?;
        if s.size > 64 << 20 {
            return Err(self.bad("$MFT bitmap size", s.size.to_string(), "too large"));
        }
        let mut v = vec![0u8; s.size as usize];
        self.read_runs(&runs, 0, &mut v[..s.init as usize])?;
        Ok((r0, a, v, Some(runs)))
    }

    /// Allocates a free MFT record: its number and sequence number (the record itself is
    /// not written).
    pub(super) fn alloc_record(&mut self) -> Result<(u64, u16), FsError> {
        loop {
            let (_, _, bm, runs) = self.mft_bitmap()?;
            let records = self.mft_size / self.geo.record as u64;
            let from = self.mft_hint.max(FIRST_USER_RECORD);
            let free = (from..records).find(|&i| (i / 8) < bm.len() as u64 && bm[(i / 8) as usize] & (1 << (i % 8)) == 0);
            let Some(n) = free else {
                self.extend_mft()?;
                continue;
            };
            let old = self.read_record(n).ok();
            if old.as_ref().is_some_and(|r| r.flags() & REC_IN_USE != 0) {
                return Err(self.bad("$MFT bitmap", format!("record {n}"), "marked free but the record is in use"));
            }
            let seq = old.map(|r| r.seq()).filter(|s| *s != 0).unwrap_or(1);
            self.set_record_bit(n, true, &runs)?;
            self.mft_hint = n + 1;
            return Ok((n, seq));
        }
    }

    fn set_record_bit(&mut self, n: u64, on: bool, runs: &Option<Vec<Run>>) -> Result<(), FsError> {
        let (mut r0, a, mut bm, _) = self.mft_bitmap()?;
        let (i, m) = ((n / 8) as usize, 1u8 << (n % 8));
        if i >= bm.len() {
            return Err(self.bad("$MFT bitmap", format!("record {n}"), "past the bitmap"));
        }
        if on {
            bm[i] |= m
        } else {
            bm[i] &= !m
        }
        match runs {
            Some(runs) => self.write_runs(runs, i as u64, &bm[i..i + 1]),
            None => {
                let b = resident(AT_BITMAP, &[], &bm, false);
                if !r0.replace(&a, b) {
                    return Err(self.bad("$MFT record", "0", "full"));
                }
                self.write_record(&r0)
            }
        }
    }

    /// Frees MFT record `rec` (not in use, sequence number incremented) and its bit.
    pub(super) fn free_record(&mut self, mut rec: Record) -> Result<(), FsError> {
        rec.set_flags(0);
        let s = rec.seq().wrapping_add(1);
        rec.set_seq(if s == 0 { 1 } else { s });
        self.write_record(&rec)?;
        let (_, _, _, runs) = self.mft_bitmap()?;
        self.set_record_bit(rec.num, false, &runs)?;
        self.mft_hint = self.mft_hint.min(rec.num);
        Ok(())
    }

    /// Grows `$MFT` by at least `MFT_GROWTH` records (whole clusters), formats them free,
    /// and grows its bitmap to cover them.
    fn extend_mft(&mut self) -> Result<(), FsError> {
        if self.mft_list {
            return Err(self.unsupported("$MFT", "extending an $MFT that has an attribute list (no free MFT record left)"));
        }
        let (rec, c) = (self.geo.record as u64, self.geo.cluster);
        let old_records = self.mft_size / rec;
        let add_bytes = (MFT_GROWTH.max(old_records / 4) * rec).div_ceil(c) * c;
        let mft_runs_now = self.mft_runs.clone();
        let new_runs = self.alloc_after(&mft_runs_now, add_bytes / c)?;
        let mut mft_runs = self.mft_runs.clone();
        runs::append(&mut mft_runs, &new_runs);
        let new_size = self.mft_size + add_bytes;
        // Format the new records before $MFT claims them.
        for k in 0..add_bytes / rec {
            let n = old_records + k;
            let blank = Record::blank(n, rec as usize, 1);
            let b = fixup(&blank.b);
            self.write_runs(&mft_runs, n * rec, &b)?;
        }
        let mut r0 = self.read_record(0)?;
        let a = r0.find(AT_DATA, &[]).ok_or_else(|| self.bad("$MFT", "record 0", "no $DATA"))?;
        let pairs = runs::encode(&mft_runs);
        let attr = nonresident(AT_DATA, &[], &pairs, runs::clusters(&mft_runs), runs::clusters(&mft_runs) * c, new_size, new_size);
        if !r0.replace(&a, attr) {
            self.free_clusters(&new_runs)?;
            return Err(self.unsupported("$MFT", "extending $MFT would need an attribute list"));
        }
        // The bitmap: 8-byte multiples covering every record.
        let need = (new_size / rec).div_ceil(64) * 8;
        let b = r0.find(AT_BITMAP, &[]).ok_or_else(|| self.bad("$MFT", "record 0", "no $BITMAP"))?;
        if b.nonres {
            let (mut bruns, s) = self.attr_runs(&r0, &b)?;
            if need > s.size {
                let mut alloc = s.alloc;
                if need > alloc {
                    let more = (need - alloc).div_ceil(c);
                    let got = self.alloc_clusters(more)?;
                    self.write_runs(&got, 0, &vec![0u8; (more * c) as usize])?;
                    runs::append(&mut bruns, &got);
                    alloc += more * c;
                }
                if s.init < need {
                    self.write_runs(&bruns, s.init, &vec![0u8; (need - s.init) as usize])?;
                }
                let pairs = runs::encode(&bruns);
                let attr = nonresident(AT_BITMAP, &[], &pairs, runs::clusters(&bruns), alloc, need, need);
                if !r0.replace(&b, attr) {
                    return Err(self.unsupported("$MFT", "extending $MFT's bitmap would need an attribute list"));
                }
            }
        } else {
            let mut v = r0.value(&b).to_vec();
            if (v.len() as u64) < need {
                v.resize(need as usize, 0);
                if !r0.replace(&b, resident(AT_BITMAP, &[], &v, false)) {
                    return Err(self.unsupported("$MFT", "extending $MFT's bitmap would need an attribute list"));
                }
            }
        }
        self.mft_runs = mft_runs;
        self.mft_size = new_size;
        self.write_record(&r0)
    }
}
