//! The OVA container: a directory, a tar (ustar or GNU), a gzip- or xz-compressed tar, or a
//! zip. Opening lists every member and where its bytes are, loads the `.ovf` and `.mf`
//! files (size-bounded) and, for compressed archives that can only be read front to back,
//! computes member digests during that single pass with decompression bounded.

use super::manifest::{Algo, Hasher};
use super::members::{self, Budget, Counting};
use crate::model::{ConfigError, Container};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Largest `.ovf` accepted.
pub const MAX_OVF: u64 = 32 << 20;
/// Largest `.mf` accepted.
pub const MAX_MF: u64 = 4 << 20;
/// Most members listed.
const MAX_MEMBERS: usize = 100_000;
/// Decompression allowed before the `.ovf` says how big the files are.
pub const PRE_OVF_BUDGET: u64 = 1 << 30;

/// What kind of container the OVA is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Directory,
    Tar,
    Compressed(Container),
}

/// Where one member's bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loc {
    /// A file on the host (directory OVAs).
    File(PathBuf),
    /// Stored uncompressed in the archive file at this offset.
    InPlace(u64),
    /// In the decompressed stream at this offset (tar.gz / tar.xz), or a zip entry whose
    /// deflate data starts at this offset in the zip file.
    Streamed(u64),
    /// A GNU sparse member of a plain tar: its data segments in the archive file.
    Sparse(super::sparse::SparseMap),
    /// Cannot be read (GNU sparse member of a compressed tar, unsupported zip method): the
    /// reason.
    Unreadable(String),
}

#[derive(Clone, Debug)]
pub struct Member {
    pub size: u64,
    pub loc: Loc,
}

/// An opened OVA.
pub struct Archive {
    pub path: PathBuf,
    pub kind: Kind,
    /// Normalised name → member. Names that escape the archive are left out.
    pub members: BTreeMap<String, Member>,
    /// Name and text of the one `.ovf`.
    pub ovf: (String, String),
    /// Name and text of every `.mf`.
    pub manifests: Vec<(String, String)>,
    /// Digests computed while streaming a compressed archive.
    pub digests: BTreeMap<(String, Algo), String>,
    pub warnings: Vec<String>,
}

const SPARSE_COMPRESSED: &str = "GNU sparse member of a compressed tar: cannot be read front to back (extract the OVA first)";

/// A member's PAX extended header records, in order (empty when it has none).
fn pax_records<R: Read>(entry: &mut tar::Entry<'_, R>) -> Vec<(String, String)> {
    let Ok(Some(exts)) = entry.pax_extensions() else { return Vec::new() };
    exts.filter_map(Result::ok)
        .filter_map(|e| Some((e.key().ok()?.to_string(), e.value().ok()?.to_string())))
        .take(4 * super::sparse::MAX_SEGMENTS)
        .collect()
}

/// Reads the budget the `.ovf` allows (sum of declared sizes); used to bound decompression.
pub type BudgetFn = dyn Fn(&str) -> u64;

fn sniff(path: &Path) -> Result<Kind, ConfigError> {
    let mut f = crate::disk::open_input(path).map(|(f, _)| f).map_err(|e| ConfigError::io(path, "open", e))?;
    let mut head = [0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match f.read(head.get_mut(n..).unwrap_or(&mut [])) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(ConfigError::io(path, "read", e)),
        }
    }
    let h = head.get(..n).unwrap_or(&[]);
    if h.starts_with(&[0x1f, 0x8b]) {
        Ok(Kind::Compressed(Container::TarGz))
    } else if h.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Ok(Kind::Compressed(Container::TarXz))
    } else if h.starts_with(b"PK\x03\x04") || h.starts_with(b"PK\x05\x06") {
        Ok(Kind::Compressed(Container::Zip))
    } else if n == 512 && head.get(257..262) == Some(b"ustar") {
        Ok(Kind::Tar)
    } else {
        Err(ConfigError::other(path, "not an OVA: neither a tar (ustar/GNU), gzip, xz nor zip archive, nor a directory"))
    }
}

fn read_bounded_bytes(r: impl Read, limit: u64, path: &Path, name: &str) -> Result<Vec<u8>, ConfigError> {
    let mut buf = Vec::new();
    r.take(limit + 1).read_to_end(&mut buf).map_err(|e| ConfigError::io(path, "read member", e))?;
    if buf.len() as u64 > limit {
        return Err(ConfigError::invalid(path, format!("member {name}"), buf.len(), format!("larger than {limit} bytes")));
    }
    Ok(buf)
}

fn read_bounded(r: impl Read, limit: u64, path: &Path, name: &str) -> Result<String, ConfigError> {
    Ok(String::from_utf8_lossy(&read_bounded_bytes(r, limit, path, name)?).into_owned())
}

fn is_ovf(name: &str) -> bool {
    !members::is_junk(name) && name.to_ascii_lowercase().ends_with(".ovf")
}

fn is_mf(name: &str) -> bool {
    !members::is_junk(name) && name.to_ascii_lowercase().ends_with(".mf")
}

impl Archive {
    /// Opens `path`: a directory, a `.ovf` file, or an archive.
    pub fn open(path: &Path, budget_of: &BudgetFn) -> Result<Archive, ConfigError> {
        let meta = std::fs::metadata(path).map_err(|e| ConfigError::io(path, "stat", e))?;
        let mut a = Archive {
            path: path.to_path_buf(),
            kind: Kind::Directory,
            members: BTreeMap::new(),
            ovf: (String::new(), String::new()),
            manifests: Vec::new(),
            digests: BTreeMap::new(),
            warnings: Vec::new(),
        };
        let mut ovfs: Vec<(String, String)> = Vec::new();
        if meta.is_dir() {
            a.list_dir(path, "", 0)?;
        } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("ovf")) {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
            a.path = dir.clone();
            a.list_dir(&dir, "", 0)?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            a.members.retain(|n, _| !is_ovf(n) || *n == name);
        } else {
            a.kind = sniff(path)?;
            match a.kind {
                Kind::Tar => a.list_tar(&mut ovfs)?,
                Kind::Compressed(Container::Zip) => a.list_zip(&mut ovfs)?,
                Kind::Compressed(c) => a.scan_compressed(c, &mut ovfs, budget_of)?,
                Kind::Directory => {}
            }
        }
        if ovfs.is_empty() {
            // Directory and plain tar: read the .ovf / .mf members now.
            let names: Vec<String> = a.members.keys().filter(|n| is_ovf(n) || is_mf(n)).cloned().collect();
            for n in names {
                let limit = if is_ovf(&n) { MAX_OVF } else { MAX_MF };
                let text = read_bounded(a.open_member(&n)?, limit, path, &n)?;
                if is_ovf(&n) {
                    ovfs.push((n, text));
                } else {
                    a.manifests.push((n, text));
                }
            }
        }
        match ovfs.len() {
            1 => a.ovf = ovfs.remove(0),
            0 => return Err(ConfigError::other(path, "no .ovf file in the OVA")),
            n => {
                let names: Vec<&str> = ovfs.iter().map(|(n, _)| n.as_str()).collect();
                return Err(ConfigError::invalid(path, "OVA", names.join(", "), format!("{n} .ovf files, expected exactly one")));
            }
        }
        Ok(a)
    }

    fn add(&mut self, name: &str, m: Member) -> Result<(), ConfigError> {
        if self.members.len() >= MAX_MEMBERS {
            return Err(ConfigError::other(&self.path, format!("more than {MAX_MEMBERS} members")));
        }
        match members::normalize(name) {
            Some(n) => {
                self.members.insert(n, m);
            }
            None => self.warnings.push(format!("member {name:?} escapes the archive, ignored")),
        }
        Ok(())
    }

    fn list_dir(&mut self, dir: &Path, prefix: &str, depth: u32) -> Result<(), ConfigError> {
        if depth > 4 {
            return Ok(());
        }
        let rd = std::fs::read_dir(dir).map_err(|e| ConfigError::io(dir, "read directory", e))?;
        let mut entries: Vec<_> = rd.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            let p = e.path();
            let Ok(meta) = std::fs::metadata(&p) else { continue };
            if meta.is_dir() {
                self.list_dir(&p, &rel, depth + 1)?;
            } else if meta.is_file() {
                self.add(&rel, Member { size: meta.len(), loc: Loc::File(p) })?;
            }
        }
        Ok(())
    }

    fn list_tar(&mut self, _ovfs: &mut Vec<(String, String)>) -> Result<(), ConfigError> {
        let path = self.path.clone();
        let file = crate::disk::open_input(&path).map(|(f, _)| f).map_err(|e| ConfigError::io(&path, "open", e))?;
        let total = file.metadata().map_err(|e| ConfigError::io(&path, "stat", e))?.len();
        let mut ar = tar::Archive::new(file);
        let entries = ar.entries_with_seek().map_err(|e| ConfigError::invalid(&path, "tar header", "", e.to_string()))?;
        let ro = crate::disk::ReadOnlyFile::open(&path).map_err(|e| ConfigError::other(&path, e.to_string()))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| ConfigError::invalid(&path, "tar header", "", e.to_string()))?;
            let name = entry.path().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
            let et = entry.header().entry_type();
            if !(et.is_file() || et.is_gnu_sparse()) {
                continue;
            }
            let (size, offset) = (entry.size(), entry.raw_file_position());
            if et.is_gnu_sparse() {
                let map = super::sparse::gnu_old(&ro, entry.raw_header_position(), total, &path, &name)?;
                self.add(&name, Member { size: map.size, loc: Loc::Sparse(map) })?;
                continue;
            }
            if offset.checked_add(size).is_none_or(|end| end > total) {
                return Err(ConfigError::invalid(&path, format!("tar member {name} size"), size, "runs past the end of the archive"));
            }
            let pax = pax_records(&mut entry);
            if let Some(map) = super::sparse::pax(&pax, &ro, offset, size, &path, &name)? {
                let real = super::sparse::real_name(&pax, &name);
                self.add(&real, Member { size: map.size, loc: Loc::Sparse(map) })?;
                continue;
            }
            self.add(&name, Member { size, loc: Loc::InPlace(offset) })?;
        }
        Ok(())
    }

    fn list_zip(&mut self, ovfs: &mut Vec<(String, String)>) -> Result<(), ConfigError> {
        let path = self.path.clone();
        let file = crate::disk::open_input(&path).map(|(f, _)| f).map_err(|e| ConfigError::io(&path, "open", e))?;
        let total = file.metadata().map_err(|e| ConfigError::io(&path, "stat", e))?.len();
        let mut zip = zip::ZipArchive::new(file).map_err(|e| ConfigError::invalid(&path, "zip directory", "", e.to_string()))?;
        for i in 0..zip.len() {
            let mut f = zip.by_index(i).map_err(|e| ConfigError::invalid(&path, format!("zip entry {i}"), "", e.to_string()))?;
            if f.is_dir() {
                continue;
            }
            let name = f.name().to_string();
            let size = f.size();
            let start = f.data_start();
            let loc = match f.compression() {
                zip::CompressionMethod::Stored if start.checked_add(size).is_some_and(|e| e <= total) => Loc::InPlace(start),
                zip::CompressionMethod::Deflated => Loc::Streamed(start),
                other => Loc::Unreadable(format!("zip compression method {other:?}")),
            };
            let wanted = (is_ovf(&name) || is_mf(&name)) && members::normalize(&name).is_some();
            if wanted {
                let limit = if is_ovf(&name) { MAX_OVF } else { MAX_MF };
                let text = read_bounded(&mut f, limit, &path, &name)?;
                let n = members::normalize(&name).unwrap_or_default();
                if is_ovf(&name) {
                    ovfs.push((n, text));
                } else {
                    self.manifests.push((n, text));
                }
            }
            self.add(&name, Member { size, loc })?;
        }
        Ok(())
    }

    /// One pass over a gzip/xz tar: list members with their offsets in the decompressed
    /// stream, load .ovf/.mf, digest the other members. Decompression is bounded by what the
    /// .ovf declares.
    fn scan_compressed(&mut self, c: Container, ovfs: &mut Vec<(String, String)>, budget_of: &BudgetFn) -> Result<(), ConfigError> {
        let path = self.path.clone();
        let file = crate::disk::open_input(&path).map(|(f, _)| f).map_err(|e| ConfigError::io(&path, "open", e))?;
        let budget = Budget::default();
        budget.limit.set(PRE_OVF_BUDGET);
        let inner: Box<dyn Read> = match c {
            Container::TarGz => Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file))),
            _ => Box::new(liblzma::read::XzDecoder::new_multi_decoder(std::io::BufReader::new(file))),
        };
        let mut ar = tar::Archive::new(Counting { inner, budget: budget.clone() });
        let bad = |e: std::io::Error| ConfigError::invalid(&path, "compressed tar", "", e.to_string());
        let entries = ar.entries().map_err(bad)?;
        for entry in entries {
            let mut entry = entry.map_err(bad)?;
            let name = entry.path().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
            let et = entry.header().entry_type();
            if et.is_gnu_sparse() {
                self.add(&name, Member { size: entry.size(), loc: Loc::Unreadable(SPARSE_COMPRESSED.into()) })?;
                continue;
            }
            if !et.is_file() {
                continue;
            }
            let pax = pax_records(&mut entry);
            if pax.iter().any(|(k, _)| k.starts_with("GNU.sparse.")) {
                let real = super::sparse::real_name(&pax, &name);
                self.add(&real, Member { size: entry.size(), loc: Loc::Unreadable(SPARSE_COMPRESSED.into()) })?;
                continue;
            }
            let (size, offset) = (entry.size(), entry.raw_file_position());
            let norm = members::normalize(&name);
            if let Some(n) = norm.as_ref().filter(|n| is_ovf(n) || is_mf(n)) {
                let limit = if is_ovf(n) { MAX_OVF } else { MAX_MF };
                let bytes = read_bounded_bytes(&mut entry, limit, &path, n)?;
                for a in [Algo::Sha1, Algo::Sha256, Algo::Sha512] {
                    let mut h = Hasher::new(a);
                    h.update(&bytes);
                    self.digests.insert((n.clone(), a), h.finish());
                }
                let text = String::from_utf8_lossy(&bytes).into_owned();
                if is_ovf(n) {
                    budget.limit.set(budget.used.get().saturating_add(budget_of(&text)));
                    ovfs.push((n.clone(), text));
                } else {
                    self.manifests.push((n.clone(), text));
                }
            } else if let Some(n) = &norm {
                // Digest with the algorithms of the manifests seen so far (they normally come
                // right after the .ovf); a member listed by a later manifest is re-read then.
                let mut algos: Vec<Algo> =
                    self.manifests.iter().flat_map(|(_, t)| super::manifest::parse(t).0).map(|e| e.algo).collect();
                algos.sort();
                algos.dedup();
                let mut hashers: Vec<(Algo, Hasher)> = algos.iter().map(|&a| (a, Hasher::new(a))).collect();
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let k = entry.read(&mut buf).map_err(bad)?;
                    if k == 0 {
                        break;
                    }
                    let chunk = buf.get(..k).unwrap_or(&[]);
                    for (_, h) in &mut hashers {
                        h.update(chunk);
                    }
                }
                for (a, h) in hashers {
                    self.digests.insert((n.clone(), a), h.finish());
                }
            }
            self.add(&name, Member { size, loc: Loc::Streamed(offset) })?;
        }
        Ok(())
    }

    /// A reader over one member's stored bytes.
    pub fn open_member(&self, name: &str) -> Result<Box<dyn Read + Send>, ConfigError> {
        let m = self.members.get(name).ok_or_else(|| ConfigError::other(&self.path, format!("missing file {name} in the OVA")))?;
        let src = self.source_of(name, m)?;
        super::stream::open_stream(&src)
    }

    /// The [`crate::model::DiskSource`] for a member.
    pub fn source_of(&self, name: &str, m: &Member) -> Result<crate::model::DiskSource, ConfigError> {
        use crate::model::DiskSource;
        Ok(match &m.loc {
            Loc::File(p) => {
                let root = self.path.canonicalize().map_err(|e| ConfigError::io(&self.path, "canonicalize", e))?;
                let real = p.canonicalize().map_err(|e| ConfigError::io(p, "canonicalize", e))?;
                if !real.starts_with(&root) {
                    return Err(ConfigError::invalid(&self.path, "file", name, "resolves outside the OVA directory"));
                }
                DiskSource::File { path: p.clone() }
            }
            Loc::InPlace(offset) => DiskSource::InPlace { archive: self.path.clone(), member: name.into(), offset: *offset, length: m.size },
            Loc::Streamed(offset) => {
                let container = match self.kind {
                    Kind::Compressed(c) => c,
                    _ => Container::TarGz,
                };
                DiskSource::Streamed { archive: self.path.clone(), container, member: name.into(), offset: *offset, length: m.size }
            }
            Loc::Sparse(map) => DiskSource::SparseInPlace {
                archive: self.path.clone(),
                member: name.into(),
                size: map.size,
                segments: map.segments.clone(),
            },
            Loc::Unreadable(why) => return Err(ConfigError::invalid(&self.path, "member", name, why.clone())),
        })
    }

    /// Digest of a member's stored bytes.
    pub fn digest(&self, name: &str, algo: Algo) -> Result<String, ConfigError> {
        if let Some(d) = self.digests.get(&(name.to_string(), algo)) {
            return Ok(d.clone());
        }
        let mut r = self.open_member(name)?;
        let mut h = Hasher::new(algo);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let k = r.read(&mut buf).map_err(|e| ConfigError::io(&self.path, "read member", e))?;
            if k == 0 {
                break;
            }
            h.update(buf.get(..k).unwrap_or(&[]));
        }
        Ok(h.finish())
    }
}

/// Seeks `f` to `offset` (helper for in-place readers).
pub fn seek_to(f: &mut File, offset: u64, path: &Path) -> Result<(), ConfigError> {
    f.seek(SeekFrom::Start(offset)).map(|_| ()).map_err(|e| ConfigError::io(path, "seek", e))
}
