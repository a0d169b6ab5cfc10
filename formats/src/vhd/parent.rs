//! Finding a differencing VHD's parent: its parent locators (Windows relative and absolute
//! UTF-16 paths, Xen's and Mac's UTF-8 file URLs), then the header's `parent_name`. Windows
//! absolute paths and names that do not exist as written are looked for beside the child.
use super::footer::DynHeader;
use crate::disk::{DiskError, ReadOnlyFile};
use std::path::{Path, PathBuf};

/// Longest locator data read (a path).
const MAX_LOCATOR: u32 = 64 * 1024;

fn utf16le(b: &[u8]) -> String {
    let units = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|&u| u != 0);
    char::decode_utf16(units).map(|c| c.unwrap_or('\u{fffd}')).collect()
}

/// The last component of a path written with `\` or `/`.
fn base_name(s: &str) -> &str {
    s.rsplit(['\\', '/']).next().unwrap_or(s)
}

/// Candidate files for the parent, most specific first.
fn candidates(child: &Path, h: &DynHeader, file: &ReadOnlyFile) -> Result<Vec<PathBuf>, DiskError> {
    let dir = child.parent().unwrap_or(Path::new(""));
    let mut out = Vec::new();
    for l in &h.locators {
        let text = match &l.platform {
            b"W2ru" | b"W2ku" | b"Wi2r" | b"Wi2k" | b"MacX" => {
                if l.data_length == 0 || l.data_length > MAX_LOCATOR {
                    continue;
                }
                let mut b = vec![0u8; l.data_length as usize];
                file.read_exact_at(&mut b, l.data_offset, "parent locator data")?;
                match &l.platform {
                    b"W2ru" | b"W2ku" => utf16le(&b),
                    _ => String::from_utf8_lossy(&b).trim_end_matches('\0').to_string(),
                }
            }
            _ => continue,
        };
        let text = text.strip_prefix("file://").unwrap_or(&text).to_string();
        match &l.platform {
            b"W2ru" | b"Wi2r" => {
                let rel = text.replace('\\', "/");
                out.push(dir.join(rel.trim_start_matches("./")));
            }
            b"MacX" if text.starts_with('/') => out.push(PathBuf::from(&text)),
            b"MacX" => out.push(dir.join(text.trim_start_matches("./"))),
            _ => {}
        }
        out.push(dir.join(base_name(&text)));
    }
    if !h.parent_name.is_empty() {
        out.push(dir.join(base_name(&h.parent_name)));
    }
    Ok(out)
}

/// The parent's path: the first candidate that exists.
pub fn locate(child: &Path, h: &DynHeader, file: &ReadOnlyFile) -> Result<PathBuf, DiskError> {
    let cands = candidates(child, h, file)?;
    if let Some(p) = cands.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    let name = if h.parent_name.is_empty() { "missing".to_string() } else { format!("{:?}", h.parent_name) };
    Err(DiskError::invalid(
        child,
        "parent_name",
        name,
        format!(
            "the differencing disk's parent is not found (looked for {})",
            cands.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>().join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vhd::footer::Locator;

    /// A child file holding `data` at 0, a parent `base.vhd` beside it, a header with one
    /// locator of `platform` over `data`.
    fn find(platform: &[u8; 4], data: &[u8], parent_name: &str) -> Result<PathBuf, DiskError> {
        let dir = tempfile::tempdir().unwrap();
        let child = dir.path().join("child.vhd");
        std::fs::write(&child, data).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub").join("base.vhd"), b"x").unwrap();
        let h = DynHeader {
            table_offset: 0,
            max_table_entries: 0,
            block_size: 0,
            parent_uuid: [0; 16],
            parent_name: parent_name.into(),
            locators: vec![Locator { platform: *platform, data_length: data.len() as u32, data_offset: 0 }],
        };
        let file = ReadOnlyFile::open(&child).unwrap();
        locate(&child, &h, &file).map(|p| p.strip_prefix(dir.path()).unwrap().to_path_buf())
    }

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
    }

    #[test]
    fn locators_of_xen_and_hyper_v() {
        // Xen's vhd-util: a UTF-8 file URL relative to the child.
        assert_eq!(find(b"MacX", b"file://./sub/base.vhd\0", "").unwrap(), Path::new("sub/base.vhd"));
        // Hyper-V: relative and absolute Windows paths in UTF-16LE.
        assert_eq!(find(b"W2ru", &utf16(".\\sub\\base.vhd"), "").unwrap(), Path::new("sub/base.vhd"));
        // An absolute path elsewhere: the name is looked for beside the child only.
        let e = find(b"W2ku", &utf16("D:\\vms\\base.vhd"), "").unwrap_err().to_string();
        assert!(e.contains("parent_name missing") && e.contains("child.vhd"), "{e}");
        // Unknown platforms are skipped; parent_name is the last resort.
        let e = find(b"Mac ", b"alias", "other.vhd").unwrap_err().to_string();
        assert!(e.contains("\"other.vhd\"") && !e.contains('\n'), "{e}");
    }
}
