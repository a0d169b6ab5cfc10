//! A module's `.modinfo` section (`depends=`, `softdep=`, `alias=`, ...), read with `goblin`
//! from `.ko`, `.ko.xz`, `.ko.zst` or `.ko.gz` files.

use std::io::Read;

use super::KmodError;

/// Largest uncompressed module accepted (the biggest in-tree modules are a few tens of MiB).
pub const MAX_MODULE_SIZE: u64 = 256 << 20;

/// The key=value pairs of a module's `.modinfo`, in section order.
#[derive(Debug, Clone, Default)]
pub struct ModInfo {
    /// All pairs; keys repeat (`alias`, `parm`...).
    pub pairs: Vec<(String, String)>,
}

impl ModInfo {
    /// Parses a module file's bytes; `path` decides the decompression and names errors.
    pub fn parse(path: &str, data: &[u8]) -> Result<ModInfo, KmodError> {
        let elf_bytes = decompress_module(path, data)?;
        let elf = goblin::elf::Elf::parse(&elf_bytes)
            .map_err(|e| KmodError::invalid(path, "ELF", e, "not a kernel module"))?;
        let section = elf
            .section_headers
            .iter()
            .find(|sh| elf.shdr_strtab.get_at(sh.sh_name) == Some(".modinfo"))
            .ok_or_else(|| KmodError::invalid(path, "section", ".modinfo", "missing"))?;
        let bytes = usize::try_from(section.sh_offset)
            .ok()
            .zip(usize::try_from(section.sh_size).ok())
            .and_then(|(off, size)| elf_bytes.get(off..off.checked_add(size)?))
            .ok_or_else(|| {
                KmodError::invalid(path, ".modinfo extent", format!("{}+{}", section.sh_offset, section.sh_size), "outside the file")
            })?;
        let pairs = bytes
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .filter_map(|s| {
                let s = String::from_utf8_lossy(s);
                let (k, v) = s.split_once('=')?;
                Some((k.to_string(), v.to_string()))
            })
            .collect();
        Ok(ModInfo { pairs })
    }

    /// Every value of a key.
    pub fn values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The modules named by `depends=` (comma-separated).
    pub fn depends(&self) -> Vec<String> {
        self.values("depends")
            .flat_map(|v| v.split(','))
            .filter(|s| !s.is_empty())
            .map(super::module_name)
            .collect()
    }

    /// The `pre:` modules of every `softdep=`.
    pub fn softdep_pre(&self) -> Vec<String> {
        self.values("softdep").flat_map(super::deps::softdep_pre).collect()
    }
}

/// Returns the ELF bytes of a module file, decompressing by suffix (or by magic).
pub fn decompress_module(path: &str, data: &[u8]) -> Result<Vec<u8>, KmodError> {
    let limit = MAX_MODULE_SIZE;
    let mut out = Vec::new();
    let res = if path.ends_with(".xz") || data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        liblzma::read::XzDecoder::new(data).take(limit + 1).read_to_end(&mut out)
    } else if path.ends_with(".zst") || data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::read::Decoder::new(data).and_then(|d| d.take(limit + 1).read_to_end(&mut out))
    } else if path.ends_with(".gz") || data.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(data).take(limit + 1).read_to_end(&mut out)
    } else {
        return Ok(data.to_vec());
    };
    res.map_err(|e| KmodError::invalid(path, "compressed module", e, "cannot be decompressed"))?;
    if out.len() as u64 > limit {
        return Err(KmodError::invalid(path, "module size", format!("> {limit}"), "too large"));
    }
    Ok(out)
}
