//! LVM2 text metadata: `name { key = value ... }` sections with numbers, "strings" and
//! [lists]; `#` comments. Nesting depth and size are bounded.

use std::collections::BTreeMap;

const MAX_DEPTH: usize = 32;

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    Str(String),
    List(Vec<Value>),
    Section(Section),
}

/// A section: keys and values in file order (keys are unique in valid metadata; a later
/// duplicate replaces an earlier one).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Section {
    pub entries: BTreeMap<String, Value>,
    /// Section names in file order.
    pub order: Vec<String>,
}

impl Section {
    pub fn get(&self, k: &str) -> Option<&Value> {
        self.entries.get(k)
    }
    pub fn section(&self, k: &str) -> Option<&Section> {
        match self.get(k)? {
            Value::Section(s) => Some(s),
            _ => None,
        }
    }
    pub fn int(&self, k: &str) -> Option<i64> {
        match self.get(k)? {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn str(&self, k: &str) -> Option<&str> {
        match self.get(k)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn list(&self, k: &str) -> Option<&[Value]> {
        match self.get(k)? {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
    /// The strings of a list value (`status = ["READ", "VISIBLE"]`).
    pub fn strs(&self, k: &str) -> Vec<&str> {
        self.list(k)
            .unwrap_or_default()
            .iter()
            .filter_map(|v| if let Value::Str(s) = v { Some(s.as_str()) } else { None })
            .collect()
    }
    /// Sub-sections in file order.
    pub fn sections(&self) -> impl Iterator<Item = (&str, &Section)> {
        self.order.iter().filter_map(|k| match self.entries.get(k) {
            Some(Value::Section(s)) => Some((k.as_str(), s)),
            _ => None,
        })
    }
}

/// Where and why parsing stopped.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    pub line: usize,
    pub reason: String,
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
}

/// Parses a whole metadata text into its top-level section.
pub fn parse(text: &[u8]) -> Result<Section, ParseError> {
    let mut p = P { s: text, i: 0, line: 1 };
    let sec = p.section(0, false)?;
    Ok(sec)
}

impl P<'_> {
    fn err(&self, reason: impl Into<String>) -> ParseError {
        ParseError { line: self.line, reason: reason.into() }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b'\n' => {
                    self.line += 1;
                    self.i += 1
                }
                b' ' | b'\t' | b'\r' | 0 => self.i += 1,
                b'#' => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.i += 1
                    }
                }
                _ => break,
            }
        }
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || b"_-.+".contains(&c)) {
            self.i += 1;
        }
        if start == self.i {
            return Err(self.err(format!("expected a name, found {:?}", self.peek().map(char::from))));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn section(&mut self, depth: usize, braced: bool) -> Result<Section, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err("sections nested too deeply"));
        }
        let mut sec = Section::default();
        loop {
            self.skip_ws();
            match self.peek() {
                None if !braced => return Ok(sec),
                None => return Err(self.err("unterminated section")),
                Some(b'}') if braced => {
                    self.i += 1;
                    return Ok(sec);
                }
                _ => {}
            }
            let key = self.ident()?;
            self.skip_ws();
            let v = match self.peek() {
                Some(b'{') => {
                    self.i += 1;
                    Value::Section(self.section(depth + 1, true)?)
                }
                Some(b'=') => {
                    self.i += 1;
                    self.skip_ws();
                    self.value()?
                }
                c => return Err(self.err(format!("expected '=' or '{{' after {key}, found {:?}", c.map(char::from)))),
            };
            if !sec.entries.contains_key(&key) {
                sec.order.push(key.clone());
            }
            sec.entries.insert(key, v);
        }
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        match self.peek() {
            Some(b'"') => self.string().map(Value::Str),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    match self.peek() {
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::List(items));
                        }
                        Some(b',') => self.i += 1,
                        None => return Err(self.err("unterminated list")),
                        Some(b'[') => return Err(self.err("nested list")),
                        _ => items.push(self.value()?),
                    }
                }
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                let start = self.i;
                self.i += 1;
                while self.peek().is_some_and(|c| c.is_ascii_digit() || c == b'.') {
                    self.i += 1;
                }
                let t = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                // Floats appear only in informational fields; keep their integer part.
                let int = t.split('.').next().unwrap_or_default();
                int.parse().map(Value::Int).map_err(|_| self.err(format!("bad number {t}")))
            }
            c => Err(self.err(format!("unexpected {:?} where a value belongs", c.map(char::from)))),
        }
    }

    fn string(&mut self) -> Result<String, ParseError> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    self.i += 1;
                    if let Some(c) = self.peek() {
                        out.push(c);
                        self.i += 1;
                    }
                }
                Some(c) => {
                    if c == b'\n' {
                        self.line += 1;
                    }
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vg_text() {
        let t = b"vg {\n id = \"abc\"\n seqno = 3 # comment\n status = [\"READ\", \"WRITE\"]\n lv { x = -1 }\n}\ncontents = \"Text Format Volume Group\"\n";
        let s = parse(t).unwrap();
        let vg = s.section("vg").unwrap();
        assert_eq!(vg.str("id"), Some("abc"));
        assert_eq!(vg.int("seqno"), Some(3));
        assert_eq!(vg.strs("status"), vec!["READ", "WRITE"]);
        assert_eq!(vg.section("lv").unwrap().int("x"), Some(-1));
        assert_eq!(s.order, vec!["vg", "contents"]);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse(b"vg {\n a = \n}").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(parse(b"a { b { c {").is_err());
        let deep = "a{".repeat(100);
        assert!(parse(deep.as_bytes()).unwrap_err().reason.contains("deeply"));
    }
}
