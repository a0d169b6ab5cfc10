//! GPT: primary header at LBA 1, backup at the last LBA, both CRC32-checked together with
//! their entry arrays. The backup is used when the primary is bad; an MBR that describes
//! partitions besides the protective 0xEE entry is reported as a hybrid MBR.

use super::mbr::Mbr;
use super::types::gpt_kind;
use super::{PartError, Partition, PartitionTable, TableKind};
use crate::bytes::{array, field, guid_mixed, u32le, u64le, utf16le};
use crate::device::Device;

/// Largest entry array read (128 entries of 128 bytes is the norm: 16 KiB).
const MAX_ARRAY: u64 = 1 << 20;

struct Header {
    backup_lba: u64,
    first_usable: u64,
    last_usable: u64,
    disk_guid: String,
    entries_lba: u64,
    count: u32,
    entry_size: u32,
    entries_crc: u32,
}

/// Reads GPT with either sector size; `Ok(None)` when neither header is valid anywhere.
pub(super) fn read(disk: &Device, mbr: Option<&Mbr>) -> Result<Option<PartitionTable>, PartError> {
    for ss in [512u64, 4096] {
        if disk.size() < ss * 3 {
            continue;
        }
        let last = disk.size() / ss - 1;
        let primary = load(disk, ss, 1);
        let (hdr, entries, used_backup, mut warnings) = match primary {
            Ok(ok) => (ok.0, ok.1, false, Vec::new()),
            Err(why) => {
                let magic = disk.read(ss, 8)?;
                let backup_lba = match load_header(disk, ss, 1) {
                    Ok(h) if h.backup_lba <= last => h.backup_lba,
                    _ => last,
                };
                match load(disk, ss, backup_lba) {
                    Ok(ok) => {
                        let w = format!(
                            "{}: primary GPT header is bad ({why}); using the backup at LBA {backup_lba}",
                            disk.name
                        );
                        (ok.0, ok.1, true, vec![w])
                    }
                    Err(_) if magic != b"EFI PART" => continue,
                    Err(why2) => {
                        return Err(PartError::Invalid {
                            device: disk.name.clone(),
                            field: "GPT",
                            value: format!("primary: {why}; backup: {why2}"),
                            reason: "both headers are unusable",
                        })
                    }
                }
            }
        };
        let mut t = PartitionTable {
            kind: TableKind::Gpt,
            disk_id: hdr.disk_guid.clone(),
            sector_size: ss as u32,
            partitions: Vec::new(),
            used_backup,
            hybrid_mbr: false,
            warnings: Vec::new(),
        };
        for (i, e) in entries.chunks(hdr.entry_size as usize).enumerate() {
            let tguid: [u8; 16] = array(e, 0);
            if tguid == [0; 16] {
                continue;
            }
            let (first, lastl) = (u64le(e, 32), u64le(e, 40));
            let number = i as u32 + 1;
            if first > lastl || first < hdr.first_usable || lastl > hdr.last_usable || lastl > last {
                warnings.push(format!(
                    "{}: GPT partition {number} spans LBA {first}-{lastl}, outside the usable {}-{}; ignored",
                    disk.name, hdr.first_usable, hdr.last_usable
                ));
                continue;
            }
            let type_id = guid_mixed(&tguid);
            t.partitions.push(Partition {
                number,
                start: first * ss,
                size: (lastl - first + 1) * ss,
                kind: gpt_kind(&type_id),
                type_id,
                partuuid: guid_mixed(&array(e, 16)).to_lowercase(),
                name: Some(utf16le(field(e, 56, 72).unwrap_or_default())).filter(|n| !n.is_empty()),
                bootable: u64le(e, 48) & 4 != 0,
                logical: false,
            });
        }
        if let Some(m) = mbr {
            let others: Vec<_> = m.entries.iter().filter(|(_, e)| e.ptype != 0xee).collect();
            if !others.is_empty() {
                t.hybrid_mbr = true;
                warnings.push(format!(
                    "{}: hybrid MBR: {} MBR entries besides the protective one; the GPT is used",
                    disk.name,
                    others.len()
                ));
            }
        }
        if !used_backup {
            if let Err(why) = load(disk, ss, hdr.backup_lba.min(last)) {
                warnings.push(format!("{}: backup GPT header is bad ({why})", disk.name));
            }
        }
        t.warnings = warnings;
        return Ok(Some(t));
    }
    Ok(None)
}

fn load_header(disk: &Device, ss: u64, lba: u64) -> Result<Header, String> {
    let s = disk.read(lba * ss, ss as usize).map_err(|e| e.to_string())?;
    if field(&s, 0, 8) != Some(b"EFI PART") {
        return Err(format!("no EFI PART signature at LBA {lba}"));
    }
    let hsize = u32le(&s, 12);
    if hsize < 92 || u64::from(hsize) > ss {
        return Err(format!("header size {hsize}"));
    }
    let mut h = s.get(..hsize as usize).unwrap_or_default().to_vec();
    let stored = u32le(&h, 16);
    if let Some(c) = h.get_mut(16..20) {
        c.fill(0);
    }
    let crc = crc32fast::hash(&h);
    if crc != stored {
        return Err(format!("header CRC32 {stored:#010x}, computed {crc:#010x}"));
    }
    let my_lba = u64le(&s, 24);
    if my_lba != lba {
        return Err(format!("header says it is at LBA {my_lba}, found at {lba}"));
    }
    Ok(Header {
        backup_lba: u64le(&s, 32),
        first_usable: u64le(&s, 40),
        last_usable: u64le(&s, 48),
        disk_guid: guid_mixed(&array(&s, 56)).to_lowercase(),
        entries_lba: u64le(&s, 72),
        count: u32le(&s, 80),
        entry_size: u32le(&s, 84),
        entries_crc: u32le(&s, 88),
    })
}

fn load(disk: &Device, ss: u64, lba: u64) -> Result<(Header, Vec<u8>), String> {
    let h = load_header(disk, ss, lba)?;
    if h.entry_size < 128 || h.entry_size % 8 != 0 {
        return Err(format!("entry size {}", h.entry_size));
    }
    let bytes = u64::from(h.count) * u64::from(h.entry_size);
    if bytes > MAX_ARRAY {
        return Err(format!("entry array of {} x {} bytes is too large", h.count, h.entry_size));
    }
    let off = h.entries_lba.checked_mul(ss).ok_or(format!("entries LBA {}", h.entries_lba))?;
    let arr = disk.read(off, bytes as usize).map_err(|e| e.to_string())?;
    let crc = crc32fast::hash(&arr);
    if crc != h.entries_crc {
        return Err(format!("entry array CRC32 {:#010x}, computed {crc:#010x}", h.entries_crc));
    }
    Ok((h, arr))
}
