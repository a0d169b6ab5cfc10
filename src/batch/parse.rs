//! The text layer of batch manifests, with no dependency on the rest of Ferry (the fuzz
//! target `tests/fuzz/fuzz_targets/manifest.rs` compiles it alone): TOML or YAML into
//! [`RawManifest`], each key with its line. TOML positions come from the parser's spans;
//! YAML's from a scan of the block-style text (flow style gets the section's line).
//! Errors are `LINE: message`, control characters escaped.

use std::collections::{BTreeMap, HashMap};

/// One manifest value, from TOML or YAML.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Str(String),
    Bool(bool),
    Int(i64),
    List(Vec<Val>),
    Map(Vec<(String, Val)>),
    /// Anything else (a float, a date, null), kept as its text for the error message.
    Other(String),
}

impl std::fmt::Display for Val {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::Str(s) => write!(f, "{s:?}"),
            Val::Bool(b) => write!(f, "{b}"),
            Val::Int(i) => write!(f, "{i}"),
            Val::List(v) => {
                write!(f, "[")?;
                for (i, x) in v.iter().enumerate() {
                    write!(f, "{}{x}", if i > 0 { ", " } else { "" })?;
                }
                write!(f, "]")
            }
            Val::Map(m) => {
                write!(f, "{{")?;
                for (i, (k, x)) in m.iter().enumerate() {
                    write!(f, "{}{}: {x}", if i > 0 { ", " } else { "" }, k.escape_debug())?;
                }
                write!(f, "}}")
            }
            Val::Other(s) => write!(f, "{}", s.escape_debug()),
        }
    }
}

/// A key, its line (1-based), its value.
#[derive(Clone, Debug)]
pub struct Field {
    pub key: String,
    pub line: usize,
    pub value: Val,
}

/// One `vm` entry before checking.
#[derive(Clone, Debug, Default)]
pub struct RawEntry {
    pub line: usize,
    pub fields: Vec<Field>,
}

/// A manifest before checking: defaults and entries.
#[derive(Clone, Debug, Default)]
pub struct RawManifest {
    pub defaults: Vec<Field>,
    pub vms: Vec<RawEntry>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

fn from_toml(v: &toml::Value) -> Val {
    match v {
        toml::Value::String(s) => Val::Str(s.clone()),
        toml::Value::Integer(i) => Val::Int(*i),
        toml::Value::Boolean(b) => Val::Bool(*b),
        toml::Value::Array(a) => Val::List(a.iter().map(from_toml).collect()),
        toml::Value::Table(t) => Val::Map(t.iter().map(|(k, v)| (k.clone(), from_toml(v))).collect()),
        other => Val::Other(other.to_string()),
    }
}

type SpannedTable = BTreeMap<toml::Spanned<String>, toml::Spanned<toml::Value>>;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlDoc {
    #[serde(default)]
    defaults: Option<SpannedTable>,
    #[serde(default, alias = "vms")]
    vm: Vec<toml::Spanned<SpannedTable>>,
}

/// Parses TOML text; errors are `LINE: message`.
pub fn parse_toml(text: &str) -> Result<RawManifest, String> {
    let doc: TomlDoc = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
        format!("{line}: {}", e.message().escape_debug())
    })?;
    let fields = |t: &SpannedTable| -> Vec<Field> {
        t.iter()
            .map(|(k, v)| Field { key: k.get_ref().clone(), line: line_of(text, k.span().start), value: from_toml(v.get_ref()) })
            .collect()
    };
    Ok(RawManifest {
        defaults: doc.defaults.as_ref().map(fields).unwrap_or_default(),
        vms: doc.vm.iter().map(|e| RawEntry { line: line_of(text, e.span().start), fields: fields(e.get_ref()) }).collect(),
    })
}

fn from_yaml(v: &serde_yaml_ng::Value) -> Val {
    use serde_yaml_ng::Value as Y;
    match v {
        Y::String(s) => Val::Str(s.clone()),
        Y::Bool(b) => Val::Bool(*b),
        Y::Number(n) => n.as_i64().map(Val::Int).unwrap_or_else(|| Val::Other(n.to_string())),
        Y::Sequence(s) => Val::List(s.iter().map(from_yaml).collect()),
        Y::Mapping(m) => Val::Map(m.iter().map(|(k, v)| (yaml_key(k), from_yaml(v))).collect()),
        Y::Null => Val::Other("null".into()),
        Y::Tagged(t) => Val::Other(format!("{}", t.tag)),
    }
}

fn yaml_key(k: &serde_yaml_ng::Value) -> String {
    match k {
        serde_yaml_ng::Value::String(s) => s.clone(),
        other => from_yaml(other).to_string(),
    }
}

/// Line numbers of YAML keys, by scanning the text: `defaults` keys, and each `vm` list
/// item's start and keys. Block style only (flow style gets the section's line).
#[derive(Default)]
struct YamlLines {
    defaults: HashMap<String, usize>,
    defaults_line: usize,
    vms: Vec<(usize, HashMap<String, usize>)>,
    vm_line: usize,
}

fn yaml_lines(text: &str) -> YamlLines {
    let mut out = YamlLines::default();
    #[derive(PartialEq)]
    enum Sec {
        None,
        Defaults,
        Vms,
    }
    let mut sec = Sec::None;
    let mut item_indent: Option<usize> = None;
    let mut key_indent: Option<usize> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let content = raw.trim_start();
        if content.is_empty() || content.starts_with('#') || content.starts_with("---") {
            continue;
        }
        let indent = raw.len() - content.len();
        if indent == 0 && !content.starts_with('-') {
            let key = content.split(':').next().unwrap_or("").trim();
            sec = match key {
                "defaults" => {
                    out.defaults_line = n;
                    Sec::Defaults
                }
                "vm" | "vms" => {
                    out.vm_line = n;
                    Sec::Vms
                }
                _ => Sec::None,
            };
            item_indent = None;
            key_indent = None;
            continue;
        }
        let key_of = |s: &str| s.split_once(':').map(|(k, _)| k.trim().trim_matches(['"', '\'']).to_string());
        match sec {
            Sec::Defaults => {
                if key_indent.is_none() {
                    key_indent = Some(indent);
                }
                if Some(indent) == key_indent {
                    if let Some(k) = key_of(content) {
                        out.defaults.entry(k).or_insert(n);
                    }
                }
            }
            Sec::Vms => {
                if content.starts_with("- ") || content == "-" {
                    if item_indent.is_none() {
                        item_indent = Some(indent);
                    }
                    if Some(indent) == item_indent {
                        out.vms.push((n, HashMap::new()));
                        let rest = content[1..].trim_start();
                        key_indent = Some(indent + (content.len() - rest.len()));
                        if let (Some(k), Some(last)) = (key_of(rest), out.vms.last_mut()) {
                            last.1.entry(k).or_insert(n);
                        }
                        continue;
                    }
                }
                if key_indent.is_none() {
                    key_indent = Some(indent);
                }
                if Some(indent) == key_indent {
                    if let (Some(k), Some(last)) = (key_of(content), out.vms.last_mut()) {
                        last.1.entry(k).or_insert(n);
                    }
                }
            }
            Sec::None => {}
        }
    }
    out
}

/// Parses YAML text; errors are `LINE: message`.
pub fn parse_yaml(text: &str) -> Result<RawManifest, String> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line()).unwrap_or(1);
        format!("{line}: {}", e.to_string().escape_debug())
    })?;
    let lines = yaml_lines(text);
    let serde_yaml_ng::Value::Mapping(top) = &doc else {
        return Err("1: the manifest must be a mapping with `defaults` and `vm`".into());
    };
    let mut raw = RawManifest::default();
    let mapping_fields = |v: &serde_yaml_ng::Value, lines: &HashMap<String, usize>, at: usize, what: &str| {
        let serde_yaml_ng::Value::Mapping(m) = v else {
            return Err(format!("{at}: {what} = {}: expected a mapping", from_yaml(v)));
        };
        Ok(m.iter()
            .map(|(k, v)| {
                let key = yaml_key(k);
                Field { line: lines.get(&key).copied().unwrap_or(at), key, value: from_yaml(v) }
            })
            .collect::<Vec<_>>())
    };
    for (k, v) in top {
        let key = yaml_key(k);
        match key.as_str() {
            "defaults" => raw.defaults = mapping_fields(v, &lines.defaults, lines.defaults_line.max(1), "defaults")?,
            "vm" | "vms" => {
                let serde_yaml_ng::Value::Sequence(items) = v else {
                    return Err(format!("{}: {key} = {}: expected a list of entries", lines.vm_line.max(1), from_yaml(v)));
                };
                for (i, item) in items.iter().enumerate() {
                    let empty = HashMap::new();
                    let (at, keys) = lines.vms.get(i).map(|(l, m)| (*l, m)).unwrap_or((lines.vm_line.max(1), &empty));
                    let fields = mapping_fields(item, keys, at, &format!("vm[{i}]"))?;
                    raw.vms.push(RawEntry { line: at, fields });
                }
            }
            other => return Err(format!("1: {}: unknown top-level key (expected defaults, vm)", other.escape_debug())),
        }
    }
    Ok(raw)
}

