//! GNU sparse members of a plain tar: the old GNU format (`tar -S`, type `S`, map in the
//! header and extension blocks) and the PAX formats 0.0 (`GNU.sparse.offset`/`numbytes`
//! pairs), 0.1 (`GNU.sparse.map`) and 1.0 (map at the start of the member's data). The
//! stored data segments follow each other; everything between them reads as zeros.
//! Counts and sizes are bounded before they size anything.

use crate::disk::{BlockDevice, DiskError, Extent, ExtentKind, ImageInfo, ReadOnlyFile};
use crate::model::ConfigError;
use std::path::{Path, PathBuf};

/// Most data segments accepted in one member's map.
pub const MAX_SEGMENTS: usize = 1 << 20;
/// Longest PAX 1.0 map text accepted (a number is at most 20 digits and a newline).
const MAX_MAP_TEXT: u64 = (MAX_SEGMENTS as u64 * 2 + 1) * 21;

/// Where a sparse member's bytes are: `[logical offset, archive offset, length]` segments,
/// in order, and the file's real size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseMap {
    pub size: u64,
    pub segments: Vec<[u64; 3]>,
}

fn octal(field: &[u8]) -> Option<u64> {
    // GNU base-256 for large numbers: high bit of the first byte set.
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut n: u64 = u64::from(field.first()? & 0x7f);
        for &b in field.get(1..)? {
            n = n.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(n);
    }
    let s = std::str::from_utf8(field).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// Turns (logical offset, length) pairs into segments stored back to back from `data_start`,
/// checking order, overlap and the real size.
fn place(pairs: &[(u64, u64)], size: u64, data_start: u64, stored: u64, path: &Path, name: &str) -> Result<SparseMap, ConfigError> {
    let bad = |what: String| ConfigError::invalid(path, format!("sparse map of tar member {name}"), what, "inconsistent");
    let mut segments = Vec::with_capacity(pairs.len().min(1024));
    let (mut end, mut at) = (0u64, data_start);
    for &(off, len) in pairs {
        if off < end {
            return Err(bad(format!("segment at {off} overlaps the previous one")));
        }
        let stop = off.checked_add(len).filter(|&e| e <= size).ok_or_else(|| bad(format!("segment {off}+{len} past the size {size}")))?;
        if len > 0 {
            segments.push([off, at, len]);
        }
        at = at.checked_add(len).ok_or_else(|| bad(format!("segment length {len}")))?;
        end = stop;
    }
    if at - data_start > stored {
        return Err(bad(format!("{} bytes of segments in {stored} stored bytes", at - data_start)));
    }
    Ok(SparseMap { size, segments })
}

/// The old GNU format: the map in the header (4 entries) and extension blocks (21 each).
/// Returns the map and where the data starts.
pub fn gnu_old(file: &ReadOnlyFile, header_pos: u64, total: u64, path: &Path, name: &str) -> Result<SparseMap, ConfigError> {
    let err = |e: DiskError| ConfigError::other(path, e.to_string());
    let mut h = [0u8; 512];
    file.read_exact_at(&mut h, header_pos, "tar header").map_err(err)?;
    let field = |a: usize, n: usize| h.get(a..a + n).and_then(octal);
    let size = field(483, 12).ok_or_else(|| ConfigError::invalid(path, format!("tar member {name} realsize"), "", "not a number"))?;
    let stored = field(124, 12).unwrap_or(0);
    let mut pairs = Vec::new();
    let entry = |b: &[u8], i: usize| -> Option<(u64, u64)> {
        Some((octal(b.get(i * 24..i * 24 + 12)?)?, octal(b.get(i * 24 + 12..i * 24 + 24)?)?))
    };
    for i in 0..4 {
        match h.get(386..482).and_then(|b| entry(b, i)) {
            Some((0, 0)) => {}
            Some(p) => pairs.push(p),
            None => return Err(ConfigError::invalid(path, format!("tar member {name} sparse entry {i}"), "", "not a number")),
        }
    }
    let mut extended = h.get(482) == Some(&1);
    let mut pos = header_pos + 512;
    while extended {
        if pairs.len() > MAX_SEGMENTS || pos + 512 > total {
            return Err(ConfigError::invalid(path, format!("tar member {name} sparse map"), pairs.len(), "too many segments or runs past the archive"));
        }
        let mut b = [0u8; 512];
        file.read_exact_at(&mut b, pos, "tar sparse extension").map_err(err)?;
        for i in 0..21 {
            match entry(&b, i) {
                Some((0, 0)) => {}
                Some(p) => pairs.push(p),
                None => return Err(ConfigError::invalid(path, format!("tar member {name} sparse extension entry {i}"), "", "not a number")),
            }
        }
        extended = b.get(504) == Some(&1);
        pos += 512;
    }
    place(&pairs, size, pos, stored, path, name)
}

/// The PAX formats. `pax` is the member's extended header records (key, value) in order;
/// `data_start`/`stored` are where the member's data is and its stored size. None when the
/// records do not describe a sparse file.
pub fn pax(
    pax: &[(String, String)],
    file: &ReadOnlyFile,
    data_start: u64,
    stored: u64,
    path: &Path,
    name: &str,
) -> Result<Option<SparseMap>, ConfigError> {
    let get = |k: &str| pax.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let num = |k: &str, v: &str| {
        v.trim().parse::<u64>().map_err(|_| ConfigError::invalid(path, format!("tar member {name} {k}"), v, "not a number"))
    };
    let major = get("GNU.sparse.major");
    if major == Some("1") {
        // 1.0: the map is decimal text at the start of the data, padded to 512 bytes.
        let size = num("GNU.sparse.realsize", get("GNU.sparse.realsize").unwrap_or(""))?;
        let limit = stored.min(MAX_MAP_TEXT);
        let mut text = Vec::new();
        let mut pos = data_start;
        let mut need: Option<usize> = None;
        let mut lines = 0usize;
        let mut nums: Vec<u64> = Vec::new();
        while need.is_none_or(|n| nums.len() < n) {
            if pos - data_start >= limit {
                return Err(ConfigError::invalid(path, format!("tar member {name} sparse map"), "", "runs past the member"));
            }
            let mut b = [0u8; 512];
            file.read_exact_at(&mut b, pos, "tar sparse map").map_err(|e| ConfigError::other(path, e.to_string()))?;
            pos += 512;
            for &c in &b {
                if need.is_some_and(|n| nums.len() >= n) {
                    break;
                }
                if c == b'\n' {
                    let s = String::from_utf8_lossy(&text).into_owned();
                    let n = num("GNU.sparse map", &s)?;
                    text.clear();
                    lines += 1;
                    if lines == 1 {
                        let count = usize::try_from(n).ok().filter(|&c| c <= MAX_SEGMENTS).ok_or_else(|| {
                            ConfigError::invalid(path, format!("tar member {name} sparse map count"), n, format!("more than {MAX_SEGMENTS} segments"))
                        })?;
                        need = Some(count * 2);
                    } else {
                        nums.push(n);
                    }
                } else if text.len() < 24 {
                    text.push(c);
                } else {
                    return Err(ConfigError::invalid(path, format!("tar member {name} sparse map"), "", "a number longer than 24 digits"));
                }
            }
        }
        let pairs: Vec<(u64, u64)> = nums.chunks_exact(2).map(|p| (p[0], p[1])).collect();
        return place(&pairs, size, pos, stored.saturating_sub(pos - data_start), path, name).map(Some);
    }
    let Some(size) = get("GNU.sparse.size") else { return Ok(None) };
    let size = num("GNU.sparse.size", size)?;
    let mut pairs = Vec::new();
    if let Some(map) = get("GNU.sparse.map") {
        // 0.1: "off,len,off,len".
        let v: Vec<&str> = map.split(',').filter(|s| !s.is_empty()).collect();
        if !v.len().is_multiple_of(2) || v.len() / 2 > MAX_SEGMENTS {
            return Err(ConfigError::invalid(path, format!("tar member {name} GNU.sparse.map"), v.len(), "not an even count of numbers within bounds"));
        }
        for p in v.chunks_exact(2) {
            pairs.push((num("GNU.sparse.map", p[0])?, num("GNU.sparse.map", p[1])?));
        }
    } else {
        // 0.0: repeated GNU.sparse.offset / GNU.sparse.numbytes records.
        let mut off = None;
        for (k, v) in pax {
            match k.as_str() {
                "GNU.sparse.offset" => off = Some(num(k, v)?),
                "GNU.sparse.numbytes" => {
                    let o = off.take().ok_or_else(|| ConfigError::invalid(path, format!("tar member {name} GNU.sparse.numbytes"), v, "without an offset"))?;
                    pairs.push((o, num(k, v)?));
                    if pairs.len() > MAX_SEGMENTS {
                        return Err(ConfigError::invalid(path, format!("tar member {name} sparse map"), pairs.len(), "too many segments"));
                    }
                }
                _ => {}
            }
        }
    }
    place(&pairs, size, data_start, stored, path, name).map(Some)
}

/// The real name of a PAX sparse member: `GNU.sparse.name`, else the stored name without
/// its `GNUSparseFile.N/` directory.
pub fn real_name(pax: &[(String, String)], stored: &str) -> String {
    if let Some((_, n)) = pax.iter().rev().find(|(k, _)| k == "GNU.sparse.name") {
        return n.clone();
    }
    let parts: Vec<&str> = stored.split('/').filter(|p| !p.starts_with("GNUSparseFile.")).collect();
    parts.join("/")
}

/// A sparse member read in place: segments from the archive, zeros between them.
pub struct SparseMember {
    file: ReadOnlyFile,
    name: PathBuf,
    map: SparseMap,
}

impl SparseMember {
    pub fn open(archive: &Path, member: &str, size: u64, segments: &[[u64; 3]]) -> Result<Self, DiskError> {
        let file = ReadOnlyFile::open(archive)?;
        let name = PathBuf::from(format!("{}:{member}", archive.display()));
        for s in segments {
            if s[1].checked_add(s[2]).is_none_or(|e| e > file.len()) || s[0].checked_add(s[2]).is_none_or(|e| e > size) {
                return Err(DiskError::invalid(&name, "sparse segment", format!("{s:?}"), "outside the archive or the file"));
            }
        }
        Ok(SparseMember { file, name, map: SparseMap { size, segments: segments.to_vec() } })
    }

    /// Index of the first segment ending after `offset`.
    fn first(&self, offset: u64) -> usize {
        self.map.segments.partition_point(|s| s[0] + s[2] <= offset)
    }
}

impl BlockDevice for SparseMember {
    fn size(&self) -> u64 {
        self.map.size
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        crate::disk::check_range(&self.name, offset, buf.len() as u64, self.map.size)?;
        buf.fill(0);
        let end = offset + buf.len() as u64;
        for s in self.map.segments.iter().skip(self.first(offset)) {
            if s[0] >= end {
                break;
            }
            let a = s[0].max(offset);
            let b = (s[0] + s[2]).min(end);
            let out = buf.get_mut((a - offset) as usize..(b - offset) as usize).unwrap_or(&mut []);
            self.file.read_exact_at(out, s[1] + (a - s[0]), "sparse member data")?;
        }
        Ok(())
    }

    fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
        crate::disk::check_range(&self.name, offset, length, self.map.size)?;
        let end = offset + length;
        let mut out = Vec::new();
        let mut at = offset;
        for s in self.map.segments.iter().skip(self.first(offset)) {
            if s[0] >= end {
                break;
            }
            let a = s[0].max(offset);
            let b = (s[0] + s[2]).min(end);
            if a > at {
                out.push(Extent { offset: at, length: a - at, kind: ExtentKind::Unallocated });
            }
            out.push(Extent { offset: a, length: b - a, kind: ExtentKind::Data });
            at = b;
        }
        if at < end {
            out.push(Extent { offset: at, length: end - at, kind: ExtentKind::Unallocated });
        }
        Ok(crate::disk::coalesce(out))
    }

    fn info(&self) -> ImageInfo {
        ImageInfo {
            format: "raw".into(),
            virtual_size: self.map.size,
            actual_size: self.map.segments.iter().map(|s| s[2]).sum(),
            files: vec![self.file.path().to_path_buf()],
            ..Default::default()
        }
    }
}

/// Reads a device front to back (for digests and streamed copies).
pub struct DeviceReader<D> {
    pub dev: D,
    pub pos: u64,
}

impl<D: BlockDevice> std::io::Read for DeviceReader<D> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.dev.size().saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left).min(1 << 20) as usize;
        if n == 0 {
            return Ok(0);
        }
        let out = buf.get_mut(..n).unwrap_or(&mut []);
        self.dev.read_at(out, self.pos).map_err(std::io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}
