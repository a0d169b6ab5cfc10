//! A small read-only element tree over quick-xml's reader, for OVF and libvirt XML.
//! Names are local names (namespace prefixes dropped), so `ovf:href` and `href` match alike.
//! Depth and element count are bounded so hostile input cannot exhaust memory or stack.

use super::ConfigError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::path::Path;

/// Deepest nesting accepted.
const MAX_DEPTH: usize = 64;
/// Most elements accepted in one document.
const MAX_ELEMENTS: usize = 200_000;

/// One XML element.
#[derive(Clone, Debug, Default)]
pub struct Element {
    /// Local name.
    pub name: String,
    /// (local name, prefix, unescaped value), in document order.
    pub attrs: Vec<(String, String, String)>,
    pub children: Vec<Element>,
    /// Concatenated text content directly inside this element.
    pub text: String,
    /// 1-based line of the start tag.
    pub line: usize,
}

impl Element {
    /// First attribute with this local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _, _)| n == name).map(|(_, _, v)| v.as_str())
    }

    /// Attribute with this local name and prefix (`vmw:osType`).
    pub fn attr_ns(&self, prefix: &str, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, p, _)| n == name && p == prefix).map(|(_, _, v)| v.as_str())
    }

    /// First child element with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child element with this local name.
    pub fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Trimmed text of the first child with this name.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    /// Follows a path of child names.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        let mut e = self;
        for n in names {
            e = e.child(n)?;
        }
        Some(e)
    }
}

fn line_of(text: &str, pos: u64) -> usize {
    let end = usize::try_from(pos).unwrap_or(usize::MAX).min(text.len());
    text.as_bytes().get(..end).map(|b| memchr_count(b) + 1).unwrap_or(1)
}

fn memchr_count(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

fn start(e: &BytesStart<'_>, line: usize, path: &Path) -> Result<Element, ConfigError> {
    let name = e.local_name().as_ref().to_string();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| ConfigError::invalid(path, format!("line {line}: <{name}> attribute"), "", err.to_string()))?;
        let local = a.key.local_name().as_ref().to_string();
        let prefix = a.key.prefix().map(|p| p.as_ref().to_string()).unwrap_or_default();
        let value = a
            .normalized_value(quick_xml::XmlVersion::default())
            .map_err(|err| ConfigError::invalid(path, format!("line {line}: <{name}> attribute {local}"), "", err.to_string()))?
            .into_owned();
        attrs.push((local, prefix, value));
    }
    Ok(Element { name, attrs, children: Vec::new(), text: String::new(), line })
}

/// Parses a whole document and returns its root element.
pub fn parse(text: &str, path: &Path) -> Result<Element, ConfigError> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut count = 0usize;
    let mut root: Option<Element> = None;
    loop {
        let pos = reader.buffer_position();
        let ev = reader.read_event().map_err(|e| {
            let line = line_of(text, reader.error_position());
            ConfigError::invalid(path, format!("XML at line {line}"), "", e.to_string())
        })?;
        let line = line_of(text, pos);
        match ev {
            Event::Start(e) | Event::Empty(e) if root.is_some() => {
                let _ = e;
                return Err(ConfigError::invalid(path, format!("XML at line {line}"), "", "content after the root element"));
            }
            Event::Start(e) => {
                count += 1;
                if stack.len() >= MAX_DEPTH || count > MAX_ELEMENTS {
                    return Err(ConfigError::invalid(path, format!("XML at line {line}"), "", "document too deep or too large"));
                }
                stack.push(start(&e, line, path)?);
            }
            Event::Empty(e) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(ConfigError::invalid(path, format!("XML at line {line}"), "", "document too large"));
                }
                let el = start(&e, line, path)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let Some(el) = stack.pop() else {
                    return Err(ConfigError::invalid(path, format!("XML at line {line}"), "", "unbalanced end tag"));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let ch = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    Ok(None) => match &*r {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        _ => None,
                    },
                    Err(_) => None,
                };
                let Some(ch) = ch else {
                    return Err(ConfigError::invalid(path, format!("XML at line {line}"), format!("&{};", &*r), "unknown entity"));
                };
                if let Some(cur) = stack.last_mut() {
                    cur.text.push(ch);
                }
            }
            Event::DocType(_) => {
                return Err(ConfigError::invalid(path, format!("XML at line {line}"), "<!DOCTYPE>", "document type declarations are not accepted"));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(ConfigError::invalid(path, "XML", "", "document ends inside an element"));
    }
    root.ok_or_else(|| ConfigError::invalid(path, "XML", "", "no root element"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names_entities_lines() {
        let doc = "<?xml version='1.0'?>\n<a:Env xmlns:a='x' xmlns:v='y'>\n <b v:k='1 &amp; 2'>t&lt;&#65;</b>\n</a:Env>";
        let root = parse(doc, Path::new("t.xml")).unwrap();
        assert_eq!(root.name, "Env");
        let b = root.child("b").unwrap();
        assert_eq!(b.attr("k"), Some("1 & 2"));
        assert_eq!(b.attr_ns("v", "k"), Some("1 & 2"));
        assert_eq!(b.text, "t<A");
        assert_eq!(b.line, 3);
    }

    #[test]
    fn errors_are_one_line() {
        for bad in ["<a><b></a>", "<a>", "", "<a/><b/>", "<!DOCTYPE x><a/>", "<a>&foo;</a>"] {
            let e = parse(bad, Path::new("t.xml")).unwrap_err().to_string();
            assert!(e.starts_with("t.xml: ") && !e.contains('\n'), "{bad}: {e}");
        }
        let deep = "<a>".repeat(100);
        assert!(parse(&deep, Path::new("t.xml")).is_err());
    }
}
