//! The VHDX metadata region: file parameters, virtual disk size, sector sizes.
use super::header::{le16, le32, le64, Guid, Region};
use crate::disk::{escape_bytes, DiskError, ReadOnlyFile};

const TABLE_LEN: usize = 64 << 10;
const MAX_ENTRIES: u16 = 2047;
/// 64 TiB, the format's limit.
const MAX_SIZE: u64 = 64 << 40;

const FILE_PARAMETERS: Guid = Guid::new(0xcaa16737, 0xfa36, 0x4d43, [0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b]);
const VIRTUAL_DISK_SIZE: Guid = Guid::new(0x2fa54224, 0xcd1b, 0x4876, [0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8]);
const PAGE83: Guid = Guid::new(0xbeca12ab, 0xb2e6, 0x4523, [0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46]);
const LOGICAL_SECTOR: Guid = Guid::new(0x8141bf1d, 0xa96f, 0x4709, [0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f]);
const PHYSICAL_SECTOR: Guid = Guid::new(0xcda348c7, 0x445d, 0x4471, [0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56]);
const PARENT_LOCATOR: Guid = Guid::new(0xa8d35f2d, 0xb30b, 0x454d, [0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c]);

/// What the metadata says about the disk.
#[derive(Clone, Debug)]
pub struct Metadata {
    pub block_size: u32,
    pub has_parent: bool,
    pub virtual_size: u64,
    pub logical_sector: u32,
    pub physical_sector: u32,
}

pub fn read(file: &ReadOnlyFile, region: Region) -> Result<Metadata, DiskError> {
    let path = file.path();
    if (region.length as usize) < TABLE_LEN {
        return Err(DiskError::invalid(path, "metadata region length", region.length, "smaller than its 64 KiB table"));
    }
    let mut t = vec![0u8; TABLE_LEN];
    file.read_exact_at(&mut t, region.offset, "metadata table")?;
    if &t[..8] != b"metadata" {
        return Err(DiskError::invalid(path, "metadata table signature", escape_bytes(&t[..8]), "expected \"metadata\""));
    }
    let count = le16(&t, 10);
    if count > MAX_ENTRIES {
        return Err(DiskError::invalid(path, "metadata table entry_count", count, format!("more than {MAX_ENTRIES}")));
    }
    // Each item: a small value read at its offset inside the region.
    let item = |id: Guid, len: usize| -> Result<Option<Vec<u8>>, DiskError> {
        for i in 0..count as usize {
            let at = 32 + i * 32;
            if Guid::read(&t, at) != id {
                continue;
            }
            let (off, ilen) = (le32(&t, at + 16), le32(&t, at + 20));
            if (ilen as usize) < len || off < TABLE_LEN as u32 || off as u64 + len as u64 > region.length as u64 {
                return Err(DiskError::invalid(
                    path,
                    format!("metadata item {id} offset"),
                    off,
                    format!("length {ilen}: not a value of {len} bytes inside the metadata region ({} bytes)", region.length),
                ));
            }
            let mut v = vec![0u8; len];
            file.read_exact_at(&mut v, region.offset + off as u64, "metadata item")?;
            return Ok(Some(v));
        }
        Ok(None)
    };
    for i in 0..count as usize {
        let at = 32 + i * 32;
        let id = Guid::read(&t, at);
        let required = le32(&t, at + 24) & 4 != 0;
        let known = [FILE_PARAMETERS, VIRTUAL_DISK_SIZE, PAGE83, LOGICAL_SECTOR, PHYSICAL_SECTOR, PARENT_LOCATOR];
        if required && !known.contains(&id) {
            return Err(DiskError::unsupported(path, format!("VHDX metadata item {id} marked required")));
        }
    }
    let missing = |what: &str| DiskError::invalid(path, format!("metadata {what}"), "missing", "a required item is absent");
    let fp = item(FILE_PARAMETERS, 8)?.ok_or_else(|| missing("file parameters"))?;
    let block_size = le32(&fp, 0);
    if !block_size.is_power_of_two() || !(1 << 20..=256 << 20).contains(&block_size) {
        return Err(DiskError::invalid(path, "metadata block size", block_size, "not a power of two from 1 MiB to 256 MiB"));
    }
    let has_parent = le32(&fp, 4) & 2 != 0;
    let ls = item(LOGICAL_SECTOR, 4)?.ok_or_else(|| missing("logical sector size"))?;
    let logical_sector = le32(&ls, 0);
    if logical_sector != 512 && logical_sector != 4096 {
        return Err(DiskError::invalid(path, "metadata logical sector size", logical_sector, "expected 512 or 4096"));
    }
    let ps = item(PHYSICAL_SECTOR, 4)?.ok_or_else(|| missing("physical sector size"))?;
    let physical_sector = le32(&ps, 0);
    let vs = item(VIRTUAL_DISK_SIZE, 8)?.ok_or_else(|| missing("virtual disk size"))?;
    let virtual_size = le64(&vs, 0);
    if virtual_size > MAX_SIZE || !virtual_size.is_multiple_of(logical_sector as u64) {
        return Err(DiskError::invalid(
            path,
            "metadata virtual disk size",
            virtual_size,
            format!("not a multiple of the {logical_sector}-byte sector up to 64 TiB"),
        ));
    }
    Ok(Metadata { block_size, has_parent, virtual_size, logical_sector, physical_sector })
}
