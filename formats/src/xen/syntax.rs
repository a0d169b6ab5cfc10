//! The xl.cfg / xm syntax subset: `key = value` statements (newline- or `;`-separated),
//! values being integers, `'…'`/`"…"` strings (Python escapes), or lists that may span
//! lines and end with a trailing comma; `#` comments. Anything else is a one-line error.

use crate::model::ConfigError;
use std::path::Path;

/// A value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    Str(String),
    List(Vec<Value>),
}

/// A setting with the line it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    pub key: String,
    pub value: Value,
    pub line: usize,
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
    line: usize,
    path: &'a Path,
}

const MAX_DEPTH: usize = 8;

impl<'a> Lexer<'a> {
    fn err(&self, what: impl std::fmt::Display, reason: &str) -> ConfigError {
        ConfigError::invalid(self.path, format!("line {}", self.line), what, reason)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// Skips blanks and comments; newlines too when `nl`.
    fn skip(&mut self, nl: bool) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'\\' if self.s.get(self.pos + 1) == Some(&b'\n') => {
                    self.pos += 2;
                    self.line += 1;
                }
                b'\n' if nl => {
                    self.pos += 1;
                    self.line += 1;
                }
                b'#' => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn ident(&mut self) -> Option<String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-') {
            self.pos += 1;
        }
        (self.pos > start).then(|| String::from_utf8_lossy(self.s.get(start..self.pos).unwrap_or(&[])).into_owned())
    }

    fn string(&mut self, q: u8) -> Result<String, ConfigError> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else { return Err(self.err("", "unterminated string")) };
            self.pos += 1;
            match c {
                c if c == q => break,
                b'\n' => return Err(self.err("", "unterminated string")),
                b'\\' => {
                    let Some(e) = self.peek() else { return Err(self.err("", "unterminated string")) };
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'\\' | b'\'' | b'"' => out.push(e),
                        b'\n' => self.line += 1,
                        other => {
                            out.push(b'\\');
                            out.push(other);
                        }
                    }
                }
                c => out.push(c),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    fn value(&mut self, depth: usize) -> Result<Value, ConfigError> {
        if depth > MAX_DEPTH {
            return Err(self.err("[", "lists nested too deeply"));
        }
        match self.peek() {
            Some(q @ (b'"' | b'\'')) => {
                if self.s.get(self.pos..self.pos + 3) == Some(&[q, q, q][..]) {
                    return Err(self.err("triple-quoted string", "unsupported Python syntax"));
                }
                Ok(Value::Str(self.string(q)?))
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip(true);
                    match self.peek() {
                        Some(b']') => {
                            self.pos += 1;
                            break;
                        }
                        None => return Err(self.err("", "unterminated list")),
                        _ => {}
                    }
                    items.push(self.value(depth + 1)?);
                    self.skip(true);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            break;
                        }
                        Some(c) => return Err(self.err(char::from(c), "expected ',' or ']' in a list")),
                        None => return Err(self.err("", "unterminated list")),
                    }
                }
                Ok(Value::List(items))
            }
            Some(c) if c.is_ascii_digit() || c == b'-' => {
                let start = self.pos;
                self.pos += 1;
                while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'.') {
                    self.pos += 1;
                }
                let t = String::from_utf8_lossy(self.s.get(start..self.pos).unwrap_or(&[])).into_owned();
                let n = if let Some(h) = t.strip_prefix("0x") {
                    i64::from_str_radix(h, 16).ok()
                } else {
                    t.parse::<i64>().ok()
                };
                n.map(Value::Int).ok_or_else(|| self.err(&t, "not an integer"))
            }
            Some(c) => {
                let word = self.ident().unwrap_or_else(|| char::from(c).to_string());
                Err(self.err(word, "unsupported Python syntax: expected a number, a quoted string or a list"))
            }
            None => Err(self.err("", "missing value")),
        }
    }
}

/// Parses a whole config.
pub fn parse(text: &str, path: &Path) -> Result<Vec<Setting>, ConfigError> {
    let mut lx = Lexer { s: text.as_bytes(), pos: 0, line: 1, path };
    let mut out = Vec::new();
    loop {
        lx.skip(true);
        while lx.peek() == Some(b';') {
            lx.pos += 1;
            lx.skip(true);
        }
        if lx.peek().is_none() {
            break;
        }
        let line = lx.line;
        let Some(key) = lx.ident().filter(|k| k.bytes().next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')) else {
            let c = lx.peek().map(char::from).unwrap_or(' ');
            return Err(lx.err(c, "expected a setting name"));
        };
        if key == "import" || key == "from" || key == "def" || key == "if" {
            return Err(lx.err(&key, "unsupported Python syntax: only key = value settings are accepted"));
        }
        lx.skip(false);
        if lx.peek() != Some(b'=') {
            let c = lx.peek().map(|c| char::from(c).to_string()).unwrap_or_default();
            return Err(lx.err(format!("{key}{c}"), "expected '=' after the setting name"));
        }
        lx.pos += 1;
        lx.skip(false);
        let value = lx.value(0)?;
        lx.skip(false);
        match lx.peek() {
            None | Some(b'\n' | b';') => {}
            Some(c) => return Err(lx.err(char::from(c), &format!("unsupported Python syntax after the value of {key}"))),
        }
        out.push(Setting { key, value, line });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset() {
        let t = "# c\nname = \"web\" # x\nmemory=2048; vcpus = 0x2\ndisk = [ 'phy:/dev/a,xvda,w',\n  \"file:/b,xvdb,r\", # c\n ]\nextra='a \\'b\\''\n";
        let s = parse(t, Path::new("x.cfg")).unwrap();
        assert_eq!(s.len(), 5);
        assert_eq!(s[0].value, Value::Str("web".into()));
        assert_eq!(s[2].value, Value::Int(2));
        assert_eq!(s[3].line, 4);
        assert_eq!(s[3].value, Value::List(vec![Value::Str("phy:/dev/a,xvda,w".into()), Value::Str("file:/b,xvdb,r".into())]));
        assert_eq!(s[4].value, Value::Str("a 'b'".into()));
    }

    #[test]
    fn errors_name_line_and_token() {
        for (t, want) in [
            ("import os\n", "line 1"),
            ("name = 'a'\nkernel = \"/boot/\" + os.uname()[2]\n", "line 2"),
            ("memory = True\n", "True"),
            ("disk = ['a'\n", "unterminated list"),
            ("name = 'abc\n", "unterminated string"),
            ("= 3\n", "expected a setting name"),
        ] {
            let e = parse(t, Path::new("x.cfg")).unwrap_err().to_string();
            assert!(e.contains(want) && e.starts_with("x.cfg: ") && !e.contains('\n'), "{t:?}: {e}");
        }
    }
}
