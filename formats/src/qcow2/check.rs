//! Consistency check of a qcow2 file, like `qemu-img check`: every reference (header, L1,
//! L2 tables, data and compressed clusters, snapshots, refcount structures) is counted and
//! compared with the stored refcounts. Too low a stored refcount is a corruption, too high a
//! leak; COPIED flags must match refcount 1.
use super::reader::Qcow2Image;
use super::table::{be_entries, COMPRESSED, COPIED, OFFSET_MASK};
use crate::disk::DiskError;
use serde::Serialize;
use std::path::Path;

/// Most messages kept in a report.
const MAX_MESSAGES: usize = 200;

/// What `check` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckReport {
    pub corruptions: u64,
    pub leaks: u64,
    pub check_errors: u64,
    pub image_end_offset: u64,
    pub total_clusters: u64,
    pub allocated_clusters: u64,
    pub compressed_clusters: u64,
    pub fragmented_clusters: u64,
    /// One line per problem (at most 200), as qemu-img prints them.
    pub messages: Vec<String>,
}

impl CheckReport {
    fn note(&mut self, msg: String) {
        if self.messages.len() < MAX_MESSAGES {
            self.messages.push(msg);
        }
    }
}

struct Refs {
    counts: Vec<u32>,
    cs: u64,
}

impl Refs {
    /// Counts one reference to each cluster of `[off, off + len)`.
    fn add(&mut self, report: &mut CheckReport, off: u64, len: u64, what: &str) {
        if len == 0 {
            return;
        }
        let (first, last) = (off / self.cs, (off + len - 1) / self.cs);
        for c in first..=last {
            match self.counts.get_mut(c as usize) {
                Some(n) => *n = n.saturating_add(1),
                None => {
                    report.corruptions += 1;
                    report.note(format!("ERROR: {what} at offset 0x{off:x} is past the end of the image"));
                    return;
                }
            }
        }
    }
}

/// Checks the qcow2 file at `path` (its backing file is not opened).
pub fn check(path: &Path) -> Result<CheckReport, DiskError> {
    let img = Qcow2Image::open_no_backing(path)?;
    let h = img.header().clone();
    let cs = h.cluster_size();
    let file_len = img.file().len();
    let nb = file_len.div_ceil(cs);
    let mut r = CheckReport { total_clusters: h.size.div_ceil(cs), ..Default::default() };
    let mut refs = Refs { counts: vec![0; nb as usize], cs };

    refs.add(&mut r, 0, cs, "header");
    count_l1(&img, &mut r, &mut refs, h.l1_table_offset, img.l1().to_vec(), true)?;
    let snapshots_size = count_snapshots(&img, &mut r, &mut refs)?;
    refs.add(&mut r, h.snapshots_offset, snapshots_size, "snapshot table");
    let rt_bytes = u64::from(h.refcount_table_clusters) * cs;
    refs.add(&mut r, h.refcount_table_offset, rt_bytes, "refcount table");
    let mut raw = vec![0u8; rt_bytes as usize];
    img.file().read_exact_at(&mut raw, h.refcount_table_offset, "refcount table")?;
    let table = be_entries(&raw);
    for (i, &off) in table.iter().enumerate() {
        if off == 0 {
            continue;
        }
        if off % cs != 0 || off >= file_len {
            r.corruptions += 1;
            r.note(format!("ERROR refcount block {i} is not cluster aligned or outside the image"));
            continue;
        }
        refs.add(&mut r, off, cs, "refcount block");
    }

    // Compare with the stored refcounts.
    let bits = 1u64 << h.refcount_order;
    let per_block = cs * 8 / bits;
    let mut block: Option<(u64, Vec<u8>)> = None;
    let mut highest = 0u64;
    for c in 0..nb {
        let bi = c / per_block;
        let stored = match table.get(bi as usize).copied().filter(|&o| o != 0 && o % cs == 0 && o < file_len) {
            None => 0,
            Some(off) => {
                if block.as_ref().is_none_or(|b| b.0 != bi) {
                    let mut bytes = vec![0u8; cs as usize];
                    img.file().read_exact_at(&mut bytes, off, "refcount block")?;
                    block = Some((bi, bytes));
                }
                block.as_ref().map_or(0, |b| refcount_at(&b.1, c % per_block, bits))
            }
        };
        let computed = u64::from(refs.counts.get(c as usize).copied().unwrap_or(0));
        if computed > 0 || stored > 0 {
            highest = c + 1;
        }
        if stored != computed {
            if stored > computed {
                r.leaks += 1;
                r.note(format!("Leaked cluster {c} refcount={stored} reference={computed}"));
            } else {
                r.corruptions += 1;
                r.note(format!("ERROR cluster {c} refcount={stored} reference={computed}"));
            }
        }
        if computed > 0 && stored > 0 {
            refs.counts[c as usize] = u32::try_from(stored).unwrap_or(u32::MAX);
        }
    }
    r.image_end_offset = highest * cs;
    check_copied(&img, &mut r, &refs)?;
    Ok(r)
}

fn refcount_at(block: &[u8], index: u64, bits: u64) -> u64 {
    let bit = index * bits;
    let byte = (bit / 8) as usize;
    match bits {
        1 | 2 | 4 => block.get(byte).map_or(0, |b| (u64::from(*b) >> (bit % 8)) & ((1 << bits) - 1)),
        _ => {
            let n = (bits / 8) as usize;
            block.get(byte..byte + n).map_or(0, |s| s.iter().fold(0u64, |a, &b| a << 8 | u64::from(b)))
        }
    }
}

fn count_l1(
    img: &Qcow2Image,
    r: &mut CheckReport,
    refs: &mut Refs,
    l1_off: u64,
    l1: Vec<u64>,
    active: bool,
) -> Result<(), DiskError> {
    let h = img.header();
    let cs = h.cluster_size();
    refs.add(r, l1_off, l1.len() as u64 * 8, "L1 table");
    for (i, &e) in l1.iter().enumerate() {
        let l2_off = e & OFFSET_MASK;
        if l2_off == 0 {
            continue;
        }
        if !l2_off.is_multiple_of(cs) || l2_off + cs > img.file().len() {
            r.corruptions += 1;
            r.note(format!("ERROR l2_offset={l2_off:x}: L1 entry {i} is misaligned or past the end"));
            continue;
        }
        refs.add(r, l2_off, cs, "L2 table");
        let mut next = 0u64;
        for entry in img.read_l2(l2_off)? {
            if entry & COMPRESSED != 0 {
                let x = 62 - (h.cluster_bits - 8);
                let off = entry & ((1u64 << x) - 1);
                let sectors = (entry >> x) & ((1u64 << (h.cluster_bits - 8)) - 1);
                if entry & COPIED != 0 {
                    r.corruptions += 1;
                    r.note(format!("ERROR: coffset=0x{off:x}: copied flag must never be set for compressed clusters"));
                }
                refs.add(r, off & !511, (sectors + 1) * 512, "compressed cluster");
                if active {
                    r.allocated_clusters += 1;
                    r.compressed_clusters += 1;
                    r.fragmented_clusters += 1;
                }
                continue;
            }
            let off = entry & OFFSET_MASK;
            if off == 0 {
                continue;
            }
            if active {
                r.allocated_clusters += 1;
                if next != 0 && off != next {
                    r.fragmented_clusters += 1;
                }
                next = off + cs;
            }
            if !off.is_multiple_of(cs) {
                r.corruptions += 1;
                r.note(format!("ERROR offset={off:x}: Cluster is not properly aligned; L2 entry corrupted."));
            }
            refs.add(r, off, cs, "data cluster");
        }
    }
    Ok(())
}

/// Counts the snapshots' L1 tables and what they reference; returns the table's size.
fn count_snapshots(img: &Qcow2Image, r: &mut CheckReport, refs: &mut Refs) -> Result<u64, DiskError> {
    let h = img.header();
    let file = img.file();
    let mut at = h.snapshots_offset;
    for _ in 0..h.nb_snapshots {
        let mut fixed = [0u8; 40];
        file.read_exact_at(&mut fixed, at, "snapshot table entry")?;
        let be = |a: usize, n: usize| fixed[a..a + n].iter().fold(0u64, |v, &b| v << 8 | u64::from(b));
        let (l1_off, l1_size) = (be(0, 8), be(8, 4));
        let len = (40 + be(36, 4) + be(12, 2) + be(14, 2)).next_multiple_of(8);
        if l1_size * 8 > super::header::MAX_L1_BYTES || l1_off.checked_add(l1_size * 8).is_none_or(|e| e > file.len()) {
            return Err(DiskError::invalid(file.path(), "snapshot L1 table offset", l1_off, "outside the file"));
        }
        let mut raw = vec![0u8; (l1_size * 8) as usize];
        file.read_exact_at(&mut raw, l1_off, "snapshot L1 table")?;
        count_l1(img, r, refs, l1_off, be_entries(&raw), false)?;
        at += len;
    }
    Ok(at - h.snapshots_offset)
}

/// COPIED must be set exactly where the refcount is 1 (active tables only).
fn check_copied(img: &Qcow2Image, r: &mut CheckReport, refs: &Refs) -> Result<(), DiskError> {
    let cs = img.header().cluster_size();
    let rc = |off: u64| refs.counts.get((off / cs) as usize).copied().unwrap_or(0);
    for (i, &e) in img.l1().iter().enumerate() {
        let l2_off = e & OFFSET_MASK;
        if l2_off == 0 || !l2_off.is_multiple_of(cs) || l2_off + cs > img.file().len() {
            continue;
        }
        if (rc(l2_off) == 1) != (e & COPIED != 0) {
            r.corruptions += 1;
            r.note(format!("ERROR OFLAG_COPIED L2 cluster: l1_index={i} l1_entry={e:x} refcount={}", rc(l2_off)));
        }
        for entry in img.read_l2(l2_off)? {
            let off = entry & OFFSET_MASK;
            if entry & COMPRESSED != 0 || off == 0 {
                continue;
            }
            if (rc(off) == 1) != (entry & COPIED != 0) {
                r.corruptions += 1;
                r.note(format!("ERROR OFLAG_COPIED data cluster: l2_entry={entry:x} refcount={}", rc(off)));
            }
        }
    }
    Ok(())
}
