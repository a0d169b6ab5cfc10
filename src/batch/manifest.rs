//! Batch manifests: TOML or YAML, `defaults` plus one `vm` entry per guest, each key a
//! `ferry convert` long option (`output-storage`, `network`, `root`...) or one of virt-v2v's
//! two-letter spellings (`os`, `of`, `on`, `oa`), plus `name` (required, the output name
//! unless `output-name` is given), `source` (a path or a list) and `validate` (true, or a
//! table of `ferry validate` options: engine, timeout, expect, marker, boot).
//!
//! Every entry is checked before anything runs: each option is parsed by `ferry convert`'s
//! own clap definitions, relative paths are resolved against the manifest's directory, and
//! two entries writing the same output (same storage, same output name) are refused. An
//! error is one line: `FILE:LINE: vm[I] (NAME): KEY = VALUE: why`.

pub use super::parse::{parse_toml, parse_yaml, Field, RawManifest, Val};
use crate::convert::ConvertArgs;
use clap::{ArgAction, Args, Parser};
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Manifests larger than this are refused before they are read.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// Keys `ferry batch` sets itself: a manifest may not.
const RESERVED: &[&str] = &["print-source", "json", "dry-run", "progress", "help", "version"];

/// What `validate = ...` asks for after the conversion.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ValidateOpts {
    /// `ferry validate` arguments after the spec (`--engine qemu --timeout 600`).
    pub args: Vec<String>,
}

/// One checked entry: the `ferry convert` arguments it stands for.
#[derive(Debug)]
pub struct Entry {
    pub name: String,
    pub line: usize,
    /// `ferry convert` arguments (without the program name), paths absolute.
    pub argv: Vec<OsString>,
    pub convert: ConvertArgs,
    /// Output directory (absolute).
    pub storage: PathBuf,
    pub validate: Option<ValidateOpts>,
}

impl Entry {
    /// The Ferry spec `ferry validate` boots.
    pub fn spec_path(&self) -> PathBuf {
        self.storage.join(format!("{}.ferry.json", self.name))
    }
}

#[derive(Debug)]
pub struct Manifest {
    pub path: PathBuf,
    pub entries: Vec<Entry>,
}

#[derive(Parser)]
#[command(name = "convert", no_binary_name = true)]
struct ConvertCli {
    #[command(flatten)]
    args: ConvertArgs,
}

#[derive(Parser)]
#[command(name = "validate", no_binary_name = true)]
struct ValidateCli {
    #[command(flatten)]
    args: crate::runvm::ValidateArgs,
}

/// clap's first error line without its "error: " prefix.
fn clap_line(e: &clap::Error) -> String {
    let s = e.to_string();
    let first = s.lines().next().unwrap_or("").trim();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// Reads and checks a manifest file (`.toml`, `.yaml`/`.yml`; otherwise TOML unless the
/// text starts like YAML).
pub fn load(path: &Path) -> anyhow::Result<Manifest> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("{shown}: cannot read manifest: {e}"))?;
    if meta.len() > MAX_MANIFEST_BYTES {
        anyhow::bail!("{shown}: manifest is {} bytes, over the {MAX_MANIFEST_BYTES}-byte limit", meta.len());
    }
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{shown}: cannot read manifest: {e}"))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("{shown}: manifest is not UTF-8 (byte {})", e.utf8_error().valid_up_to()))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let raw = match ext {
        "yaml" | "yml" => parse_yaml(&text),
        _ => parse_toml(&text),
    }
    .map_err(|e| anyhow::anyhow!("{shown}:{e}"))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() { PathBuf::from(".") } else { base };
    let entries = check(&raw, &base).map_err(|e| anyhow::anyhow!("{shown}:{e}"))?;
    Ok(Manifest { path: path.to_path_buf(), entries })
}

/// How a `ferry convert` option takes its value.
enum Kind {
    Flag,
    One,
    Many,
}

/// The long option a manifest key stands for, and how it takes values.
fn option_kind(key: &str) -> Option<(String, Kind)> {
    let long = match key {
        "os" | "of" | "on" | "oa" | "if" => crate::argv::normalize([OsString::from(format!("-{key}"))])
            .first()
            .and_then(|s| s.to_str())
            .and_then(|s| s.strip_prefix("--"))
            .map(str::to_string)?,
        k => k.to_string(),
    };
    let cmd = ConvertArgs::augment_args(clap::Command::new("convert"));
    let arg = cmd.get_arguments().find(|a| a.get_long() == Some(long.as_str()))?;
    let kind = match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => Kind::Flag,
        ArgAction::Append => Kind::Many,
        _ => Kind::One,
    };
    Some((long, kind))
}

/// An error about one field: `LINE: vm[I] (NAME): KEY = VALUE: why`.
fn field_err(f: &Field, who: &str, why: impl std::fmt::Display) -> String {
    format!("{}: {who}: {} = {}: {why}", f.line, f.key.escape_debug(), f.value)
}

fn scalar(v: &Val) -> Option<String> {
    match v {
        Val::Str(s) => Some(s.clone()),
        Val::Int(i) => Some(i.to_string()),
        Val::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Makes a relative path absolute against the manifest's directory.
fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

const PATH_OPTIONS: &[&str] = &["output-storage", "datastore-dir"];

fn validate_opts(f: &Field, who: &str) -> Result<Option<ValidateOpts>, String> {
    let mut args = Vec::new();
    match &f.value {
        Val::Bool(false) => return Ok(None),
        Val::Bool(true) => {}
        Val::Map(m) => {
            for (k, v) in m {
                let Some(s) = scalar(v) else {
                    return Err(field_err(f, who, format_args!("{}: expected a string or number", k.escape_debug())));
                };
                if !matches!(k.as_str(), "engine" | "timeout" | "expect" | "marker" | "boot") {
                    return Err(field_err(f, who, format_args!("{}: unknown validate option (engine, timeout, expect, marker, boot)", k.escape_debug())));
                }
                args.push(format!("--{k}"));
                args.push(s);
            }
        }
        _ => return Err(field_err(f, who, "expected true, false or a table of validate options")),
    }
    let mut probe = vec!["spec.json".to_string()];
    probe.extend(args.iter().cloned());
    ValidateCli::try_parse_from(&probe).map_err(|e| field_err(f, who, clap_line(&e)))?;
    Ok(Some(ValidateOpts { args }))
}

/// Checks the entries: options parse, names are present, outputs are distinct.
pub fn check(raw: &RawManifest, base: &Path) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    let mut seen: HashMap<(PathBuf, String), (usize, usize)> = HashMap::new();
    if raw.vms.is_empty() {
        return Err("1: the manifest has no `vm` entries".into());
    }
    for (i, e) in raw.vms.iter().enumerate() {
        let mut merged: Vec<&Field> = Vec::new();
        for f in raw.defaults.iter().chain(&e.fields) {
            // An entry's key replaces the default's.
            merged.retain(|m| m.key != f.key);
            merged.push(f);
        }
        // Key order, whatever the format kept: the same entry gives the same arguments.
        merged.sort_by(|a, b| a.key.cmp(&b.key));
        let name = e.fields.iter().find(|f| f.key == "name");
        let who_plain = format!("vm[{i}]");
        let Some(name_f) = name else { return Err(format!("{}: {who_plain}: no `name`", e.line)) };
        let name = match &name_f.value {
            Val::Str(s) if !s.is_empty() && !s.contains(['/', '\0']) && !s.starts_with('.') => s.clone(),
            _ => return Err(field_err(name_f, &who_plain, "a name must be a non-empty file name")),
        };
        let who = format!("vm[{i}] ({})", name.escape_debug());
        let mut argv: Vec<OsString> = Vec::new();
        let mut sources: Vec<OsString> = Vec::new();
        let mut validate = None;
        let mut output_name = None;
        let mut storage = None;
        for f in &merged {
            match f.key.as_str() {
                "name" => {
                    if raw.defaults.iter().any(|d| std::ptr::eq(d, *f)) {
                        return Err(field_err(f, "defaults", "`name` belongs in each vm entry"));
                    }
                    continue;
                }
                "source" => {
                    let list = match &f.value {
                        Val::Str(s) => vec![s.clone()],
                        Val::List(l) => l.iter().map(scalar).collect::<Option<Vec<_>>>().ok_or_else(|| field_err(f, &who, "expected a path or a list of paths"))?,
                        _ => return Err(field_err(f, &who, "expected a path or a list of paths")),
                    };
                    sources = list.iter().map(|s| resolve(base, s).into_os_string()).collect();
                    continue;
                }
                "validate" => {
                    validate = validate_opts(f, &who)?;
                    continue;
                }
                k if RESERVED.contains(&k) => return Err(field_err(f, &who, "set by ferry batch itself")),
                _ => {}
            }
            let Some((long, kind)) = option_kind(&f.key) else {
                return Err(field_err(f, &who, "unknown key (a `ferry convert` long option, name, source or validate)"));
            };
            let values: Vec<String> = match (&kind, &f.value) {
                (Kind::Flag, Val::Bool(b)) => {
                    if *b {
                        argv.push(format!("--{long}").into());
                    }
                    continue;
                }
                (Kind::Flag, _) => return Err(field_err(f, &who, "expected true or false")),
                (Kind::Many, Val::List(l)) => l.iter().map(scalar).collect::<Option<Vec<_>>>().ok_or_else(|| field_err(f, &who, "expected a list of strings"))?,
                (_, v) => vec![scalar(v).ok_or_else(|| field_err(f, &who, "expected a string"))?],
            };
            for v in values {
                let v = if PATH_OPTIONS.contains(&long.as_str()) { resolve(base, &v).to_string_lossy().into_owned() } else { v };
                // Each option alone first, so a bad value is pinned to its key and line.
                let probe: Vec<OsString> = vec!["x".into(), format!("--{long}").into(), v.clone().into()];
                ConvertCli::try_parse_from(&probe).map_err(|e| field_err(f, &who, clap_line(&e)))?;
                if long == "output-name" {
                    output_name = Some(v.clone());
                }
                if long == "output-storage" {
                    storage = Some(PathBuf::from(&v));
                }
                argv.push(format!("--{long}").into());
                argv.push(v.into());
            }
        }
        if sources.is_empty() {
            return Err(format!("{}: {who}: no `source`", e.line));
        }
        let Some(storage) = storage else { return Err(format!("{}: {who}: no `output-storage` (or `os`)", e.line)) };
        let out_name = output_name.unwrap_or_else(|| name.clone());
        if out_name != name {
            return Err(format!("{}: {who}: output-name = {:?}: must equal the entry's name", e.line, out_name));
        }
        argv.push("--output-name".into());
        argv.push(name.clone().into());
        argv.push("--".into());
        argv.extend(sources);
        let convert = ConvertCli::try_parse_from(&argv).map_err(|err| format!("{}: {who}: {}", e.line, clap_line(&err)))?.args;
        if validate.is_some() && !matches!(convert.output, crate::convert::OutputMode::Local | crate::convert::OutputMode::Ferry) {
            return Err(format!("{}: {who}: validate = true needs output-mode local or ferry (it boots NAME.ferry.json)", e.line));
        }
        let key_dir = std::path::absolute(&storage).unwrap_or(storage.clone());
        if let Some((j, line)) = seen.insert((key_dir.clone(), name.clone()), (i, e.line)) {
            return Err(format!(
                "{}: {who}: output {:?} in {} is also written by vm[{j}] (line {line})",
                e.line,
                name,
                key_dir.display()
            ));
        }
        entries.push(Entry { name, line: e.line, argv, convert, storage: key_dir, validate });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
[defaults]
input-mode = "vmx"
os = "out"
network = ["VM Network:default"]

[[vm]]
name = "a"
source = "a.vmx"

[[vm]]
name = "b"
source = "b.vmx"
output-format = "raw"
validate = { engine = "qemu", timeout = 60 }
"#;

    const YAML: &str = "defaults:\n  input-mode: vmx\n  os: out\n  network:\n    - \"VM Network:default\"\nvm:\n  - name: a\n    source: a.vmx\n  - name: b\n    source: b.vmx\n    output-format: raw\n    validate:\n      engine: qemu\n      timeout: 60\n";

    #[test]
    fn toml_and_yaml_give_the_same_entries() {
        let base = Path::new("/m");
        let t = check(&parse_toml(TOML).unwrap(), base).unwrap();
        let y = check(&parse_yaml(YAML).unwrap(), base).unwrap();
        assert_eq!(t.len(), 2);
        for (a, b) in t.iter().zip(&y) {
            assert_eq!(a.argv, b.argv);
            assert_eq!(a.validate, b.validate);
        }
        assert_eq!(t[1].storage, Path::new("/m/out"));
        assert_eq!(t[1].convert.source, [PathBuf::from("/m/b.vmx")]);
        assert_eq!(t[1].convert.network, ["VM Network:default"]);
        assert_eq!(t[1].validate.as_ref().unwrap().args, ["--engine", "qemu", "--timeout", "60"]);
    }

    #[test]
    fn block_driver_is_a_manifest_key() {
        let text = TOML.replace("output-format = \"raw\"", "output-format = \"raw\"\nblock-driver = \"virtio-scsi\"");
        let t = check(&parse_toml(&text).unwrap(), Path::new("/m")).unwrap();
        assert_eq!(t[0].convert.block_driver, crate::convert::BlockDriverChoice::VirtioBlk);
        assert_eq!(t[1].convert.block_driver, crate::convert::BlockDriverChoice::VirtioScsi);
        let e = err_toml(&TOML.replace("output-format = \"raw\"", "block-driver = \"ide\""));
        assert!(e.contains("block-driver") && e.contains("ide"), "{e}");
    }

    fn err_toml(text: &str) -> String {
        match parse_toml(text).and_then(|r| check(&r, Path::new("/m"))) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e,
        }
    }

    fn err_yaml(text: &str) -> String {
        match parse_yaml(text).and_then(|r| check(&r, Path::new("/m"))) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e,
        }
    }

    #[test]
    fn bad_values_name_line_key_and_value() {
        let e = err_toml("[defaults]\nos = \"o\"\n[[vm]]\nname = \"a\"\nsource = \"a.vmx\"\noutput-format = \"qcow3\"\n");
        assert!(e.starts_with("6: vm[0] (a): output-format = \"qcow3\": "), "{e}");
        let e = err_toml("[[vm]]\nname = \"a\"\nsource = \"a.vmx\"\nos = \"o\"\nbogus = 1\n");
        assert!(e.starts_with("5: vm[0] (a): bogus = 1: unknown key"), "{e}");
        let e = err_toml("[[vm]]\nname = \"a\"\nsource = \"a.vmx\"\nos = \"o\"\ndry-run = true\n");
        assert!(e.starts_with("5: vm[0] (a): dry-run = true: set by ferry batch"), "{e}");
        let e = err_yaml("vm:\n  - name: a\n    source: a.vmx\n    os: o\n  - name: b\n    source: b.vmx\n    os: o\n    input-mode: \"vm\\x01x\"\n");
        assert!(e.starts_with("8: vm[1] (b): input-mode = \"vm\\u{1}x\": "), "{e}");
        let e = err_toml("[[vm]]\nname = \"a\"\nsource = \"a.vmx\"\nos = \"o\"\nvalidate = { engine = \"bochs\" }\n");
        assert!(e.starts_with("5: vm[0] (a): validate = {engine: \"bochs\"}: "), "{e}");
        let e = err_toml("[[vm]]\nname = \"a\"\nsource = \"a.vmx\"\n");
        assert!(e.contains("no `output-storage`"), "{e}");
        let e = err_toml("[[vm]]\nname = 3\n");
        assert!(e.starts_with("2: vm[0]: name = 3"), "{e}");
        let e = err_toml("[[vm]]\nname = \"a\"\nsource = \"a.vmx\"\nos = \"o\"\n[x]\n");
        assert!(e.starts_with("5: unknown field"), "{e}");
        let e = err_yaml("vm: [\n");
        assert!(e.starts_with("2: ") || e.starts_with("1: "), "{e}");
    }

    #[test]
    fn the_same_output_twice_is_refused() {
        let e = err_toml("[defaults]\nos = \"o\"\n[[vm]]\nname = \"a\"\nsource = \"a.vmx\"\n[[vm]]\nname = \"a\"\nsource = \"b.vmx\"\nos = \"./o\"\n");
        assert!(e.starts_with("6: vm[1] (a): output \"a\" in /m/"), "{e}");
        assert!(e.contains("also written by vm[0] (line 3)"), "{e}");
        // Same name, different storage: fine.
        parse_toml("[[vm]]\nname = \"a\"\nsource = \"a.vmx\"\nos = \"o\"\n[[vm]]\nname = \"a\"\nsource = \"b.vmx\"\nos = \"p\"\n")
            .and_then(|r| check(&r, Path::new("/m")))
            .unwrap();
    }
}
