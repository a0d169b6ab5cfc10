//! VMX syntax: `key = "value"` lines, case-insensitive keys, `|XX` hex escapes, `#` comments,
//! CRLF; first of duplicate keys wins; `ns.present = "FALSE"` drops namespace `ns`.

use std::collections::{BTreeMap, BTreeSet};

/// A parsed VMX file: lowercase key → value, plus the lines it had to skip.
#[derive(Debug, Default)]
pub struct Vmx {
    pub keys: BTreeMap<String, String>,
    /// Namespaces switched off by `ns.present = "FALSE"`.
    pub disabled: BTreeSet<String>,
    pub warnings: Vec<String>,
}

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

impl Vmx {
    /// Parses VMX text. Never fails: bad lines become warnings.
    pub fn parse(text: &str) -> Vmx {
        let mut vmx = Vmx::default();
        let mut raw: Vec<(String, String)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r').trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                vmx.warnings.push(format!("line {}: no '=' in {line:?}, ignored", n + 1));
                continue;
            };
            let key = k.trim().to_ascii_lowercase();
            if key.is_empty() || key.contains(char::is_whitespace) {
                vmx.warnings.push(format!("line {}: bad key {:?}, ignored", n + 1, k.trim()));
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
                        vmx.warnings.push(format!("line {}: unterminated quote in {key}, ignored", n + 1));
                        continue;
                    }
                }
            } else {
                v.split('#').next().unwrap_or("").trim()
            };
            raw.push((key, unescape(value)));
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
