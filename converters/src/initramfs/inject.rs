//! Adding kernel modules (virtio) to a guest's initramfs, from the guest's own modules tree:
//! the module files and their dependencies, the image's `modules.dep`/`modules.alias` and
//! their kmod binary indexes, and the flavour's own list of modules to load at boot.

use std::collections::{BTreeSet, HashSet};

use super::cpio::{normalize, Entry};
use super::image::Initramfs;
use super::InitramfsError;
use crate::kmod::deps::{alias_key, module_name, parse_aliases, ModulesDep};
use crate::kmod::resolve::MAX_INDEX_FILE;
use crate::kmod::{resolve, GuestFiles, Index, KmodError};

/// What a KVM guest needs to find its disks, network, console and RNG on virtio.
pub const VIRTIO_MODULES: [&str; 8] = [
    "virtio_pci",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_blk",
    "virtio_scsi",
    "virtio_net",
    "virtio_console",
    "virtio_rng",
];

/// Which tool built the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Debian/Ubuntu initramfs-tools (`conf/initramfs.conf`, `/conf/modules`).
    InitramfsTools,
    /// dracut (`usr/lib/dracut/`).
    Dracut,
    /// Neither recognised: modules are added, but no load list is written.
    Unknown,
}

/// What [`add_modules`] did.
#[derive(Debug, Clone)]
pub struct InjectReport {
    /// The image's builder.
    pub flavor: Flavor,
    /// The modules directory inside the image.
    pub moddir: String,
    /// Modules added (name order of loading).
    pub added: Vec<String>,
    /// Modules of the closure the image already had.
    pub already_present: Vec<String>,
    /// Requested modules built into the kernel.
    pub builtin: Vec<String>,
    /// Requested modules the kernel does not have.
    pub missing: Vec<String>,
    /// Files of the image written or replaced.
    pub changed_files: Vec<String>,
}

/// Detects the image's builder from its files.
pub fn flavor(image: &Initramfs) -> Flavor {
    let files = image.files();
    if files.contains_key("conf/initramfs.conf") && files.contains_key("scripts/functions") {
        Flavor::InitramfsTools
    } else if files.keys().any(|p| p.starts_with("usr/lib/dracut/") || p.starts_with("lib/dracut/")) {
        Flavor::Dracut
    } else {
        Flavor::Unknown
    }
}

/// Returns a new image holding the closure of `modules` (from the guest's
/// `/lib/modules/KVER`) at the image's modules directory, with `modules.dep(.bin)` and
/// `modules.alias(.bin)` extended, and the requested modules listed for loading at boot
/// (`/conf/modules` for initramfs-tools; `etc/modules-load.d/` and `rd.driver.pre` in
/// `etc/cmdline.d/` for dracut). Only the main (last compressed) segment is rewritten, with its
/// own compressor; the modules are stored as the guest has them (compressed or not).
pub fn add_modules(
    files: &dyn GuestFiles,
    kver: &str,
    image: &Initramfs,
    modules: &[&str],
) -> Result<(Vec<u8>, InjectReport), InitramfsError> {
    let name = image.name().to_string();
    let flavor = flavor(image);
    let closure = resolve(files, kver, modules)?;
    let main = image.main_segment();
    let all = image.files();
    let moddir = [format!("usr/lib/modules/{kver}"), format!("lib/modules/{kver}")]
        .into_iter()
        .find(|d| all.contains_key(&format!("{d}/modules.dep")) || all.contains_key(&format!("{d}/modules.dep.bin")))
        .ok_or_else(|| InitramfsError::invalid(&name, "modules directory", format!("lib/modules/{kver}"), "the image has no modules.dep for this kernel"))?;
    let in_image = |file: &str| all.get(&format!("{moddir}/{file}")).map(|e| image.data(e));

    // The image's own module lists.
    let mut dep = match in_image("modules.dep") {
        Some(text) => ModulesDep::parse(&format!("{name}:{moddir}/modules.dep"), text)?,
        None => ModulesDep::default(),
    };
    let mut dep_bin = match in_image("modules.dep.bin") {
        Some(bin) => Index::parse(&format!("{name}:{moddir}/modules.dep.bin"), bin)?,
        None => Index::default(),
    };
    let mut alias_bin = match in_image("modules.alias.bin") {
        Some(bin) => Index::parse(&format!("{name}:{moddir}/modules.alias.bin"), bin)?,
        None => Index::default(),
    };
    let present: HashSet<String> = dep
        .entries
        .iter()
        .map(|e| module_name(&e.path))
        .chain(dep_bin.entries.keys().cloned())
        .collect();

    let guest_aliases = {
        let path = format!("{}/modules.alias", closure.moddir);
        parse_aliases(&files.read(&path, MAX_INDEX_FILE).map_err(|e| KmodError::io(path, e))?)
    };
    let mut report = InjectReport {
        flavor,
        moddir: moddir.clone(),
        added: Vec::new(),
        already_present: Vec::new(),
        builtin: closure.builtin.clone(),
        missing: closure.missing.clone(),
        changed_files: Vec::new(),
    };
    let mut seg_entries: Vec<Entry> = image.segments.get(main).map(|s| s.entries.clone()).unwrap_or_default();
    let mtime = in_image("modules.dep").and(all.get(&format!("{moddir}/modules.dep")).map(|e| e.mtime)).unwrap_or(0);
    let mut next_ino = seg_entries.iter().map(|e| e.ino).max().unwrap_or(0).saturating_add(1);
    let mut dirs: BTreeSet<String> = all.iter().filter(|(_, e)| e.is_dir() || e.is_symlink()).map(|(p, _)| p.clone()).collect();
    let mut new_entries = Vec::new();
    let mut priority = dep_bin.max_priority().saturating_add(1);
    let mut alias_text = String::new();

    for m in &closure.modules {
        if present.contains(&m.name) {
            report.already_present.push(m.name.clone());
            continue;
        }
        let guest_path = format!("{}/{}", closure.moddir, m.path);
        let data = files
            .read(&guest_path, crate::kmod::modinfo::MAX_MODULE_SIZE)
            .map_err(|e| KmodError::io(&guest_path, e))?;
        let target = normalize(&format!("{moddir}/{}", m.path));
        add_parents(&target, &mut dirs, &mut new_entries, mtime);
        let mut e = Entry::file(&target, 0o644, data);
        e.mtime = mtime;
        new_entries.push(e);
        let line_entry = crate::kmod::deps::DepEntry { path: m.path.clone(), deps: m.deps.clone() };
        dep_bin.insert(&m.name, &line_entry.line(), priority);
        dep.push(line_entry);
        for (pattern, module) in guest_aliases.iter().filter(|(_, module)| module_name(module) == m.name) {
            alias_text.push_str(&format!("alias {pattern} {module}\n"));
            alias_bin.insert(&alias_key(pattern), &m.name, priority);
        }
        priority = priority.saturating_add(1);
        report.added.push(m.name.clone());
    }

    // Replaced index files.
    let mut replaced: Vec<(String, Vec<u8>)> = vec![
        (format!("{moddir}/modules.dep"), dep.to_text().into_bytes()),
        (format!("{moddir}/modules.dep.bin"), dep_bin.write()?),
        (format!("{moddir}/modules.alias.bin"), alias_bin.write()?),
    ];
    if let Some(old) = in_image("modules.alias") {
        let mut text = old.to_vec();
        text.extend_from_slice(alias_text.as_bytes());
        replaced.push((format!("{moddir}/modules.alias"), text));
    }
    // The load list.
    let load: Vec<String> = modules
        .iter()
        .map(|m| module_name(m))
        .filter(|m| closure.modules.iter().any(|r| &r.name == m))
        .collect();
    match flavor {
        Flavor::InitramfsTools => {
            let mut text = all.get("conf/modules").map(|e| image.data(e).to_vec()).unwrap_or_default();
            if !text.is_empty() && !text.ends_with(b"\n") {
                text.push(b'\n');
            }
            for m in &load {
                text.extend_from_slice(format!("{m}\n").as_bytes());
            }
            replaced.push(("conf/modules".to_string(), text));
        }
        Flavor::Dracut => {
            let list: String = load.iter().map(|m| format!("{m}\n")).collect();
            replaced.push(("etc/modules-load.d/ferry-virtio.conf".to_string(), list.into_bytes()));
            replaced.push(("etc/cmdline.d/90-ferry-virtio.conf".to_string(), format!("rd.driver.pre={}\n", load.join(",")).into_bytes()));
        }
        Flavor::Unknown => {}
    }
    for (path, data) in replaced {
        let old = all.get(&path);
        let mode = old.map(|e| e.mode & 0o7777).unwrap_or(0o644);
        seg_entries.retain(|e| e.path() != path);
        add_parents(&path, &mut dirs, &mut new_entries, mtime);
        let mut e = Entry::file(&path, mode, data);
        e.mtime = old.map(|e| e.mtime).unwrap_or(mtime);
        new_entries.push(e);
        report.changed_files.push(path);
    }
    for e in &mut new_entries {
        e.ino = next_ino;
        next_ino = next_ino.saturating_add(1);
    }
    seg_entries.extend(new_entries);
    let out = image.rewrite_segment(main, &seg_entries)?;
    Ok((out, report))
}

/// Adds directory members for the missing ancestors of `path`, parents first.
fn add_parents(path: &str, dirs: &mut BTreeSet<String>, out: &mut Vec<Entry>, mtime: u32) {
    let mut ancestors = Vec::new();
    let mut p = path;
    while let Some((parent, _)) = p.rsplit_once('/') {
        if dirs.contains(parent) {
            break;
        }
        ancestors.push(parent.to_string());
        p = parent;
    }
    for dir in ancestors.into_iter().rev() {
        let mut e = Entry::dir(&dir, 0o755);
        e.mtime = mtime;
        out.push(e);
        dirs.insert(dir);
    }
}

/// What keeps the modules in the initramfs after the guest rebuilds it: for initramfs-tools the
/// new content of `/etc/initramfs-tools/modules` (given its current content), for dracut a
/// file for `/etc/dracut.conf.d/`. Returns (guest path, content).
pub fn persist_config(flavor: Flavor, current: Option<&str>, modules: &[&str]) -> Option<(String, String)> {
    match flavor {
        Flavor::InitramfsTools => {
            let mut text = current.unwrap_or("").to_string();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            let have: HashSet<String> = text.lines().filter_map(|l| l.split_whitespace().next()).map(module_name).collect();
            for m in modules.iter().filter(|m| !have.contains(&module_name(m))) {
                text.push_str(m);
                text.push('\n');
            }
            Some(("/etc/initramfs-tools/modules".to_string(), text))
        }
        Flavor::Dracut => Some((
            "/etc/dracut.conf.d/90-ferry-virtio.conf".to_string(),
            format!("# Added by ferry: virtio drivers for KVM\nadd_drivers+=\" {} \"\n", modules.join(" ")),
        )),
        Flavor::Unknown => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persist_config_appends_once() {
        let (path, text) = persist_config(Flavor::InitramfsTools, Some("# list\nvmw_pvscsi\nvirtio-blk"), &["virtio_blk", "virtio_net"]).unwrap();
        assert_eq!(path, "/etc/initramfs-tools/modules");
        assert_eq!(text, "# list\nvmw_pvscsi\nvirtio-blk\nvirtio_net\n");
        let (path, text) = persist_config(Flavor::Dracut, None, &["virtio_blk"]).unwrap();
        assert!(path.starts_with("/etc/dracut.conf.d/") && text.contains("add_drivers+=\" virtio_blk \""));
        assert!(persist_config(Flavor::Unknown, None, &["x"]).is_none());
    }
}
