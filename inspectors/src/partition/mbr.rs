//! MBR: four primary entries, and logical partitions in a chain of EBRs inside an
//! extended partition. The chain is followed loop-safely.

use super::types::{mbr_kind, PartKind};
use super::{PartError, Partition, PartitionTable, TableKind};
use crate::bytes::{field, u16le, u32le};
use crate::device::Device;
use std::collections::HashSet;

/// Most logical partitions followed in one extended partition.
const MAX_LOGICAL: usize = 128;

/// One 16-byte MBR/EBR entry.
#[derive(Clone, Copy, Debug)]
pub(super) struct Entry {
    pub status: u8,
    pub ptype: u8,
    pub lba: u32,
    pub sectors: u32,
}

/// A parsed sector 0.
#[derive(Debug)]
pub(super) struct Mbr {
    pub signature: u32,
    pub entries: Vec<(usize, Entry)>,
}

fn entries(sector: &[u8]) -> Vec<(usize, Entry)> {
    (0..4)
        .filter_map(|i| {
            let e = field(sector, 446 + 16 * i, 16)?;
            let entry = Entry { status: e[0], ptype: e[4], lba: u32le(e, 8), sectors: u32le(e, 12) };
            (entry.ptype != 0 && entry.sectors != 0).then_some((i, entry))
        })
        .collect()
}

/// Parses sector 0 as an MBR; `None` if it is not one (no 0x55AA, a filesystem boot
/// sector without a partition table, or impossible status bytes).
pub(super) fn parse_sector0(_disk: &str, s: &[u8]) -> Option<Mbr> {
    if s.len() < 512 || u16le(s, 510) != 0xaa55 {
        return None;
    }
    let es = entries(s);
    // A volume boot record (partitionless FAT/NTFS) also ends in 55AA.
    let vbr = field(s, 3, 8) == Some(b"NTFS    ")
        || field(s, 54, 3) == Some(b"FAT")
        || field(s, 82, 5) == Some(b"FAT32");
    if vbr && es.iter().all(|(_, e)| e.status & 0x7f != 0 || e.ptype == 0) {
        return None;
    }
    if vbr && es.is_empty() {
        return None;
    }
    if es.iter().any(|(_, e)| e.status != 0 && e.status != 0x80) {
        return None;
    }
    Some(Mbr { signature: u32le(s, 440), entries: es })
}

/// Builds the partition list of an MBR disk, following extended partitions.
pub(super) fn read(disk: &Device, mbr: &Mbr) -> Result<PartitionTable, PartError> {
    let sectors = disk.size() / 512;
    let mut t = PartitionTable {
        kind: TableKind::Mbr,
        disk_id: format!("0x{:08x}", mbr.signature),
        sector_size: 512,
        partitions: Vec::new(),
        used_backup: false,
        hybrid_mbr: false,
        warnings: Vec::new(),
    };
    let mut extended = None;
    for &(i, e) in &mbr.entries {
        let number = i as u32 + 1;
        let end = u64::from(e.lba) + u64::from(e.sectors);
        if end > sectors {
            t.warnings.push(format!(
                "{}: partition {number} ends at sector {end}, past the end of the disk ({sectors} sectors); ignored",
                disk.name
            ));
            continue;
        }
        let kind = mbr_kind(e.ptype);
        if kind == PartKind::Extended {
            if extended.is_none() {
                extended = Some(e);
            } else {
                t.warnings.push(format!("{}: second extended partition {number} ignored", disk.name));
            }
        }
        t.partitions.push(part(mbr.signature, number, u64::from(e.lba), e, kind, false));
    }
    if let Some(ext) = extended {
        logical(disk, mbr.signature, ext, sectors, &mut t)?;
    }
    Ok(t)
}

fn part(sig: u32, number: u32, start: u64, e: Entry, kind: PartKind, logical: bool) -> Partition {
    Partition {
        number,
        start: start * 512,
        size: u64::from(e.sectors) * 512,
        kind,
        type_id: format!("0x{:02x}", e.ptype),
        partuuid: format!("{sig:08x}-{number:02x}"),
        name: None,
        bootable: e.status == 0x80,
        logical,
    }
}

/// Walks the EBR chain. Each EBR holds the logical partition (relative to itself) and
/// the link to the next EBR (relative to the extended partition's start).
fn logical(disk: &Device, sig: u32, ext: Entry, sectors: u64, t: &mut PartitionTable) -> Result<(), PartError> {
    let base = u64::from(ext.lba);
    let ext_end = base + u64::from(ext.sectors);
    let mut ebr = base;
    let mut seen = HashSet::new();
    let mut number = 5;
    for _ in 0..MAX_LOGICAL {
        if !seen.insert(ebr) {
            t.warnings.push(format!(
                "{}: extended partition chain loops back to sector {ebr}; stopped after {} logical partitions",
                disk.name,
                number - 5
            ));
            return Ok(());
        }
        if ebr >= ext_end || ebr >= sectors {
            t.warnings.push(format!(
                "{}: EBR at sector {ebr} lies outside the extended partition; chain stopped",
                disk.name
            ));
            return Ok(());
        }
        let s = disk.read(ebr * 512, 512)?;
        if u16le(&s, 510) != 0xaa55 {
            t.warnings.push(format!("{}: EBR at sector {ebr} has no 55AA signature; chain stopped", disk.name));
            return Ok(());
        }
        let es = entries(&s);
        let mut next = None;
        for (slot, e) in es {
            match (slot, mbr_kind(e.ptype)) {
                (0, kind) if kind != PartKind::Extended => {
                    let start = ebr + u64::from(e.lba);
                    if start + u64::from(e.sectors) > ext_end {
                        t.warnings.push(format!(
                            "{}: logical partition {number} at sector {start} runs past the extended partition; ignored",
                            disk.name
                        ));
                    } else {
                        t.partitions.push(part(sig, number, start, e, kind, true));
                    }
                    number += 1;
                }
                (1, PartKind::Extended) => next = Some(base + u64::from(e.lba)),
                _ => {}
            }
        }
        match next {
            Some(n) => ebr = n,
            None => return Ok(()),
        }
    }
    t.warnings.push(format!("{}: more than {MAX_LOGICAL} EBRs in the extended partition; the rest ignored", disk.name));
    Ok(())
}
