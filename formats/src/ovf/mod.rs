//! OVA / OVF reader → [`VmModel`].
//!
//! Accepts a `.ova` tar (ustar or GNU), a gzip- or xz-compressed tar, a zip, a directory or
//! an `.ovf` file; files in subfolders; exactly one `.ovf`. Every `.mf` manifest is checked
//! (SHA1/SHA256/SHA512): a wrong digest is an error ("corrupt OVA"), a garbled line a
//! warning. Hrefs that escape the archive are refused. Disks in an uncompressed tar (or
//! stored in a zip) are exposed in place (offset + length, no copy); in a compressed
//! archive they are [`DiskSource::Streamed`]. `compression="gzip"` files and chunked
//! `href.000000000N` files are supported.

mod archive;
mod envelope;
pub mod manifest;
mod members;
pub mod sparse;
mod stream;

pub use archive::{Archive, Kind, Loc, Member};
pub use envelope::{units, FileRef};
pub use stream::open_stream;

use crate::model::{one_line, ConfigError, DiskSource, VmModel};
use std::path::Path;

/// A read OVA: the model plus the opened archive (for its member list).
pub struct Ova {
    pub vm: VmModel,
    pub archive: Archive,
}

/// Parses only an `.ovf` text, with disks left [`DiskSource::Unresolved`] (fuzzing, tests).
pub fn parse_ovf_text(text: &str, path: &Path) -> Result<VmModel, ConfigError> {
    envelope::parse(text, path, None, &mut |f: &FileRef| Ok(DiskSource::Unresolved { reference: f.href.clone() }))
}

fn verify_manifests(a: &Archive, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    for (mf_name, text) in &a.manifests {
        let (entries, bad) = manifest::parse(text);
        warnings.extend(bad.into_iter().map(|w| format!("{mf_name}: {w}")));
        let dir = members::dir_of(mf_name);
        for e in entries {
            let Some(name) = members::join(dir, &e.file) else {
                return Err(ConfigError::invalid(&a.path, format!("manifest {mf_name}"), &e.file, "file name escapes the archive"));
            };
            if !a.members.contains_key(&name) {
                warnings.push(format!("{mf_name}: {name} is listed but not in the OVA"));
                continue;
            }
            let got = a.digest(&name, e.algo)?;
            if got != e.digest {
                return Err(ConfigError::invalid(
                    &a.path,
                    format!("{} digest of {name}", e.algo.name()),
                    &got,
                    format!("corrupt OVA: manifest {mf_name} says {}", e.digest),
                ));
            }
        }
    }
    Ok(())
}

fn resolve(a: &Archive, ovf_dir: &str, f: &FileRef, warnings: &mut Vec<String>) -> Result<DiskSource, ConfigError> {
    // A directory may use `../` as long as the name stays inside it; an archive may not.
    let name = if a.kind == Kind::Directory { members::join_within(ovf_dir, &f.href) } else { members::join(ovf_dir, &f.href) }
        .ok_or_else(|| {
            let what = if a.kind == Kind::Directory { "escapes the OVA directory" } else { "escapes the archive" };
            ConfigError::invalid(&a.path, "File href", &f.href, what)
        })?;
    // ovf:size is advisory (virt-v2v does not check it); the manifest digest is the
    // integrity check.
    let mut check_size = |what: &str, real: u64| {
        if let Some(size) = f.size.filter(|&s| s != real) {
            warnings.push(format!("{what}: the OVF says ovf:size=\"{size}\", the file has {real} bytes"));
        } else if let Some(t) = f.size_text.as_deref().filter(|_| f.size.is_none()) {
            warnings.push(format!("{what}: ovf:size {:?} is not a number, ignored", one_line(t)));
        }
    };
    let src = if let Some(m) = a.members.get(&name) {
        check_size(&name, m.size);
        a.source_of(&name, m)?
    } else if f.chunked {
        let prefix = format!("{name}.");
        let chunks: Vec<(&String, &Member)> = a
            .members
            .range(prefix.clone()..)
            .take_while(|(n, _)| n.starts_with(&prefix))
            .filter(|(n, _)| n.get(prefix.len()..).is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())))
            .collect();
        if chunks.is_empty() {
            return Err(ConfigError::invalid(&a.path, "File href", &f.href, "missing file: neither it nor its chunks are in the OVA"));
        }
        let mut parts = Vec::new();
        let mut total = 0u64;
        for (i, (n, m)) in chunks.iter().enumerate() {
            let idx: u64 = n.get(prefix.len()..).and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
            if idx != i as u64 {
                return Err(ConfigError::invalid(&a.path, "chunk", n, format!("missing chunk {i} of {name}")));
            }
            total = total.saturating_add(m.size);
            parts.push(a.source_of(n, m)?);
        }
        check_size(&format!("{name} chunks"), total);
        DiskSource::Chunked { chunks: parts }
    } else {
        return Err(ConfigError::invalid(&a.path, "File href", &f.href, "missing file: not in the OVA"));
    };
    Ok(if f.gzip { DiskSource::Gzip { inner: Box::new(src) } } else { src })
}

/// Reads an OVA (archive, directory or `.ovf` file) holding one VM.
pub fn read_ova(path: &Path) -> Result<Ova, ConfigError> {
    read_ova_vm(path, None)
}

/// Reads an OVA; `want` names the VirtualSystem (id or Name) when it holds several.
pub fn read_ova_vm(path: &Path, want: Option<&str>) -> Result<Ova, ConfigError> {
    let archive = Archive::open(path, &envelope::budget)?;
    let mut warnings = archive.warnings.clone();
    verify_manifests(&archive, &mut warnings)?;
    let (ovf_name, ovf_text) = &archive.ovf;
    let ovf_dir = members::dir_of(ovf_name).to_string();
    let shown = archive.path.join(ovf_name);
    let mut size_warnings = Vec::new();
    let mut vm = envelope::parse(ovf_text, &shown, want, &mut |f: &FileRef| resolve(&archive, &ovf_dir, f, &mut size_warnings))?;
    vm.warnings.extend(size_warnings);
    vm.warnings.extend(warnings);
    if archive.kind == Kind::Directory {
        vm.confine = Some(archive.path.clone());
    }
    vm.cap_warnings();
    Ok(Ova { vm, archive })
}
