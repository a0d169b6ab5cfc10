//! The VHD footer (the "hard disk footer", 512 bytes) and the dynamic disk header, parsed and
//! bounded as qemu's vpc driver does.
use crate::disk::{escape_bytes, DiskError};
use std::path::Path;

pub const FOOTER_SIZE: u64 = 512;
pub const DYN_HEADER_SIZE: usize = 1024;
pub const COOKIE: &[u8; 8] = b"conectix";
pub const DYN_COOKIE: &[u8; 8] = b"cxsparse";
/// 2040 GiB: the largest disk qemu (and Virtual PC) accept.
pub const MAX_SECTORS: u64 = 0xff00_0000;
/// CHS of a disk too large for CHS: its size comes from `current_size`.
const MAX_GEOMETRY: u64 = 65535 * 16 * 255;

/// `disk_type` of the footer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskType {
    Fixed,
    Dynamic,
    Differencing,
}

impl DiskType {
    pub fn name(self) -> &'static str {
        match self {
            DiskType::Fixed => "fixed",
            DiskType::Dynamic => "dynamic",
            DiskType::Differencing => "differencing",
        }
    }
}

/// The fields of the footer Ferry uses.
#[derive(Clone, Debug)]
pub struct Footer {
    pub data_offset: u64,
    pub creator_app: [u8; 4],
    pub current_size: u64,
    pub disk_type: DiskType,
    pub uuid: [u8; 16],
    /// The virtual size in bytes, chosen as qemu does (CHS or `current_size`).
    pub size: u64,
}

pub fn be16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2).map_or(0, |s| u16::from_be_bytes([s[0], s[1]]))
}

pub fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

pub fn be64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_be_bytes(a)
    })
}

/// One's complement of the byte sum, the checksum field (`at`) counted as zero.
pub fn checksum(b: &[u8], at: usize) -> u32 {
    let sum = b.iter().enumerate().filter(|(i, _)| !(at..at + 4).contains(i)).fold(0u32, |s, (_, &x)| s.wrapping_add(x as u32));
    !sum
}

/// Parses a 512-byte footer. `fixed` says it was found at the end of the file (a fixed disk).
pub fn parse_footer(path: &Path, b: &[u8; 512], fixed: bool) -> Result<Footer, DiskError> {
    if &b[..8] != COOKIE {
        return Err(DiskError::invalid(path, "footer cookie", escape_bytes(&b[..8]), "expected \"conectix\""));
    }
    let stored = be32(b, 64);
    let sum = checksum(b, 64);
    if stored != sum {
        return Err(DiskError::invalid(path, "footer checksum", format!("{stored:#x}"), format!("computed {sum:#x}")));
    }
    let raw_type = be32(b, 60);
    let disk_type = match (fixed, raw_type) {
        (true, 2) => DiskType::Fixed,
        (false, 4) => DiskType::Differencing,
        // qemu reads any image whose footer copy leads the file as a dynamic one.
        (false, _) => DiskType::Dynamic,
        (true, t) => return Err(DiskError::invalid(path, "footer disk type", t, "a footer only at the end must be a fixed disk (2)")),
    };
    let mut creator_app = [0u8; 4];
    creator_app.copy_from_slice(&b[28..32]);
    let current_size = be64(b, 48);
    let chs = be16(b, 56) as u64 * b[58] as u64 * b[59] as u64;
    // Virtual PC and qemu's own "qemu" images use the geometry; Hyper-V, disk2vhd, XenServer,
    // XenConverter and qemu's "qem2" use current_size (the table of qemu's vpc.c).
    let use_chs = !matches!(&creator_app, b"win " | b"qem2" | b"d2v " | b"CTXS" | b"tap\0");
    let sectors = if !use_chs || chs == MAX_GEOMETRY { current_size / 512 } else { chs };
    if sectors > MAX_SECTORS {
        return Err(DiskError::invalid(path, "footer current_size", current_size, "larger than 2040 GiB, the VHD limit"));
    }
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&b[68..84]);
    Ok(Footer { data_offset: be64(b, 16), creator_app, current_size, disk_type, uuid, size: sectors * 512 })
}

/// A parent locator entry of a differencing disk.
#[derive(Clone, Debug)]
pub struct Locator {
    pub platform: [u8; 4],
    pub data_length: u32,
    pub data_offset: u64,
}

/// The dynamic disk header.
#[derive(Clone, Debug)]
pub struct DynHeader {
    pub table_offset: u64,
    pub max_table_entries: u32,
    pub block_size: u32,
    pub parent_uuid: [u8; 16],
    /// `parent_name`, UTF-16 big-endian in the file.
    pub parent_name: String,
    pub locators: Vec<Locator>,
}

pub fn parse_dyn_header(path: &Path, b: &[u8; DYN_HEADER_SIZE], size: u64, file_len: u64) -> Result<DynHeader, DiskError> {
    if &b[..8] != DYN_COOKIE {
        return Err(DiskError::invalid(path, "dynamic header cookie", escape_bytes(&b[..8]), "expected \"cxsparse\""));
    }
    let block_size = be32(b, 32);
    if !block_size.is_power_of_two() || block_size < 512 {
        return Err(DiskError::invalid(path, "dynamic header block_size", block_size, "not a power of two of at least 512"));
    }
    let max_table_entries = be32(b, 28);
    if (max_table_entries as u64) * (block_size as u64) < size {
        return Err(DiskError::invalid(
            path,
            "dynamic header max_table_entries",
            max_table_entries,
            format!("{} blocks of {block_size} bytes do not cover the disk ({size} bytes)", max_table_entries),
        ));
    }
    let table_offset = be64(b, 16);
    // The BAT is read whole: it must lie inside the file before it sizes an allocation.
    if table_offset.checked_add(max_table_entries as u64 * 4).is_none_or(|end| end > file_len) {
        return Err(DiskError::invalid(
            path,
            "dynamic header table_offset",
            table_offset,
            format!("a table of {max_table_entries} entries there runs past the end of the file ({file_len} bytes)"),
        ));
    }
    let mut parent_uuid = [0u8; 16];
    parent_uuid.copy_from_slice(&b[40..56]);
    let units: Vec<u16> = b[64..576].chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
    let parent_name: String =
        char::decode_utf16(units.into_iter().take_while(|&u| u != 0)).map(|c| c.unwrap_or('\u{fffd}')).collect();
    let locators = (0..8)
        .map(|i| 576 + i * 24)
        .filter(|&at| be32(b, at) != 0)
        .map(|at| {
            let mut platform = [0u8; 4];
            platform.copy_from_slice(&b[at..at + 4]);
            Locator { platform, data_length: be32(b, at + 8), data_offset: be64(b, at + 16) }
        })
        .collect();
    Ok(DynHeader { table_offset, max_table_entries, block_size, parent_uuid, parent_name, locators })
}
