//! An SELinux policy's file labelling rules, `contexts/files/file_contexts` (file_contexts(5)),
//! read the way libselinux's file backend reads them, so that files Ferry writes get the label
//! `restorecon` would give them.
//!
//! Each line is `REGEX [TYPE] CONTEXT`: an anchored regular expression over the whole path, an
//! optional file type (`--` regular, `-d` directory, `-l` symlink, `-c`/`-b` character/block
//! device, `-s` socket, `-p` FIFO) and a context, or `<<none>>` (the path gets no label). Blank
//! lines and lines starting with `#` are skipped, tokens past the third ignored. The base file is
//! followed by `file_contexts.homedirs` and `file_contexts.local`; `file_contexts.subs` and
//! `file_contexts.subs_dist` are path aliases (`/bin /usr/bin`) applied before the lookup, `.subs`
//! first. The lookup: the last matching entry wins, except that entries without regex
//! metacharacters (`.^$?*+|[({` unescaped) win over those with; the MLS/MCS part of a context is
//! kept as written.
//!
//! Regexes are compiled on first use, and only those whose literal prefix is a prefix of the
//! path looked up, so a 5,000-line policy costs a few dozen compilations per file labelled.
//! Memory is bounded: at most [`MAX_FILE`] bytes per file, [`MAX_SPECS`] entries, each
//! compiled regex at most [`REGEX_SIZE`] bytes, at most [`MAX_COMPILED`] of them kept.

use crate::guestfs::{FileKind, GuestFs, GuestFsError};
use regex::bytes::{Regex, RegexBuilder};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Largest policy file read (Fedora's whole file_contexts is under 1 MiB).
pub const MAX_FILE: u64 = 16 << 20;
/// Most entries kept from all files together (Fedora's policy has about 7,000).
pub const MAX_SPECS: usize = 50_000;
/// Largest compiled program (and lazy DFA cache) of one entry's regex.
pub const REGEX_SIZE: usize = 256 << 10;
/// Most compiled regexes kept for later lookups; past that, one is compiled for each use.
pub const MAX_COMPILED: usize = 4096;
/// Most path aliases kept per `.subs` file.
const MAX_SUBS: usize = 10_000;

/// Errors of reading or using a file_contexts policy; each names the file and line.
#[derive(Debug, thiserror::Error)]
pub enum FileContextsError {
    /// A line libselinux refuses too (it then refuses the whole policy).
    #[error("{file}:{line}: {reason}: {text}")]
    BadLine { file: String, line: usize, reason: String, text: String },
    /// An entry's regex does not compile (or is larger than Ferry compiles).
    #[error("{file}:{line}: regex {text} does not compile: {reason}")]
    BadRegex { file: String, line: usize, text: String, reason: String },
    /// A policy file is larger than [`MAX_FILE`] or the entries more than [`MAX_SPECS`].
    #[error("{file}: {what}")]
    TooLarge { file: String, what: String },
    /// Reading a policy file from the guest failed.
    #[error(transparent)]
    Fs(#[from] GuestFsError),
}

/// The file types of file_contexts entries (and of lookups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    File,
    Dir,
    Symlink,
    Char,
    Block,
    Socket,
    Fifo,
}

impl FileType {
    /// The type written in file_contexts (`--`, `-d`...).
    fn parse(s: &[u8]) -> Option<Self> {
        Some(match s {
            b"--" => FileType::File,
            b"-d" => FileType::Dir,
            b"-l" => FileType::Symlink,
            b"-c" => FileType::Char,
            b"-b" => FileType::Block,
            b"-s" => FileType::Socket,
            b"-p" => FileType::Fifo,
            _ => return None,
        })
    }
    /// The type of a guest object ([`FileKind::Other`] has no single type: `None`).
    pub fn of(kind: FileKind) -> Option<Self> {
        match kind {
            FileKind::File => Some(FileType::File),
            FileKind::Dir => Some(FileType::Dir),
            FileKind::Symlink => Some(FileType::Symlink),
            FileKind::Other => None,
        }
    }
}

/// One entry.
#[derive(Debug)]
struct Spec {
    /// The regex as written.
    regex: String,
    /// Literal text every path it matches starts with.
    prefix: String,
    ftype: Option<FileType>,
    /// `None` for `<<none>>`.
    context: Option<String>,
    /// Where it was read, for errors.
    file: usize,
    line: usize,
    compiled: OnceLock<Result<Regex, String>>,
}

/// A loaded policy: entries in lookup order (regex entries, then literal ones) and aliases.
#[derive(Debug, Default)]
pub struct FileContexts {
    specs: Vec<Spec>,
    /// Names of the files read (indexes of `Spec::file`).
    files: Vec<String>,
    /// `file_contexts.subs` and `.subs_dist` aliases, each in file order.
    subs: Vec<(String, String)>,
    dist_subs: Vec<(String, String)>,
    /// How many entries hold a compiled regex.
    compiled: AtomicUsize,
}

/// `re` in the regex crate's syntax, read as PCRE reads it (libselinux uses PCRE2): a `{` that
/// does not start a `{n}`, `{n,}` or `{n,m}` quantifier is a literal, and inside a bracket
/// expression `[` (other than `[:class:]`), `&` and `~` are literals.
fn pcre_to_rust(re: &str) -> String {
    let b: Vec<char> = re.chars().collect();
    let mut out = String::with_capacity(re.len() + 8);
    let mut i = 0;
    let mut class = false;
    while i < b.len() {
        let c = b[i];
        if c == '\\' {
            out.push(c);
            if let Some(&n) = b.get(i + 1) {
                out.push(n);
            }
            i += 2;
            continue;
        }
        if class {
            match c {
                ']' => class = false,
                '[' if b.get(i + 1) == Some(&':') => {
                    let end = (i + 2..b.len().saturating_sub(1)).find(|&k| b[k] == ':' && b[k + 1] == ']');
                    if let Some(end) = end {
                        out.extend(&b[i..end + 2]);
                        i = end + 2;
                        continue;
                    }
                    out.push('\\');
                }
                '[' | '&' | '~' => out.push('\\'),
                _ => {}
            }
            out.push(c);
            i += 1;
            continue;
        }
        match c {
            '[' => {
                class = true;
                out.push(c);
                i += 1;
                if b.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if b.get(i) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
                continue;
            }
            '{' => {
                let close = b[i + 1..].iter().position(|&x| x == '}').map(|k| i + 1 + k);
                if let Some(e) = close {
                    let inner: String = b[i + 1..e].iter().collect();
                    let (lo, hi) = inner.split_once(',').unwrap_or((&inner, ""));
                    if !lo.is_empty() && lo.bytes().all(|d| d.is_ascii_digit()) && hi.bytes().all(|d| d.is_ascii_digit()) {
                        out.extend(&b[i..=e]);
                        i = e + 1;
                        continue;
                    }
                }
                out.push('\\');
            }
            '}' => out.push('\\'),
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    out
}

fn compile(re: &str) -> Result<Regex, String> {
    RegexBuilder::new(&format!("^{}$", pcre_to_rust(re)))
        .unicode(false)
        .size_limit(REGEX_SIZE)
        .dfa_size_limit(REGEX_SIZE)
        .build()
        .map_err(|e| e.to_string().lines().last().unwrap_or("").trim().to_owned())
}

/// Shows a line's bytes with non-printable ones escaped (`\xNN`), at most 200 of them.
fn escaped(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b.iter().take(200) {
        match c {
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(char::from(c)),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    if b.len() > 200 {
        s.push_str(&format!("... ({} more bytes)", b.len() - 200));
    }
    s
}

/// Whether `re` has an unescaped regex metacharacter (libselinux's test for "not a plain path").
fn has_meta(re: &str) -> bool {
    let mut it = re.bytes();
    while let Some(c) = it.next() {
        match c {
            b'\\' => {
                it.next();
            }
            b'.' | b'^' | b'$' | b'?' | b'*' | b'+' | b'|' | b'[' | b'(' | b'{' => return true,
            _ => {}
        }
    }
    false
}

/// The literal text every match of `^re$` starts with (possibly empty; never too long).
fn literal_prefix(re: &str) -> String {
    // A top-level alternation makes `^a|b$` match what does not start with `a`.
    let mut depth = 0i32;
    let mut esc = false;
    for c in re.bytes() {
        match (esc, c) {
            (true, _) => esc = false,
            (false, b'\\') => esc = true,
            (false, b'(') => depth += 1,
            (false, b')') => depth -= 1,
            (false, b'|') if depth <= 0 => return String::new(),
            _ => {}
        }
    }
    let mut out = String::new();
    let mut chars = re.chars().peekable();
    while let Some(c) = chars.next() {
        let lit = match c {
            '\\' => match chars.next() {
                Some(e) if e.is_ascii_punctuation() => e,
                _ => break,
            },
            '.' | '^' | '$' | '|' | '[' | '(' | ')' | ']' | '}' => break,
            '?' | '*' | '{' | '+' => {
                // A quantifier applies to the character before it.
                out.pop();
                break;
            }
            c => c,
        };
        if matches!(chars.peek(), Some('?' | '*' | '{')) {
            break;
        }
        out.push(lit);
    }
    out
}

/// Whitespace as C's `isspace` (libselinux splits its lines with it): Rust's ASCII
/// whitespace plus the vertical tab.
pub fn is_c_space(c: u8) -> bool {
    c.is_ascii_whitespace() || c == 0x0b
}

/// Splits a line into at most `n` whitespace-separated tokens.
fn tokens(line: &[u8], n: usize) -> Vec<&[u8]> {
    line.split(|&c| is_c_space(c)).filter(|t| !t.is_empty()).take(n).collect()
}

impl FileContexts {
    /// An empty policy (every lookup finds nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the entries of one file_contexts file (`name` is used in errors), after those
    /// already added.
    pub fn add(&mut self, name: &str, text: &[u8]) -> Result<(), FileContextsError> {
        if text.len() as u64 > MAX_FILE {
            return Err(FileContextsError::TooLarge { file: name.into(), what: format!("{} bytes, more than {MAX_FILE}", text.len()) });
        }
        let file = self.files.len();
        self.files.push(name.to_owned());
        let bad = |line: usize, raw: &[u8], reason: &str| FileContextsError::BadLine { file: name.into(), line, reason: reason.into(), text: escaped(raw) };
        for (i, raw) in text.split(|&c| c == b'\n').enumerate() {
            let line = i + 1;
            let t = tokens(raw, 3);
            let Some(first) = t.first() else { continue };
            if first.starts_with(b"#") {
                continue;
            }
            let (re, ftype, ctx) = match t[..] {
                [re, ctx] => (re, None, ctx),
                [re, ty, ctx] => (re, Some(FileType::parse(ty).ok_or_else(|| bad(line, raw, &format!("invalid file type {}", escaped(ty))))?), ctx),
                _ => return Err(bad(line, raw, "missing fields")),
            };
            let (Ok(re), Ok(ctx)) = (std::str::from_utf8(re), std::str::from_utf8(ctx)) else {
                return Err(bad(line, raw, "not UTF-8"));
            };
            if self.specs.len() >= MAX_SPECS {
                return Err(FileContextsError::TooLarge { file: name.into(), what: format!("more than {MAX_SPECS} entries") });
            }
            self.specs.push(Spec {
                regex: re.to_owned(),
                prefix: literal_prefix(re),
                ftype,
                context: (ctx != "<<none>>").then(|| ctx.to_owned()),
                file,
                line,
                compiled: OnceLock::new(),
            });
        }
        Ok(())
    }

    /// Adds one `.subs` (`dist` false) or `.subs_dist` file of `ALIAS PATH` lines.
    pub fn add_subs(&mut self, name: &str, text: &[u8], dist: bool) -> Result<(), FileContextsError> {
        if text.len() as u64 > MAX_FILE {
            return Err(FileContextsError::TooLarge { file: name.into(), what: format!("{} bytes, more than {MAX_FILE}", text.len()) });
        }
        let list = if dist { &mut self.dist_subs } else { &mut self.subs };
        for raw in text.split(|&c| c == b'\n') {
            let t = tokens(raw, 2);
            let [src, dst] = t[..] else { continue };
            if src.starts_with(b"#") {
                continue;
            }
            let (Ok(src), Ok(dst)) = (std::str::from_utf8(src), std::str::from_utf8(dst)) else { continue };
            if list.len() >= MAX_SUBS {
                return Err(FileContextsError::TooLarge { file: name.into(), what: format!("more than {MAX_SUBS} aliases") });
            }
            list.push((src.to_owned(), dst.to_owned()));
        }
        Ok(())
    }

    /// Puts the entries in lookup order: those without metacharacters after the others, each
    /// group keeping file order (libselinux does the same after loading).
    fn sort(&mut self) {
        let (lit, mut re): (Vec<Spec>, Vec<Spec>) = std::mem::take(&mut self.specs).into_iter().partition(|s| !has_meta(&s.regex));
        re.extend(lit);
        self.specs = re;
    }

    /// Reads the policy `type_` (`SELINUXTYPE=`) from the guest:
    /// `/etc/selinux/TYPE/contexts/files/file_contexts`, then `.homedirs`, `.local`, `.subs`,
    /// `.subs_dist` where present. `Ok(None)` when the base file is missing or not a regular file.
    pub fn load(fs: &dyn GuestFs, type_: &str) -> Result<Option<Self>, FileContextsError> {
        if type_.is_empty() || type_.contains('/') || type_.starts_with('.') {
            return Ok(None);
        }
        let base = format!("/etc/selinux/{type_}/contexts/files/file_contexts");
        let read = |p: &str| -> Result<Option<Vec<u8>>, FileContextsError> {
            match fs.stat(p)? {
                Some(st) if st.kind == FileKind::File && st.size > MAX_FILE => {
                    Err(FileContextsError::TooLarge { file: p.into(), what: format!("{} bytes, more than {MAX_FILE}", st.size) })
                }
                Some(st) if st.kind == FileKind::File => Ok(Some(fs.read_file(p)?)),
                _ => Ok(None),
            }
        };
        let Some(text) = read(&base)? else { return Ok(None) };
        let mut fc = FileContexts::new();
        fc.add(&base, &text)?;
        for ext in ["homedirs", "local"] {
            let p = format!("{base}.{ext}");
            if let Some(t) = read(&p)? {
                fc.add(&p, &t)?;
            }
        }
        for (ext, dist) in [("subs", false), ("subs_dist", true)] {
            let p = format!("{base}.{ext}");
            if let Some(t) = read(&p)? {
                fc.add_subs(&p, &t, dist)?;
            }
        }
        fc.sort();
        Ok(Some(fc))
    }

    /// Builds a policy from texts (tests, fuzzing): file_contexts entries and `.subs_dist`.
    pub fn from_texts(name: &str, text: &[u8], subs_dist: &[u8]) -> Result<Self, FileContextsError> {
        let mut fc = FileContexts::new();
        fc.add(name, text)?;
        fc.add_subs(&format!("{name}.subs_dist"), subs_dist, true)?;
        fc.sort();
        Ok(fc)
    }

    /// How many entries are loaded.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// Whether no entry is loaded.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// `path` through the first matching alias of `list`, the file's last line tried first.
    fn alias(list: &[(String, String)], path: &str) -> Option<String> {
        list.iter().rev().find_map(|(src, dst)| {
            let rest = path.strip_prefix(src.as_str())?;
            if !(rest.is_empty() || rest.starts_with('/')) {
                return None;
            }
            Some(if dst == "/" && !rest.is_empty() { rest.to_owned() } else { format!("{dst}{rest}") })
        })
    }

    /// The context for `path` (guest-absolute) as an object of type `ftype`; `Ok(None)` when no
    /// entry matches or the matching one is `<<none>>`.
    pub fn lookup(&self, path: &str, ftype: FileType) -> Result<Option<&str>, FileContextsError> {
        let mut key = String::with_capacity(path.len());
        for c in path.chars() {
            if !(c == '/' && key.ends_with('/')) {
                key.push(c);
            }
        }
        if key.len() > 1 && key.ends_with('/') {
            key.pop();
        }
        let key = match Self::alias(&self.subs, &key) {
            Some(k) => Self::alias(&self.dist_subs, &k).unwrap_or(k),
            None => Self::alias(&self.dist_subs, &key).unwrap_or(key),
        };
        for s in self.specs.iter().rev() {
            if !key.starts_with(s.prefix.as_str()) || s.ftype.is_some_and(|t| t != ftype) {
                continue;
            }
            let fresh;
            let re = match s.compiled.get() {
                Some(r) => r,
                None if self.compiled.load(Ordering::Relaxed) < MAX_COMPILED => {
                    self.compiled.fetch_add(1, Ordering::Relaxed);
                    s.compiled.get_or_init(|| compile(&s.regex))
                }
                None => {
                    fresh = compile(&s.regex);
                    &fresh
                }
            };
            let re = re.as_ref().map_err(|e| FileContextsError::BadRegex {
                file: self.files.get(s.file).cloned().unwrap_or_default(),
                line: s.line,
                text: escaped(s.regex.as_bytes()),
                reason: e.clone(),
            })?;
            if re.is_match(key.as_bytes()) {
                return Ok(s.context.as_deref());
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fc(text: &str, subs: &str) -> FileContexts {
        FileContexts::from_texts("fc", text.as_bytes(), subs.as_bytes()).unwrap()
    }

    #[test]
    fn fctx_prefixes() {
        assert_eq!(literal_prefix("/usr/lib(/.*)?"), "/usr/lib");
        assert_eq!(literal_prefix("/etc/foo?"), "/etc/fo");
        assert_eq!(literal_prefix("/a\\.b/c.*"), "/a.b/c");
        assert_eq!(literal_prefix("/a\\d"), "/a");
        assert_eq!(literal_prefix("/a|/b"), "");
        assert_eq!(literal_prefix("/x/y{2}"), "/x/");
        assert!(!has_meta("/a\\.b") && has_meta("/a.b") && has_meta("/a(/.*)?"));
    }

    #[test]
    fn fctx_pcre_literals() {
        assert_eq!(pcre_to_rust("/run/user/%{USERID}/x.*"), "/run/user/%\\{USERID\\}/x.*");
        assert_eq!(pcre_to_rust("/a{2}b{1,}c{1,3}"), "/a{2}b{1,}c{1,3}");
        assert_eq!(pcre_to_rust("/[]a[]x[[:digit:]&~]"), "/[\\]a\\[]x[[:digit:]\\&\\~]");
        let f = fc("/run/user/%{USERID}/x.*\tu:r:u_t:s0\n", "");
        assert_eq!(f.lookup("/run/user/%{USERID}/xy", FileType::File).unwrap(), Some("u:r:u_t:s0"));
    }

    #[test]
    fn fctx_last_match_wins_and_literals_first() {
        let f = fc("/a(/.*)?\tu:r:a_t:s0\n/a/b\tu:r:lit_t:s0\n/a/.*\tu:r:re_t:s0\n/z/q\t-d\tu:r:zd_t:s0\n/tmp/.*\t<<none>>\n", "");
        assert_eq!(f.lookup("/a/b", FileType::File).unwrap(), Some("u:r:lit_t:s0"));
        assert_eq!(f.lookup("/a//b/", FileType::File).unwrap(), Some("u:r:lit_t:s0"));
        assert_eq!(f.lookup("/a/c", FileType::File).unwrap(), Some("u:r:re_t:s0"));
        assert_eq!(f.lookup("/a", FileType::Dir).unwrap(), Some("u:r:a_t:s0"));
        assert_eq!(f.lookup("/z/q", FileType::File).unwrap(), None);
        assert_eq!(f.lookup("/z/q", FileType::Dir).unwrap(), Some("u:r:zd_t:s0"));
        assert_eq!(f.lookup("/tmp/x", FileType::File).unwrap(), None);
        // A vertical tab separates fields as any other C whitespace (found by fuzzing).
        let f = fc("/v\x0b--\x0bu:r:v_t:s0:c0.c\x0b1023\n", "");
        assert_eq!(f.lookup("/v", FileType::File).unwrap(), Some("u:r:v_t:s0:c0.c"));
    }

    #[test]
    fn fctx_aliases() {
        let mut f = FileContexts::new();
        f.add("fc", b"/a(/.*)?\tu:r:a_t:s0\n/b(/.*)?\tu:r:b_t:s0\n/c(/.*)?\tu:r:c_t:s0\n").unwrap();
        f.add_subs("fc.subs_dist", b"# x\n/m /a\n/m /b\n/n/o /c\n/n /b\n", true).unwrap();
        f.add_subs("fc.subs", b"/p /m\n", false).unwrap();
        f.sort();
        for p in ["/m/x", "/n/o/x", "/n/x", "/p/x", "/m"] {
            assert_eq!(f.lookup(p, FileType::File).unwrap(), Some("u:r:b_t:s0"), "{p}");
        }
        assert_eq!(f.lookup("/mm", FileType::File).unwrap(), None);
    }

    #[test]
    fn fctx_bad_lines_are_one_line_errors() {
        let e = FileContexts::from_texts("fc", b"# ok\n/a -x u:r:t:s0\n", b"").unwrap_err().to_string();
        assert_eq!(e, "fc:2: invalid file type -x: /a -x u:r:t:s0");
        let e = FileContexts::from_texts("fc", b"/a\xff\n", b"").unwrap_err().to_string();
        assert_eq!(e, "fc:1: missing fields: /a\\xff");
        let f = fc("/a(\tu:r:t:s0\n/b u:r:b:s0\n", "");
        assert_eq!(f.lookup("/b", FileType::File).unwrap(), Some("u:r:b:s0"));
        let e = f.lookup("/a", FileType::File).unwrap_err().to_string();
        assert!(e.starts_with("fc:1: regex /a( does not compile"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
}
