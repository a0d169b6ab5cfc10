//! VMX syntax: `key = "value"` lines, case-insensitive keys, `|XX` hex escapes, `#` comments,
//! CRLF; first of duplicate keys wins; `ns.present = "FALSE"` drops namespace `ns`. Keys are
//! printable ASCII; malformed lines are counted, and the first few become warnings.

use std::collections::{BTreeMap, BTreeSet};

/// A parsed VMX file: lowercase key → value, plus the lines it had to skip.
#[derive(Debug, Default)]
pub struct Vmx {
    pub keys: BTreeMap<String, String>,
    /// Namespaces switched off by `ns.present = "FALSE"`.
    pub disabled: BTreeSet<String>,
    pub warnings: Vec<String>,
    /// Lines read as `key = value`.
    pub good_lines: usize,
    /// Lines skipped as malformed (the first of them is `first_bad`).
    pub bad_lines: usize,
    pub first_bad: Option<usize>,
}

/// Line warnings kept before the rest are only counted.
const MAX_LINE_WARNINGS: usize = 20;

fn unescape(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'|' {
            let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(byte) = hex {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// At most 80 characters of a line, for a warning.
fn cut(s: &str) -> String {
    s.chars().take(80).collect()
}

impl Vmx {
    /// Parses VMX text. Never fails: bad lines become warnings.
    pub fn parse(text: &str) -> Vmx {
        let mut vmx = Vmx::default();
        let mut raw: Vec<(String, String)> = Vec::new();
        let mut line_warnings: Vec<String> = Vec::new();
        let mut bad = |vmx: &mut Vmx, n: usize, w: String| {
            vmx.bad_lines += 1;
            vmx.first_bad.get_or_insert(n + 1);
            if line_warnings.len() < MAX_LINE_WARNINGS {
                line_warnings.push(w);
            }
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r').trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                bad(&mut vmx, n, format!("line {}: no '=' in {:?}, ignored", n + 1, cut(line)));
                continue;
            };
            let key = k.trim().to_ascii_lowercase();
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'#' | b'=')) {
                bad(&mut vmx, n, format!("line {}: bad key {:?}, ignored", n + 1, cut(k.trim())));
                continue;
            }
            let v = v.trim();
            let value = if let Some(rest) = v.strip_prefix('"') {
                match rest.find('"') {
                    Some(end) => {
                        let tail = rest.get(end + 1..).unwrap_or("").trim();
                        if !tail.is_empty() && !tail.starts_with('#') {
                            vmx.warnings.push(format!("line {}: text after the value of {key}, ignored", n + 1));
                        }
                        rest.get(..end).unwrap_or("")
                    }
                    None => {
                        bad(&mut vmx, n, format!("line {}: unterminated quote in {key}, ignored", n + 1));
                        continue;
                    }
                }
            } else {
                v.split('#').next().unwrap_or("").trim()
            };
            vmx.good_lines += 1;
            raw.push((key, unescape(value)));
        }
        let more = vmx.bad_lines.saturating_sub(line_warnings.len());
        vmx.warnings.append(&mut line_warnings);
        if more > 0 {
            vmx.warnings.push(format!("{more} more malformed lines ignored"));
        }
        for (key, value) in raw {
            if vmx.keys.contains_key(&key) {
                vmx.warnings.push(format!("duplicate key {key}, keeping the first value"));
                continue;
            }
            if let Some(ns) = key.strip_suffix(".present") {
                if value.eq_ignore_ascii_case("false") {
                    vmx.disabled.insert(ns.to_string());
                }
            }
            vmx.keys.insert(key, value);
        }
        let disabled = vmx.disabled.clone();
        vmx.keys.retain(|k, _| !disabled.iter().any(|ns| k.starts_with(ns.as_str()) && k.as_bytes().get(ns.len()) == Some(&b'.')));
        vmx
    }

    /// Value of `key` (any case).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.keys.get(&key.to_ascii_lowercase()).map(String::as_str)
    }

    /// Whether namespace `ns` was switched off with `ns.present = "FALSE"`.
    pub fn is_disabled(&self, ns: &str) -> bool {
        self.disabled.contains(&ns.to_ascii_lowercase())
    }

    /// Boolean value: TRUE/true/yes/1 or FALSE/false/no/0; Err(value) if neither.
    pub fn get_bool(&self, key: &str) -> Option<Result<bool, String>> {
        self.get(key).map(|v| match v.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(true),
            "false" | "no" | "0" => Ok(false),
            _ => Err(v.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_rules() {
        let text = "#!/usr/bin/vmware\r\n.encoding = \"UTF-8\"\r\nDisplayName = \"web |22prod|22 |7C x\"\r\n\
                    displayname = \"second\"\r\nfloppy0.present = \"FALSE\"\r\nfloppy0.fileName = \"a.flp\"\r\n\
                    garbage line\r\nmemsize = 1024 # c\r\nnvram = \"x.nvram\" junk\r\n";
        let v = Vmx::parse(text);
        assert_eq!(v.get("displayName"), Some("web \"prod\" | x"));
        assert_eq!(v.get("floppy0.filename"), None);
        assert!(v.is_disabled("floppy0"));
        assert_eq!(v.get("MEMSIZE"), Some("1024"));
        assert_eq!(v.get("nvram"), Some("x.nvram"));
        assert_eq!(v.warnings.len(), 3, "{:?}", v.warnings);
    }
}
