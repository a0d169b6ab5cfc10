//! The VHDX file identifier, the two headers (the current one has the highest sequence
//! number among those whose CRC-32C holds), the region table, and the log check.
use crate::disk::{escape_bytes, DiskError, ReadOnlyFile};


pub const SIGNATURE: &[u8; 8] = b"vhdxfile";
const HEADER_OFFSETS: [u64; 2] = [64 << 10, 128 << 10];
const HEADER_LEN: usize = 4096;
const REGION_OFFSETS: [u64; 2] = [192 << 10, 256 << 10];
const REGION_LEN: usize = 64 << 10;
const MAX_REGIONS: u32 = 2047;
/// Longest log scanned for entries to replay (the log is usually 1 MiB).
const MAX_LOG: u32 = 256 << 20;

pub const BAT_GUID: Guid = Guid::new(0x2dc27766, 0xf623, 0x4200, [0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08]);
pub const METADATA_GUID: Guid = Guid::new(0x8b7ca206, 0x4790, 0x4b9a, [0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e]);

/// A GUID as stored on disk (the first three fields little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    pub const fn new(a: u32, b: u16, c: u16, d: [u8; 8]) -> Self {
        let a = a.to_le_bytes();
        let b = b.to_le_bytes();
        let c = c.to_le_bytes();
        Guid([a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }

    pub fn read(b: &[u8], at: usize) -> Self {
        let mut g = [0u8; 16];
        if let Some(s) = b.get(at..at + 16) {
            g.copy_from_slice(s);
        }
        Guid(g)
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl std::fmt::Display for Guid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = &self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            u32::from_le_bytes([g[0], g[1], g[2], g[3]]),
            u16::from_le_bytes([g[4], g[5]]),
            u16::from_le_bytes([g[6], g[7]]),
            g[8],
            g[9],
            g[10],
            g[11],
            g[12],
            g[13],
            g[14],
            g[15]
        )
    }
}

pub fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2).map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

pub fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

pub fn le64(b: &[u8], at: usize) -> u64 {
    (le32(b, at) as u64) | ((le32(b, at + 4) as u64) << 32)
}

/// CRC-32C of `b` with its 4-byte checksum field at `at` counted as zero.
pub fn crc_without(b: &[u8], at: usize) -> u32 {
    let zero = [0u8; 4];
    let c = crc32c::crc32c(&b[..at]);
    let c = crc32c::crc32c_append(c, &zero);
    crc32c::crc32c_append(c, &b[at + 4..])
}

/// The current header's fields.
#[derive(Clone, Debug)]
pub struct Header {
    pub sequence: u64,
    pub log_guid: Guid,
    pub log_length: u32,
    pub log_offset: u64,
}

/// Reads both headers and returns the current one.
pub fn read_header(file: &ReadOnlyFile) -> Result<Header, DiskError> {
    let path = file.path();
    let mut id = [0u8; 8];
    file.read_exact_at(&mut id, 0, "file identifier")?;
    if &id != SIGNATURE {
        return Err(DiskError::invalid(path, "file identifier", escape_bytes(&id), "expected \"vhdxfile\""));
    }
    let mut best: Option<Header> = None;
    let mut why = Vec::new();
    for (n, &off) in HEADER_OFFSETS.iter().enumerate() {
        let mut b = vec![0u8; HEADER_LEN];
        file.read_exact_at(&mut b, off, "header")?;
        if &b[..4] != b"head" {
            why.push(format!("header {} signature {}", n + 1, escape_bytes(&b[..4])));
            continue;
        }
        let (stored, crc) = (le32(&b, 4), crc_without(&b, 4));
        if stored != crc {
            why.push(format!("header {} checksum {stored:#x} (computed {crc:#x})", n + 1));
            continue;
        }
        let version = le16(&b, 66);
        if version != 1 {
            return Err(DiskError::invalid(path, format!("header {} version", n + 1), version, "only version 1 is supported"));
        }
        let h = Header { sequence: le64(&b, 8), log_guid: Guid::read(&b, 48), log_length: le32(&b, 68), log_offset: le64(&b, 72) };
        if best.as_ref().is_none_or(|c| h.sequence > c.sequence) {
            best = Some(h);
        }
    }
    best.ok_or_else(|| DiskError::invalid(path, "headers", why.join(", "), "no valid header"))
}

/// A region table entry.
#[derive(Clone, Copy, Debug)]
pub struct Region {
    pub offset: u64,
    pub length: u32,
}

/// The BAT and metadata regions of the first valid region table.
pub fn read_regions(file: &ReadOnlyFile) -> Result<(Region, Region), DiskError> {
    let path = file.path();
    let mut why = Vec::new();
    for (n, &off) in REGION_OFFSETS.iter().enumerate() {
        let mut b = vec![0u8; REGION_LEN];
        file.read_exact_at(&mut b, off, "region table")?;
        if &b[..4] != b"regi" {
            why.push(format!("region table {} signature {}", n + 1, escape_bytes(&b[..4])));
            continue;
        }
        let (stored, crc) = (le32(&b, 4), crc_without(&b, 4));
        if stored != crc {
            why.push(format!("region table {} checksum {stored:#x} (computed {crc:#x})", n + 1));
            continue;
        }
        let count = le32(&b, 8);
        if count > MAX_REGIONS {
            return Err(DiskError::invalid(path, "region table entry_count", count, format!("more than {MAX_REGIONS}")));
        }
        let (mut bat, mut meta) = (None, None);
        for i in 0..count as usize {
            let at = 16 + i * 32;
            let guid = Guid::read(&b, at);
            let r = Region { offset: le64(&b, at + 16), length: le32(&b, at + 24) };
            let required = le32(&b, at + 28) & 1 != 0;
            if !r.offset.is_multiple_of(1 << 20) || r.offset < (1 << 20) || r.offset.checked_add(r.length as u64).is_none_or(|e| e > file.len()) {
                return Err(DiskError::invalid(
                    path,
                    format!("region {guid} file offset"),
                    r.offset,
                    format!("not a MiB-aligned range of {} bytes inside the file ({} bytes)", r.length, file.len()),
                ));
            }
            match guid {
                g if g == BAT_GUID => bat = Some(r),
                g if g == METADATA_GUID => meta = Some(r),
                g if required => {
                    return Err(DiskError::unsupported(path, format!("VHDX region {g} marked required")));
                }
                _ => {}
            }
        }
        return match (bat, meta) {
            (Some(b), Some(m)) => Ok((b, m)),
            (None, _) => Err(DiskError::invalid(path, "region table", "missing", "no BAT region")),
            (_, None) => Err(DiskError::invalid(path, "region table", "missing", "no metadata region")),
        };
    }
    Err(DiskError::invalid(path, "region tables", why.join(", "), "no valid region table"))
}

/// Refuses an image whose log holds entries to replay: a set `log_guid` and an entry of
/// that log with a valid CRC-32C. qemu, too, refuses to read such an image read-only.
pub fn check_log(file: &ReadOnlyFile, h: &Header) -> Result<(), DiskError> {
    if h.log_guid.is_zero() {
        return Ok(());
    }
    let path = file.path();
    if !h.log_length.is_multiple_of(1 << 20) || h.log_length > MAX_LOG || !h.log_offset.is_multiple_of(1 << 20)
        || h.log_offset.checked_add(h.log_length as u64).is_none_or(|e| e > file.len())
    {
        return Err(DiskError::invalid(
            path,
            "header log_offset",
            h.log_offset,
            format!("log of {} bytes is not a MiB-aligned range inside the file", h.log_length),
        ));
    }
    let mut log = vec![0u8; h.log_length as usize];
    file.read_exact_at(&mut log, h.log_offset, "log")?;
    for at in (0..log.len()).step_by(4096) {
        let e = &log[at..];
        if &e[..4] != b"loge" || Guid::read(e, 32) != h.log_guid {
            continue;
        }
        let len = le32(e, 8) as usize;
        if len < 4096 || !len.is_multiple_of(4096) || len > e.len() {
            continue;
        }
        if le32(e, 4) == crc_without(&e[..len], 4) {
            return Err(DiskError::unsupported(
                path,
                format!(
                    "VHDX with a log to replay (log_guid {}, entry at log offset {at}): the image was not closed cleanly; replay it on a copy with `qemu-img check -r all` or open it once in Hyper-V",
                    h.log_guid
                ),
            ));
        }
    }
    Ok(())
}
