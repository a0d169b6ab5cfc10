//! Partition tables: MBR (with extended/logical chains) and GPT (both headers, CRC-checked).

mod gpt;
mod mbr;
mod types;

pub use types::PartKind;

use crate::device::{Device, Slice};
use ferry_formats::disk::DiskError;
use serde::Serialize;
use std::sync::Arc;

/// Why a partition table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PartError {
    #[error(transparent)]
    Disk(#[from] DiskError),
    #[error("{device}: invalid {field} {value}: {reason}")]
    Invalid { device: String, field: &'static str, value: String, reason: &'static str },
}

/// Which scheme a table uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    Mbr,
    Gpt,
}

/// One partition.
#[derive(Clone, Debug, Serialize)]
pub struct Partition {
    /// 1-based number as Linux names it: MBR primaries 1-4, logicals from 5; GPT slot + 1.
    pub number: u32,
    /// Start in bytes from the start of the disk.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// Recognised type.
    pub kind: PartKind,
    /// Raw type: `0x83` for MBR, the type GUID for GPT.
    pub type_id: String,
    /// PARTUUID as Linux shows it (GPT unique GUID, or `DISKSIG-NN` for MBR).
    pub partuuid: String,
    /// GPT partition name (PARTLABEL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// MBR active flag, or GPT legacy-BIOS-bootable attribute.
    pub bootable: bool,
    /// A logical partition inside an MBR extended partition.
    pub logical: bool,
}

/// A disk's partition table.
#[derive(Clone, Debug, Serialize)]
pub struct PartitionTable {
    pub kind: TableKind,
    /// MBR disk signature (`0x1234abcd`) or GPT disk GUID.
    pub disk_id: String,
    /// Sector size the table was found with.
    pub sector_size: u32,
    pub partitions: Vec<Partition>,
    /// GPT: the primary header or entries were bad and the backup was used.
    pub used_backup: bool,
    /// GPT with an MBR that describes real partitions besides the protective one.
    pub hybrid_mbr: bool,
    /// Damage noticed and worked around, one line each.
    pub warnings: Vec<String>,
}

impl PartitionTable {
    /// Reads the partition table of a whole disk: GPT if a protective MBR (or a valid GPT
    /// header) is present, else MBR. `Ok(None)` when the disk has no partition table.
    pub fn read(disk: &Device) -> Result<Option<PartitionTable>, PartError> {
        let lba0 = disk.read_upto(0, 512)?;
        let mbr = mbr::parse_sector0(&disk.name, &lba0);
        let protective = mbr.as_ref().is_some_and(|m| m.entries.iter().any(|(_, e)| e.ptype == 0xee));
        if protective || mbr.is_none() {
            if let Some(t) = gpt::read(disk, mbr.as_ref())? {
                return Ok(Some(warn_overlaps(&disk.name, t)));
            }
        }
        match mbr {
            Some(m) if !protective => Ok(Some(warn_overlaps(&disk.name, mbr::read(disk, &m)?))),
            Some(_) => Err(PartError::Invalid {
                device: disk.name.clone(),
                field: "GPT header",
                value: "none valid".into(),
                reason: "protective MBR present but neither GPT header is usable",
            }),
            None => Ok(None),
        }
    }
}

/// Adds a warning for each pair of partitions sharing sectors (an extended partition and
/// the logical partitions it holds excepted), as `sfdisk --verify` and parted complain.
fn warn_overlaps(disk: &str, mut t: PartitionTable) -> PartitionTable {
    let mut parts: Vec<&Partition> = t.partitions.iter().filter(|p| p.kind != PartKind::Extended && p.size > 0).collect();
    parts.sort_by_key(|p| (p.start, p.number));
    let mut warnings = Vec::new();
    for (i, a) in parts.iter().enumerate() {
        let a_end = a.start.saturating_add(a.size);
        for b in parts[i + 1..].iter().take_while(|b| b.start < a_end) {
            warnings.push(format!(
                "{disk}: partitions {} and {} overlap (bytes {}-{} and {}-{})",
                a.number,
                b.number,
                a.start,
                a_end - 1,
                b.start,
                b.start.saturating_add(b.size) - 1
            ));
            if warnings.len() >= 16 {
                break;
            }
        }
    }
    t.warnings.extend(warnings);
    t
}

/// Name of partition `number` of disk `disk` as Linux spells it (`/dev/sda1`, `/dev/nvme0n1p1`).
pub fn partition_name(disk: &str, number: u32) -> String {
    if disk.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{disk}p{number}")
    } else {
        format!("{disk}{number}")
    }
}

/// The partition as a device of its own.
pub fn partition_device(disk: &Device, p: &Partition) -> Result<Device, DiskError> {
    let name = partition_name(&disk.name, p.number);
    let slice = Slice::new(disk.dev.clone(), p.start, p.size, &name)?;
    Ok(Device::new(name, Arc::new(slice)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;

    fn entry(sector: &mut [u8], slot: usize, ptype: u8, lba: u32, sectors: u32) {
        let e = &mut sector[446 + 16 * slot..446 + 16 * (slot + 1)];
        e[4] = ptype;
        e[8..12].copy_from_slice(&lba.to_le_bytes());
        e[12..16].copy_from_slice(&sectors.to_le_bytes());
    }

    #[test]
    fn mbr_logicals_and_out_of_range_entries() {
        let mut d = vec![0u8; 64 * 512];
        d[510] = 0x55;
        d[511] = 0xaa;
        entry(&mut d, 0, 0x83, 1, 4);
        entry(&mut d, 1, 0x05, 8, 40);
        entry(&mut d, 2, 0x83, 60, 100); // past the end
        // EBR at 8: logical at +1 (len 4), next EBR at extended+16.
        let ebr = &mut d[8 * 512..9 * 512];
        ebr[510] = 0x55;
        ebr[511] = 0xaa;
        entry(ebr, 0, 0x82, 1, 4);
        entry(ebr, 1, 0x05, 16, 8);
        let ebr2 = &mut d[24 * 512..25 * 512];
        ebr2[510] = 0x55;
        ebr2[511] = 0xaa;
        entry(ebr2, 0, 0x8e, 2, 4);
        let disk = Device::new("/dev/sda", Arc::new(MemDevice(d)));
        let t = PartitionTable::read(&disk).unwrap().unwrap();
        let got: Vec<(u32, u64, PartKind)> = t.partitions.iter().map(|p| (p.number, p.start / 512, p.kind)).collect();
        assert_eq!(
            got,
            [(1, 1, PartKind::Linux), (2, 8, PartKind::Extended), (5, 9, PartKind::LinuxSwap), (6, 26, PartKind::LinuxLvm)]
        );
        assert!(t.warnings[0].contains("partition 3 ends at sector 160"), "{:?}", t.warnings);
    }

    #[test]
    fn overlapping_partitions_are_warned() {
        let mut d = vec![0u8; 64 * 512];
        d[510] = 0x55;
        d[511] = 0xaa;
        entry(&mut d, 0, 0x83, 2, 20);
        entry(&mut d, 1, 0x83, 10, 20);
        entry(&mut d, 2, 0x83, 40, 4);
        let disk = Device::new("/dev/sda", Arc::new(MemDevice(d)));
        let t = PartitionTable::read(&disk).unwrap().unwrap();
        assert_eq!(t.warnings, ["/dev/sda: partitions 1 and 2 overlap (bytes 1024-11263 and 5120-15359)"]);
    }

    #[test]
    fn no_table_and_filesystem_boot_sectors() {
        let blank = Device::new("/dev/sda", Arc::new(MemDevice(vec![0; 8192])));
        assert!(PartitionTable::read(&blank).unwrap().is_none());
        let mut ntfs = vec![0u8; 8192];
        ntfs[3..11].copy_from_slice(b"NTFS    ");
        ntfs[510] = 0x55;
        ntfs[511] = 0xaa;
        let d = Device::new("/dev/sda", Arc::new(MemDevice(ntfs)));
        assert!(PartitionTable::read(&d).unwrap().is_none());
        assert_eq!(partition_name("/dev/nvme0n1", 2), "/dev/nvme0n1p2");
    }
}
