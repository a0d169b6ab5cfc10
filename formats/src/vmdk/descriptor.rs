//! The VMDK text descriptor: `key=value` lines and extent lines
//! (`ACCESS SECTORS TYPE "file" [offset]`), in a standalone file or embedded in a sparse file.
use crate::disk::DiskError;
use std::path::Path;

/// Largest extent line size we accept (sectors): 2^42 sectors = 2 PiB.
const MAX_EXTENT_SECTORS: u64 = 1 << 42;

/// How an extent may be accessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
    NoAccess,
}

/// The storage type of one extent line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtentType {
    Flat,
    Sparse,
    Zero,
    Vmfs,
    VmfsSparse,
    SeSparse,
    VmfsRdm,
    VmfsRaw,
}

impl ExtentType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "FLAT" => ExtentType::Flat,
            "SPARSE" => ExtentType::Sparse,
            "ZERO" => ExtentType::Zero,
            "VMFS" => ExtentType::Vmfs,
            "VMFSSPARSE" => ExtentType::VmfsSparse,
            "SESPARSE" => ExtentType::SeSparse,
            "VMFSRDM" => ExtentType::VmfsRdm,
            "VMFSRAW" => ExtentType::VmfsRaw,
            _ => return None,
        })
    }
}

/// One extent line of a descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtentLine {
    pub access: Access,
    /// Size in sectors; always kept, whatever the access or type.
    pub sectors: u64,
    pub kind: ExtentType,
    /// The extent file name, as written (relative to the descriptor's directory).
    pub file: Option<String>,
    /// Start of the extent inside its file, in sectors (FLAT extents).
    pub offset: u64,
}

/// A parsed descriptor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Descriptor {
    pub version: u32,
    pub cid: Option<u32>,
    /// `None` when absent or `ffffffff` (no parent).
    pub parent_cid: Option<u32>,
    pub create_type: String,
    pub parent_hint: Option<String>,
    pub extents: Vec<ExtentLine>,
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(v)
}

fn parse_cid(path: &Path, field: &str, v: &str) -> Result<u32, DiskError> {
    u32::from_str_radix(v, 16).map_err(|_| DiskError::invalid(path, field, v, "not a 32-bit hex number"))
}

fn parse_access(s: &str) -> Option<Access> {
    match s {
        "RW" => Some(Access::ReadWrite),
        "RDONLY" => Some(Access::ReadOnly),
        "NOACCESS" => Some(Access::NoAccess),
        _ => None,
    }
}

fn parse_extent(path: &Path, line: &str, access: Access, rest: &str) -> Result<ExtentLine, DiskError> {
    let bad = |reason: &str| DiskError::invalid(path, "extent line", format!("{line:?}"), reason.to_string());
    let rest = rest.trim_start();
    let (sectors, rest) = rest.split_once(char::is_whitespace).ok_or_else(|| bad("expected SECTORS TYPE"))?;
    let sectors: u64 = sectors.parse().map_err(|_| bad("sector count is not a number"))?;
    if sectors > MAX_EXTENT_SECTORS {
        return Err(DiskError::invalid(path, "extent sectors", sectors, "larger than 2^42 sectors"));
    }
    let rest = rest.trim_start();
    let (kind, rest) = match rest.split_once(char::is_whitespace) {
        Some((k, r)) => (k, r.trim()),
        None => (rest, ""),
    };
    let kind = ExtentType::parse(kind)
        .ok_or_else(|| DiskError::invalid(path, "extent type", kind, "not a VMDK extent type"))?;
    let (file, rest) = if let Some(r) = rest.strip_prefix('"') {
        let end = r.find('"').ok_or_else(|| bad("unterminated file name"))?;
        (Some(r[..end].to_string()), r[end + 1..].trim())
    } else {
        (None, rest)
    };
    let offset = if rest.is_empty() { 0 } else { rest.parse().map_err(|_| bad("extent offset is not a number"))? };
    if file.is_none() && kind != ExtentType::Zero {
        return Err(bad("missing file name"));
    }
    Ok(ExtentLine { access, sectors, kind, file, offset })
}

/// Parses descriptor text (CRLF or LF, `#` comments, quoted or unquoted values). Text after a
/// NUL byte (padding of an embedded descriptor) is ignored.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Descriptor, DiskError> {
    let end = memchr_nul(bytes);
    let text = String::from_utf8_lossy(&bytes[..end]);
    let mut d = Descriptor { version: 1, ..Default::default() };
    let mut seen_version = false;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((first, rest)) = line.split_once(char::is_whitespace) {
            if let Some(access) = parse_access(first) {
                d.extents.push(parse_extent(path, line, access, rest)?);
                continue;
            }
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        let (key, value) = (key.trim(), unquote(value));
        match key {
            "version" => {
                d.version = match value {
                    "1" => 1,
                    "2" => 2,
                    "3" => 3,
                    _ => return Err(DiskError::invalid(path, "descriptor version", value, "expected 1, 2 or 3")),
                };
                seen_version = true;
            }
            "CID" => d.cid = Some(parse_cid(path, "CID", value)?),
            "parentCID" => {
                let cid = parse_cid(path, "parentCID", value)?;
                d.parent_cid = (cid != u32::MAX).then_some(cid);
            }
            "createType" => d.create_type = value.to_string(),
            "parentFileNameHint" => d.parent_hint = Some(value.to_string()).filter(|s| !s.is_empty()),
            _ => {}
        }
    }
    if !seen_version && d.extents.is_empty() && d.create_type.is_empty() {
        return Err(DiskError::invalid(
            path,
            "descriptor",
            "(no version, createType or extent)",
            "not a VMDK descriptor",
        ));
    }
    Ok(d)
}

fn memchr_nul(b: &[u8]) -> usize {
    b.iter().position(|&c| c == 0).unwrap_or(b.len())
}

impl Descriptor {
    /// Sum of all extent sizes, in sectors (RDONLY, NOACCESS and ZERO lines included).
    pub fn total_sectors(&self) -> Option<u64> {
        self.extents.iter().try_fold(0u64, |acc, e| acc.checked_add(e.sectors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_crlf_comments_unquoted() {
        let text = b"# Disk DescriptorFile\r\nversion=3\r\nCID=fffffffe\r\nparentCID=ffffffff\r\ncreateType=streamOptimized\r\n\r\n# Extent description\r\nRDONLY 2048 SPARSE \"a b.vmdk\"\r\nRW 100 ZERO\r\nNOACCESS 5 FLAT \"x-flat.vmdk\" 7\r\nddb.adapterType = \"lsilogic\"\r\n\0\0junk";
        let d = parse(Path::new("t.vmdk"), text).unwrap();
        assert_eq!(d.version, 3);
        assert_eq!(d.cid, Some(0xfffffffe));
        assert_eq!(d.parent_cid, None);
        assert_eq!(d.create_type, "streamOptimized");
        assert_eq!(d.extents.len(), 3);
        assert_eq!(d.extents[0].file.as_deref(), Some("a b.vmdk"));
        assert_eq!(d.extents[1].kind, ExtentType::Zero);
        assert_eq!(d.extents[2].offset, 7);
        assert_eq!(d.total_sectors(), Some(2153));
    }

    #[test]
    fn rejects_bad_lines() {
        let e = parse(Path::new("d.vmdk"), b"version=1\nRW 10 BOGUS \"f\"\n").unwrap_err().to_string();
        assert_eq!(e, "d.vmdk: invalid extent type BOGUS: not a VMDK extent type");
        let e = parse(Path::new("d.vmdk"), b"version=9\n").unwrap_err().to_string();
        assert!(e.contains("descriptor version 9"), "{e}");
        let e = parse(Path::new("d.vmdk"), b"CID=zz\n").unwrap_err().to_string();
        assert!(e.contains("invalid CID zz"), "{e}");
    }
}
