//! OVA manifests (`.mf`): `SHA256(file)= hex`, also SHA1 / SHA512, the `SHA1 (f) = h`
//! spacing variant and CRLF line ends.

/// Digest algorithms a manifest may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algo {
    Sha1,
    Sha256,
    Sha512,
}

impl Algo {
    pub fn name(self) -> &'static str {
        match self {
            Algo::Sha1 => "SHA1",
            Algo::Sha256 => "SHA256",
            Algo::Sha512 => "SHA512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algo::Sha1 => 40,
            Algo::Sha256 => 64,
            Algo::Sha512 => 128,
        }
    }
}

/// One `ALGO(file)= digest` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub algo: Algo,
    /// File name as written, relative to the manifest's directory.
    pub file: String,
    /// Lowercase hex.
    pub digest: String,
}

/// Parses a manifest. Lines that do not match are returned as warnings, not errors.
pub fn parse(text: &str) -> (Vec<Entry>, Vec<String>) {
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    for (n, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Some(e) => entries.push(e),
            None => warnings.push(format!("manifest line {}: cannot parse {:?}, ignored", n + 1, line.chars().take(120).collect::<String>())),
        }
    }
    (entries, warnings)
}

fn parse_line(line: &str) -> Option<Entry> {
    let (algo, rest) = [("SHA1", Algo::Sha1), ("SHA256", Algo::Sha256), ("SHA512", Algo::Sha512)]
        .into_iter()
        .find_map(|(p, a)| {
            let rest = line.strip_prefix(p)?.trim_start_matches([' ', '\t']);
            rest.starts_with('(').then_some((a, rest))
        })?;
    let rest = rest.strip_prefix('(')?;
    let close = rest.rfind(')')?;
    let file = rest.get(..close)?;
    let tail = rest.get(close + 1..)?.trim_start_matches([' ', '\t']).strip_prefix('=')?;
    let digest = tail.trim_matches([' ', '\t']);
    if file.is_empty() || digest.len() != algo.hex_len() || !digest.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some(Entry { algo, file: file.to_string(), digest: digest.to_ascii_lowercase() })
}

/// A running digest of one algorithm.
pub enum Hasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algo: Algo) -> Self {
        use sha2::Digest;
        match algo {
            Algo::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algo::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        use sha2::Digest;
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// Lowercase hex.
    pub fn finish(self) -> String {
        use sha2::Digest;
        let bytes: Vec<u8> = match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants() {
        let d1 = "a".repeat(40);
        let d256 = "B".repeat(64);
        let d512 = "c".repeat(128);
        let text = format!(
            "SHA1(x.ovf)= {d1}\r\nSHA256 (disk 1.vmdk) = {d256}\r\nSHA512(sub/d.vmdk)={d512}\nSHA1(bad)= 12\ngarbage\n\n"
        );
        let (e, w) = parse(&text);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0], Entry { algo: Algo::Sha1, file: "x.ovf".into(), digest: d1 });
        assert_eq!(e[1].file, "disk 1.vmdk");
        assert_eq!(e[1].digest, "b".repeat(64));
        assert_eq!(e[2].algo, Algo::Sha512);
        assert_eq!(w.len(), 2, "{w:?}");
    }

    #[test]
    fn known_digests() {
        let mut h = Hasher::new(Algo::Sha256);
        h.update(b"abc");
        assert_eq!(h.finish(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let mut h = Hasher::new(Algo::Sha1);
        h.update(b"abc");
        assert_eq!(h.finish(), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }
}
