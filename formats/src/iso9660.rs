//! ISO 9660 (ECMA-119) images read-only, as far as reading a virtio-win ISO needs: the
//! volume descriptors, the Joliet supplementary descriptor when there is one (UCS-2 names,
//! as the virtio-win ISO carries them), else the primary one (`;1` versions and a trailing
//! dot removed), directories and single-extent files. Names are matched case-insensitively.
//!
//! Evaluated crates: `cdfs` 0.2 pulls clap, fuser and a logger into a library; `iso9660`
//! 0.1 is unmaintained; `hadris-iso` is a release candidate. This reader is ~200 lines.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

const SECTOR: u64 = 2048;
/// Directories larger than this are refused (virtio-win's hold tens of entries).
const MAX_DIR: u32 = 4 << 20;
/// Volume descriptors read before giving up on a terminator.
const MAX_DESCRIPTORS: u64 = 64;

/// Every way reading an ISO image fails; one line naming the image.
#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("{file}: {e}")]
    Io { file: String, e: std::io::Error },
    #[error("{file}: {field}: {value}: {reason}")]
    Invalid { file: String, field: String, value: String, reason: String },
    #[error("{file}: {path}: no such file or directory in the image")]
    NotFound { file: String, path: String },
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsoEntry {
    pub name: String,
    pub is_dir: bool,
    lba: u32,
    pub size: u32,
}

/// An ISO 9660 image open for reading.
pub struct Iso {
    file: File,
    name: String,
    len: u64,
    joliet: bool,
    root: IsoEntry,
}

fn u32le(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

impl Iso {
    /// Opens `path` read-only and reads its volume descriptors.
    pub fn open(path: &Path) -> Result<Iso, IsoError> {
        let name = path.display().to_string();
        // Read-only, without blocking on a FIFO, regular files and block devices only.
        let (file, len) = crate::disk::open_input(path).map_err(|e| IsoError::Io { file: name.clone(), e })?;
        let mut iso = Iso { file, name, len, joliet: false, root: IsoEntry { name: String::new(), is_dir: true, lba: 0, size: 0 } };
        let (mut primary, mut joliet) = (None, None);
        for i in 16..16 + MAX_DESCRIPTORS {
            let d = iso.read_at(i * SECTOR, SECTOR as usize)?;
            if &d[1..6] != b"CD001" {
                return Err(iso.invalid(&format!("volume descriptor {i}"), &d[1..6], "not \"CD001\": not an ISO 9660 image"));
            }
            match d[0] {
                1 if primary.is_none() => primary = Some(iso.record(&d[156..190], "root directory")?),
                // Joliet: a supplementary descriptor with a UCS-2 level escape sequence.
                2 if joliet.is_none() && d[88] == b'%' && d[89] == b'/' && matches!(d[90], b'@' | b'C' | b'E') => {
                    joliet = Some(iso.record(&d[156..190], "Joliet root directory")?)
                }
                255 => break,
                _ => {}
            }
        }
        iso.joliet = joliet.is_some();
        iso.root = joliet.or(primary).ok_or_else(|| iso.invalid("volume descriptors", b"", "no primary volume descriptor"))?;
        Ok(iso)
    }

    fn invalid(&self, field: &str, value: &[u8], reason: &str) -> IsoError {
        IsoError::Invalid { file: self.name.clone(), field: field.into(), value: value.escape_ascii().to_string(), reason: reason.into() }
    }

    fn read_at(&self, off: u64, len: usize) -> Result<Vec<u8>, IsoError> {
        if off.checked_add(len as u64).is_none_or(|end| end > self.len) {
            return Err(self.invalid("extent", format!("{off}+{len}").as_bytes(), "past the end of the image"));
        }
        let mut b = vec![0u8; len];
        self.file.read_exact_at(&mut b, off).map_err(|e| IsoError::Io { file: self.name.clone(), e })?;
        Ok(b)
    }

    /// A directory record (at least 34 bytes).
    fn record(&self, r: &[u8], what: &str) -> Result<IsoEntry, IsoError> {
        let n = r[32] as usize;
        if r.len() < 33 + n || r[0] < 34 {
            return Err(self.invalid(what, &r[..r.len().min(34)], "directory record too short"));
        }
        let raw = &r[33..33 + n];
        let name = if self.joliet {
            let units: Vec<u16> = raw.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16_lossy(&units)
        } else {
            String::from_utf8_lossy(raw).into_owned()
        };
        let name = match name.rsplit_once(';') {
            Some((base, v)) if v.bytes().all(|b| b.is_ascii_digit()) => base.to_string(),
            _ => name,
        };
        let name = name.strip_suffix('.').map(str::to_string).unwrap_or(name);
        Ok(IsoEntry { name, is_dir: r[25] & 2 != 0, lba: u32le(r, 2), size: u32le(r, 10) })
    }

    /// The entries of a directory (without `.` and `..`).
    pub fn read_dir(&self, dir: &IsoEntry) -> Result<Vec<IsoEntry>, IsoError> {
        if !dir.is_dir {
            return Err(self.invalid("directory", dir.name.as_bytes(), "not a directory"));
        }
        if dir.size > MAX_DIR {
            return Err(self.invalid("directory size", dir.size.to_string().as_bytes(), "larger than 4 MiB"));
        }
        let b = self.read_at(u64::from(dir.lba) * SECTOR, dir.size as usize)?;
        let mut out = Vec::new();
        let mut o = 0usize;
        while o < b.len() {
            let len = b[o] as usize;
            if len == 0 {
                // Records never cross a sector: the rest of this one is padding.
                o = (o / SECTOR as usize + 1) * SECTOR as usize;
                continue;
            }
            if len < 34 || o + len > b.len() {
                return Err(self.invalid(&format!("directory {:?} record at {o}", dir.name), &[len as u8], "bad record length"));
            }
            let r = &b[o..o + len];
            // Multi-extent files (flag 0x80) are not read; virtio-win has none.
            if r[25] & 0x80 != 0 {
                return Err(self.invalid("directory record", &r[33..33 + (r[32] as usize).min(len - 33)], "multi-extent file"));
            }
            let n = r[32];
            if !(n == 1 && (r[33] == 0 || r[33] == 1)) {
                out.push(self.record(r, "directory record")?);
            }
            o += len;
        }
        Ok(out)
    }

    /// The root directory.
    pub fn root(&self) -> IsoEntry {
        self.root.clone()
    }

    /// The entry at `path` (`/`-separated, case-insensitive), or None.
    pub fn lookup(&self, path: &str) -> Result<Option<IsoEntry>, IsoError> {
        let mut cur = self.root();
        for c in path.split('/').filter(|c| !c.is_empty()) {
            if !cur.is_dir {
                return Ok(None);
            }
            match self.read_dir(&cur)?.into_iter().find(|e| e.name.eq_ignore_ascii_case(c)) {
                Some(e) => cur = e,
                None => return Ok(None),
            }
        }
        Ok(Some(cur))
    }

    /// A file's bytes, refused above `limit`.
    pub fn read(&self, e: &IsoEntry, limit: u64) -> Result<Vec<u8>, IsoError> {
        if e.is_dir {
            return Err(self.invalid("file", e.name.as_bytes(), "is a directory"));
        }
        if u64::from(e.size) > limit {
            return Err(self.invalid(&format!("file {:?} size", e.name), e.size.to_string().as_bytes(), &format!("larger than {limit} bytes")));
        }
        self.read_at(u64::from(e.lba) * SECTOR, e.size as usize)
    }

    /// The image's name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// For the fuzz target: opens `data` as an image and walks two levels, reading files.
pub fn fuzz_image(data: &[u8]) -> Result<(), IsoError> {
    let mut f = tempfile::tempfile().map_err(|e| IsoError::Io { file: "fuzz".into(), e })?;
    std::io::Write::write_all(&mut f, data).map_err(|e| IsoError::Io { file: "fuzz".into(), e })?;
    let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&f));
    let iso = Iso::open(Path::new(&path))?;
    for e in iso.read_dir(&iso.root())?.iter().take(64) {
        if e.is_dir {
            for f in iso.read_dir(e)?.iter().take(64) {
                if !f.is_dir {
                    iso.read(f, 1 << 20)?;
                }
            }
        } else {
            iso.read(e, 1 << 20)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_an_image_is_one_line_naming_the_field() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, &vec![0u8; 40 * 2048]).unwrap();
        let e = Iso::open(f.path()).err().unwrap().to_string();
        assert!(e.contains("volume descriptor 16: \\x00\\x00\\x00\\x00\\x00: not \"CD001\"") && !e.contains('\n'), "{e}");
        let short = tempfile::NamedTempFile::new().unwrap();
        let e = Iso::open(short.path()).err().unwrap().to_string();
        assert!(e.contains("past the end of the image"), "{e}");
    }

    #[test]
    fn fuzz_entry_survives_truncated_descriptors() {
        let mut d = vec![0u8; 18 * 2048];
        d[16 * 2048] = 1;
        d[16 * 2048 + 1..16 * 2048 + 6].copy_from_slice(b"CD001");
        // Root record claims a directory far past the end.
        d[16 * 2048 + 156] = 34;
        d[16 * 2048 + 156 + 2..16 * 2048 + 156 + 6].copy_from_slice(&u32::MAX.to_le_bytes());
        d[16 * 2048 + 156 + 10..16 * 2048 + 156 + 14].copy_from_slice(&2048u32.to_le_bytes());
        d[16 * 2048 + 156 + 25] = 2;
        d[17 * 2048] = 255;
        d[17 * 2048 + 1..17 * 2048 + 6].copy_from_slice(b"CD001");
        assert!(fuzz_image(&d).is_err());
    }
}
