//! The dependency closure of a list of modules, against a guest's own modules tree.

use std::collections::{BTreeSet, HashSet};

use super::deps::{module_name, parse_builtin, parse_softdeps, ModulesDep};
use super::modinfo::{ModInfo, MAX_MODULE_SIZE};
use super::{GuestFiles, KmodError};

/// Largest `modules.*` text file read.
pub const MAX_INDEX_FILE: u64 = 64 << 20;

/// A module of the closure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModule {
    /// Canonical name (`virtio_blk`).
    pub name: String,
    /// Path relative to the modules directory, as in `modules.dep`.
    pub path: String,
    /// Its `modules.dep` line's dependencies (relative paths).
    pub deps: Vec<String>,
}

/// The closure of the requested modules for one kernel.
#[derive(Debug, Clone, Default)]
pub struct Closure {
    /// Kernel version.
    pub kver: String,
    /// The guest's modules directory, `/lib/modules/KVER`.
    pub moddir: String,
    /// The modules to load, every one after the modules it needs.
    pub modules: Vec<ResolvedModule>,
    /// Requested modules that are built into this kernel.
    pub builtin: Vec<String>,
    /// Requested modules this kernel does not have (neither file nor built in).
    pub missing: Vec<String>,
}

/// Resolves `wanted` (and their hard dependencies and `pre:` soft dependencies) against the
/// guest's `/lib/modules/KVER/modules.dep`, `modules.builtin`, `modules.softdep` and each
/// module's `.modinfo`.
pub fn resolve(files: &dyn GuestFiles, kver: &str, wanted: &[&str]) -> Result<Closure, KmodError> {
    if kver.is_empty() || kver.contains('/') || kver.starts_with('.') {
        return Err(KmodError::invalid("/lib/modules", "kernel version", kver, "not a directory name"));
    }
    let moddir = format!("/lib/modules/{kver}");
    let read = |name: &str| {
        let path = format!("{moddir}/{name}");
        files.read(&path, MAX_INDEX_FILE).map_err(|e| KmodError::io(path, e))
    };
    let dep_path = format!("{moddir}/modules.dep");
    let dep = ModulesDep::parse(&dep_path, &read("modules.dep")?)?;
    let builtin: HashSet<String> = match read("modules.builtin") {
        Ok(text) => parse_builtin(&text).into_iter().collect(),
        Err(_) => HashSet::new(),
    };
    let softdeps = read("modules.softdep").map(|t| parse_softdeps(&t)).unwrap_or_default();

    let mut closure = Closure {
        kver: kver.to_string(),
        moddir: moddir.clone(),
        ..Closure::default()
    };
    let mut seen = BTreeSet::new();
    let mut stack: Vec<(String, bool)> = wanted.iter().map(|w| (module_name(w), true)).rev().collect();
    // Depth-first, post-order: a module is emitted after everything it needs.
    let mut expanded = HashSet::new();
    while let Some((name, requested)) = stack.pop() {
        if seen.contains(&name) {
            continue;
        }
        let Some(entry) = dep.get(&name) else {
            if builtin.contains(&name) {
                if requested {
                    closure.builtin.push(name.clone());
                }
            } else if requested {
                closure.missing.push(name.clone());
            }
            seen.insert(name);
            continue;
        };
        if expanded.insert(name.clone()) {
            let path = format!("{moddir}/{}", entry.path);
            let info = files
                .read(&path, MAX_MODULE_SIZE)
                .map_err(|e| KmodError::io(&path, e))
                .and_then(|data| ModInfo::parse(&path, &data))?;
            let mut needs: Vec<String> = entry.deps.iter().map(|d| module_name(d)).collect();
            needs.extend(info.depends());
            needs.extend(info.softdep_pre());
            needs.extend(softdeps.iter().filter(|(m, _)| *m == name).flat_map(|(_, pre)| pre.clone()));
            stack.push((name, requested));
            for n in needs.into_iter().rev() {
                if !seen.contains(&n) {
                    stack.push((n, false));
                }
            }
            continue;
        }
        closure.modules.push(ResolvedModule {
            name: name.clone(),
            path: entry.path.clone(),
            deps: entry.deps.clone(),
        });
        seen.insert(name);
    }
    Ok(closure)
}
