//! The text files `depmod` writes in `/lib/modules/VER/`: `modules.dep`, `modules.alias`,
//! `modules.builtin` and `modules.softdep`.

use std::collections::HashMap;

use super::KmodError;

/// Module file suffixes, compressed ones included.
pub const MODULE_SUFFIXES: [&str; 4] = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"];

/// A module's canonical name from its path or name: the file name without its `.ko*` suffix,
/// `-` written `_` (as the kernel and kmod compare them).
pub fn module_name(path_or_name: &str) -> String {
    let base = path_or_name.rsplit('/').next().unwrap_or(path_or_name);
    let stem = MODULE_SUFFIXES
        .iter()
        .rev()
        .find_map(|s| base.strip_suffix(s))
        .unwrap_or(base);
    stem.replace('-', "_")
}

/// One line of `modules.dep`: a module's path (relative to the modules directory) and the
/// paths of every module it needs, in load order as depmod wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepEntry {
    /// Relative path, e.g. `kernel/drivers/block/virtio_blk.ko`.
    pub path: String,
    /// Relative paths of its dependencies (depmod lists the whole closure).
    pub deps: Vec<String>,
}

impl DepEntry {
    /// The line as depmod writes it (`path: dep dep`, or `path:`).
    pub fn line(&self) -> String {
        let mut line = format!("{}:", self.path);
        for d in &self.deps {
            line.push(' ');
            line.push_str(d);
        }
        line
    }
}

/// A parsed `modules.dep`.
#[derive(Debug, Clone, Default)]
pub struct ModulesDep {
    /// Entries in file order.
    pub entries: Vec<DepEntry>,
    by_name: HashMap<String, usize>,
}

impl ModulesDep {
    /// Parses `modules.dep` text; `name` is used in error messages.
    pub fn parse(name: &str, text: &[u8]) -> Result<ModulesDep, KmodError> {
        let text = std::str::from_utf8(text)
            .map_err(|e| KmodError::invalid(name, "encoding", e.valid_up_to(), "not UTF-8 at this byte"))?;
        let mut dep = ModulesDep::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (path, rest) = line.split_once(':').ok_or_else(|| {
                KmodError::invalid(name, "line", n + 1, format!("no ':' in {line:?}"))
            })?;
            dep.push(DepEntry {
                path: path.trim().to_string(),
                deps: rest.split_whitespace().map(str::to_string).collect(),
            });
        }
        Ok(dep)
    }

    /// Adds an entry (replacing one of the same module name).
    pub fn push(&mut self, entry: DepEntry) {
        let name = module_name(&entry.path);
        match self.by_name.get(&name) {
            Some(&i) => {
                if let Some(slot) = self.entries.get_mut(i) {
                    *slot = entry;
                }
            }
            None => {
                self.by_name.insert(name, self.entries.len());
                self.entries.push(entry);
            }
        }
    }

    /// The entry of a module, by name (`virtio-blk` and `virtio_blk` are the same).
    pub fn get(&self, name: &str) -> Option<&DepEntry> {
        self.by_name
            .get(&module_name(name))
            .and_then(|&i| self.entries.get(i))
    }

    /// The file as depmod writes it.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for e in &self.entries {
            s.push_str(&e.line());
            s.push('\n');
        }
        s
    }
}

/// `modules.builtin`: names of the modules built into the kernel.
pub fn parse_builtin(text: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(text)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(module_name)
        .collect()
}

/// `modules.alias` lines (`alias PATTERN MODULE`) as (pattern, module).
pub fn parse_aliases(text: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(text)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            match (it.next(), it.next(), it.next()) {
                (Some("alias"), Some(pattern), Some(module)) => {
                    Some((pattern.to_string(), module.to_string()))
                }
                _ => None,
            }
        })
        .collect()
}

/// `modules.softdep` lines (`softdep MODULE pre: a b post: c`) as (module, pre modules).
pub fn parse_softdeps(text: &[u8]) -> Vec<(String, Vec<String>)> {
    String::from_utf8_lossy(text)
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("softdep")?;
            let mut words = rest.split_whitespace();
            let module = module_name(words.next()?);
            Some((module, softdep_pre(&words.collect::<Vec<_>>().join(" "))))
        })
        .collect()
}

/// The `pre:` modules of a softdep specification (`pre: a b post: c`).
pub fn softdep_pre(spec: &str) -> Vec<String> {
    let mut pre = Vec::new();
    let mut in_pre = false;
    for w in spec.split_whitespace() {
        match w {
            "pre:" => in_pre = true,
            "post:" => in_pre = false,
            m if in_pre => pre.push(module_name(m)),
            _ => {}
        }
    }
    pre
}

/// kmod's `underscores()`: `-` becomes `_` outside `[...]` (how depmod stores alias keys).
pub fn alias_key(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut in_brackets = false;
    for c in pattern.chars() {
        match c {
            '[' => in_brackets = true,
            ']' => in_brackets = false,
            '-' if !in_brackets => {
                out.push('_');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_lines() {
        assert_eq!(module_name("kernel/drivers/block/xen-blkfront.ko.xz"), "xen_blkfront");
        assert_eq!(module_name("virtio_blk"), "virtio_blk");
        let d = ModulesDep::parse("t", b"kernel/a/virtio.ko:\nkernel/b/virtio_blk.ko: kernel/a/virtio_ring.ko kernel/a/virtio.ko\n").unwrap();
        assert_eq!(d.get("virtio-blk").unwrap().deps.len(), 2);
        assert_eq!(d.to_text(), "kernel/a/virtio.ko:\nkernel/b/virtio_blk.ko: kernel/a/virtio_ring.ko kernel/a/virtio.ko\n");
        assert!(ModulesDep::parse("t", b"no colon here").is_err());
        assert_eq!(softdep_pre("pre: crc32c post: x"), vec!["crc32c"]);
        assert_eq!(alias_key("pci:v-[a-b]*"), "pci:v_[a-b]*");
    }
}
