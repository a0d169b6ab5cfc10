//! cpio "newc" archives (magic `070701`, and `070702` with a checksum), read and written.

use super::InitramfsError;

const HEADER_LEN: usize = 110;
const TRAILER: &[u8] = b"TRAILER!!!";
/// Longest member name accepted (the kernel's own limit is PATH_MAX).
const MAX_NAME: usize = 4096;

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// Path inside the archive, without a leading `/` (as written: may start with `./`).
    pub name: Vec<u8>,
    /// Inode number (members sharing one with nlink > 1 are hard links).
    pub ino: u32,
    /// File type and permissions (`st_mode`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Link count.
    pub nlink: u32,
    /// Modification time (seconds).
    pub mtime: u32,
    /// Device of the file (major).
    pub dev_major: u32,
    /// Device of the file (minor).
    pub dev_minor: u32,
    /// For device nodes: the device (major).
    pub rdev_major: u32,
    /// For device nodes: the device (minor).
    pub rdev_minor: u32,
    /// File contents, or a symbolic link's target.
    pub data: Vec<u8>,
    /// Whether the member was (is to be) written with the `070702` checksum header.
    pub crc: bool,
}

/// `S_IFMT` and the types used here.
pub const S_IFMT: u32 = 0o170000;
/// Regular file.
pub const S_IFREG: u32 = 0o100000;
/// Directory.
pub const S_IFDIR: u32 = 0o040000;
/// Symbolic link.
pub const S_IFLNK: u32 = 0o120000;

impl Entry {
    /// A regular file.
    pub fn file(name: &str, mode: u32, data: Vec<u8>) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            mode: S_IFREG | (mode & 0o7777),
            nlink: 1,
            data,
            ..Entry::default()
        }
    }

    /// A directory.
    pub fn dir(name: &str, mode: u32) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            mode: S_IFDIR | (mode & 0o7777),
            nlink: 2,
            ..Entry::default()
        }
    }

    /// The name normalised for lookups: no leading `./` or `/`, no trailing `/`.
    pub fn path(&self) -> String {
        normalize(&String::from_utf8_lossy(&self.name))
    }

    /// Whether this is a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    /// Whether this is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }
}

/// Normalises an archive path: no leading `./` or `/`, no trailing `/`; `.` for the root.
pub fn normalize(path: &str) -> String {
    let mut p = path;
    loop {
        if let Some(rest) = p.strip_prefix("./") {
            p = rest;
        } else if let Some(rest) = p.strip_prefix('/') {
            p = rest;
        } else {
            break;
        }
    }
    let p = p.trim_end_matches('/');
    if p.is_empty() {
        ".".to_string()
    } else {
        p.to_string()
    }
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

fn hex_field(
    name: &str,
    header: &[u8],
    index: usize,
    field: &'static str,
    at: usize,
) -> Result<u32, InitramfsError> {
    let start = 6 + index * 8;
    let raw = header.get(start..start + 8).unwrap_or_default();
    let text = std::str::from_utf8(raw).unwrap_or("");
    u32::from_str_radix(text, 16).map_err(|_| {
        InitramfsError::invalid(
            name,
            field,
            format!("{:?} at offset {at}", String::from_utf8_lossy(raw)),
            "not 8 hex digits",
        )
    })
}

/// Parses one archive starting at `data[0]` up to and including its `TRAILER!!!` member.
/// Returns the members (trailer excluded) and the bytes consumed (4-aligned).
pub fn parse_archive(
    name: &str,
    data: &[u8],
    base: usize,
) -> Result<(Vec<Entry>, usize), InitramfsError> {
    let mut entries = Vec::new();
    let mut pos = 0usize;
    loop {
        let at = base + pos;
        let header = data.get(pos..pos + HEADER_LEN).ok_or_else(|| {
            InitramfsError::invalid(
                name,
                "cpio header",
                format!("at offset {at}"),
                "truncated archive (no TRAILER!!!)",
            )
        })?;
        let crc = match &header[..6] {
            b"070701" => false,
            b"070702" => true,
            m => {
                return Err(InitramfsError::invalid(
                    name,
                    "cpio magic",
                    format!("{:?} at offset {at}", String::from_utf8_lossy(m)),
                    "expected 070701 or 070702",
                ))
            }
        };
        let f = |i, field| hex_field(name, header, i, field, at);
        let (ino, mode, uid, gid, nlink, mtime) = (
            f(0, "ino")?,
            f(1, "mode")?,
            f(2, "uid")?,
            f(3, "gid")?,
            f(4, "nlink")?,
            f(5, "mtime")?,
        );
        let filesize = f(6, "filesize")? as usize;
        let (dev_major, dev_minor, rdev_major, rdev_minor) = (
            f(7, "devmajor")?,
            f(8, "devminor")?,
            f(9, "rdevmajor")?,
            f(10, "rdevminor")?,
        );
        let namesize = f(11, "namesize")? as usize;
        let check = f(12, "check")?;
        if namesize == 0 || namesize > MAX_NAME {
            return Err(InitramfsError::invalid(
                name,
                "cpio namesize",
                format!("{namesize} at offset {at}"),
                "must be 1..4096",
            ));
        }
        let name_start = pos + HEADER_LEN;
        let raw_name = data.get(name_start..name_start + namesize).ok_or_else(|| {
            InitramfsError::invalid(name, "cpio name", format!("at offset {at}"), "past the end")
        })?;
        let member = raw_name.strip_suffix(&[0]).ok_or_else(|| {
            InitramfsError::invalid(
                name,
                "cpio name",
                format!("{:?} at offset {at}", String::from_utf8_lossy(raw_name)),
                "not NUL-terminated",
            )
        })?;
        let data_start = align4(name_start + namesize);
        let data_end = data_start
            .checked_add(filesize)
            .filter(|e| *e <= data.len())
            .ok_or_else(|| {
                InitramfsError::invalid(
                    name,
                    "cpio filesize",
                    format!("{filesize} at offset {at}"),
                    "past the end of the archive",
                )
            })?;
        let content = &data[data_start..data_end];
        pos = align4(data_end);
        if member == TRAILER {
            return Ok((entries, pos.min(data.len())));
        }
        if crc {
            let sum = content
                .iter()
                .fold(0u32, |s, b| s.wrapping_add(u32::from(*b)));
            if sum != check {
                return Err(InitramfsError::invalid(
                    name,
                    "cpio checksum",
                    format!("{check:#x} of {}", String::from_utf8_lossy(member)),
                    format!("content sums to {sum:#x}"),
                ));
            }
        }
        entries.push(Entry {
            name: member.to_vec(),
            ino,
            mode,
            uid,
            gid,
            nlink,
            mtime,
            dev_major,
            dev_minor,
            rdev_major,
            rdev_minor,
            data: content.to_vec(),
            crc,
        });
    }
}

/// Parses a stream of archives separated by zero padding (a decompressed segment).
pub fn parse_stream(name: &str, data: &[u8]) -> Result<Vec<Entry>, InitramfsError> {
    let mut entries = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        if data[pos] == 0 {
            pos += 1;
            continue;
        }
        let (mut more, used) = parse_archive(name, &data[pos..], pos)?;
        entries.append(&mut more);
        pos += used.max(1);
    }
    Ok(entries)
}

fn push_header(out: &mut Vec<u8>, e: &Entry, name: &[u8], filesize: usize, check: u32) {
    out.extend_from_slice(if e.crc { b"070702" } else { b"070701" });
    let fields = [
        e.ino,
        e.mode,
        e.uid,
        e.gid,
        e.nlink,
        e.mtime,
        filesize as u32,
        e.dev_major,
        e.dev_minor,
        e.rdev_major,
        e.rdev_minor,
        (name.len() + 1) as u32,
        check,
    ];
    for v in fields {
        out.extend_from_slice(format!("{v:08X}").as_bytes());
    }
    out.extend_from_slice(name);
    out.push(0);
    out.resize(align4(out.len()), 0);
}

/// Writes members followed by the trailer; the archive is 4-aligned relative to `out`'s start.
pub fn write_archive(out: &mut Vec<u8>, entries: &[Entry]) -> Result<(), InitramfsError> {
    for e in entries {
        if e.data.len() > u32::MAX as usize || e.name.len() >= MAX_NAME || e.name.contains(&0) {
            return Err(InitramfsError::invalid(
                "cpio",
                "member",
                String::from_utf8_lossy(&e.name),
                "name or size cannot be stored",
            ));
        }
        let check = if e.crc {
            e.data
                .iter()
                .fold(0u32, |s, b| s.wrapping_add(u32::from(*b)))
        } else {
            0
        };
        push_header(out, e, &e.name, e.data.len(), check);
        out.extend_from_slice(&e.data);
        out.resize(align4(out.len()), 0);
    }
    let trailer = Entry {
        nlink: 1,
        ..Entry::default()
    };
    push_header(out, &trailer, TRAILER, 0, 0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_errors() {
        let mut crc_file = Entry::file("bin/x", 0o755, b"hello".to_vec());
        crc_file.crc = true;
        let entries = vec![
            Entry::dir("bin", 0o755),
            crc_file,
            Entry::file("odd", 0o644, vec![1, 2, 3]),
        ];
        let mut out = Vec::new();
        write_archive(&mut out, &entries).unwrap();
        let (back, used) = parse_archive("t", &out, 0).unwrap();
        assert_eq!(back, entries);
        assert_eq!(used, out.len());
        // a corrupted checksum, truncations and a bad hex digit are errors, never panics
        let mut bad = out.clone();
        let p = bad.windows(5).position(|w| w == b"hello").unwrap();
        bad[p] = b'j';
        assert!(parse_archive("t", &bad, 0)
            .unwrap_err()
            .to_string()
            .contains("checksum"));
        for cut in 0..out.len() {
            let _ = parse_archive("t", &out[..cut], 0);
        }
        let mut hex = out.clone();
        hex[6] = b'g';
        assert!(parse_archive("t", &hex, 0)
            .unwrap_err()
            .to_string()
            .contains("invalid ino"));
    }
}
