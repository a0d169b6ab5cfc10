//! The boot menu: which entry boots by default, and making the chosen kernel the default.
//!
//! - GRUB legacy: `default=N` counts `title` entries.
//! - GRUB 2 with BLS (`blscfg`, RHEL 8+): `GRUB_DEFAULT=saved` and `saved_entry=<entry id>` in
//!   `grubenv`, the id being the entry file's name without `.conf`.
//! - GRUB 2 menus (Debian, RHEL 7): `GRUB_DEFAULT` in `/etc/default/grub` is an index, an id or
//!   a title, `>`-separated into submenus, or `saved` (then `saved_entry` in `grubenv`).

use super::draft::Draft;
use super::facts::{BootloaderKind, GuestFacts, KernelFacts};
use super::grub::{env_get, is_kernel_path, set_env};
use super::grubcfg::{grub2_entries, grub_default, select};
use super::kernel::version_cmp;
use super::LinuxError;

const REASON: &str = "boot the kernel chosen for KVM by default";

/// Makes `best` the boot loader's default entry where the configuration allows it.
pub fn plan_default(
    d: &mut Draft<'_>,
    facts: &GuestFacts,
    best: &KernelFacts,
) -> Result<(), LinuxError> {
    let bl = &facts.bootloader;
    let Some(cfg) = bl.config.clone() else {
        if facts.kernels.len() > 1 {
            d.warn(format!(
                "no boot loader configuration found: kernel {} must be chosen at boot",
                best.version
            ));
        }
        return Ok(());
    };
    let Some(text) = d.read(&cfg)? else {
        return Ok(());
    };
    match bl.kind {
        BootloaderKind::GrubLegacy => legacy(d, &cfg, &text, best),
        BootloaderKind::Grub2 if text.contains("blscfg") && bl.bls_dir.is_some() => {
            bls(d, facts, best)
        }
        BootloaderKind::Grub2 => menu(d, facts, &cfg, &text, best),
        BootloaderKind::None => Ok(()),
    }
}

fn legacy(d: &mut Draft<'_>, cfg: &str, text: &str, best: &KernelFacts) -> Result<(), LinuxError> {
    let mut kernels: Vec<Option<String>> = Vec::new();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("title") => kernels.push(None),
            Some("kernel") => {
                if let Some(k) = kernels.last_mut() {
                    *k = w
                        .next()
                        .map(|p| p.rsplit(')').next().unwrap_or(p).to_owned());
                }
            }
            _ => {}
        }
    }
    let default_of = |l: &str| {
        l.trim()
            .strip_prefix("default")
            .map(|r| r.trim_start_matches([' ', '=']).trim().to_owned())
    };
    let current: usize = text
        .lines()
        .find_map(default_of)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let Some(want) = kernels
        .iter()
        .position(|k| k.as_deref().is_some_and(|p| is_kernel_path(p, best)))
    else {
        d.warn(format!(
            "{cfg}: no entry boots {}; the default entry is left as it is",
            best.vmlinuz
        ));
        return Ok(());
    };
    if want == current {
        d.note(format!(
            "{cfg}: kernel {} is already the default entry ({want})",
            best.version
        ));
        return Ok(());
    }
    let has_default = text.lines().any(|l| default_of(l).is_some());
    let new: String = if has_default {
        text.split_inclusive('\n')
            .map(|l| {
                if default_of(l).is_some() {
                    format!("default={want}\n")
                } else {
                    l.to_owned()
                }
            })
            .collect()
    } else {
        format!("default={want}\n{text}")
    };
    d.note(format!(
        "{cfg}: default entry changed from {current} to {want} (kernel {})",
        best.version
    ));
    d.edit(cfg, new, REASON)
}

fn bls(d: &mut Draft<'_>, facts: &GuestFacts, best: &KernelFacts) -> Result<(), LinuxError> {
    let Some(dir) = facts.bootloader.bls_dir.clone() else {
        return Ok(());
    };
    let mut entries: Vec<(String, Option<String>)> = Vec::new();
    for name in d.list_dir(&dir)? {
        let Some(stem) = name.strip_suffix(".conf") else {
            continue;
        };
        let text = d.read(&format!("{dir}/{name}"))?.unwrap_or_default();
        let kernel = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("linux").map(|r| r.trim().to_owned()));
        entries.push((stem.to_owned(), kernel));
    }
    // blscfg shows entries newest first.
    entries.sort_by(|a, b| version_cmp(&b.0, &a.0));
    let Some((want, _)) = entries
        .iter()
        .find(|(_, k)| k.as_deref().is_some_and(|p| is_kernel_path(p, best)))
    else {
        d.warn(format!(
            "{dir}: no entry boots {}; the default entry is left as it is",
            best.vmlinuz
        ));
        return Ok(());
    };
    let default = d
        .read("/etc/default/grub")?
        .map_or_else(|| "0".to_owned(), |t| grub_default(&t));
    let env_path = facts.bootloader.grubenv.clone();
    let saved = match &env_path {
        Some(p) => d.read(p)?.and_then(|t| env_get(&t, "saved_entry")),
        None => None,
    };
    let current = if default == "saved" {
        saved.clone()
    } else {
        default
            .parse::<usize>()
            .ok()
            .and_then(|i| entries.get(i))
            .map(|e| e.0.clone())
    };
    let current = current.or_else(|| entries.first().map(|e| e.0.clone()));
    if current.as_deref() == Some(want.as_str()) {
        d.note(format!(
            "BLS entry {want} (kernel {}) is already the default",
            best.version
        ));
        return Ok(());
    }
    match (default.as_str(), env_path) {
        ("saved", Some(env)) => {
            d.note(format!(
                "{env}: saved_entry changed from {} to {want} (GRUB_DEFAULT=saved)",
                saved.as_deref().unwrap_or("(none)")
            ));
            set_env(d, &env, "saved_entry", want, REASON)
        }
        _ => {
            d.warn(format!(
                "GRUB_DEFAULT={default} does not select kernel {}; choose BLS entry {want} at boot",
                best.version
            ));
            Ok(())
        }
    }
}

fn menu(
    d: &mut Draft<'_>,
    facts: &GuestFacts,
    cfg: &str,
    text: &str,
    best: &KernelFacts,
) -> Result<(), LinuxError> {
    let entries = grub2_entries(text);
    let Some(want) = entries
        .iter()
        .find(|e| e.kernel.as_deref().is_some_and(|p| is_kernel_path(p, best)))
    else {
        d.warn(format!(
            "{cfg}: no menu entry boots {}; the default entry is left as it is",
            best.vmlinuz
        ));
        return Ok(());
    };
    let dg = d.read("/etc/default/grub")?;
    let default = dg.as_deref().map_or_else(|| "0".to_owned(), grub_default);
    let env_path = facts.bootloader.grubenv.clone();
    let saved = match &env_path {
        Some(p) => d.read(p)?.and_then(|t| env_get(&t, "saved_entry")),
        None => None,
    };
    let selector = if default == "saved" {
        saved.clone().unwrap_or_else(|| "0".into())
    } else {
        default.clone()
    };
    let current = select(&entries, &selector);
    if current.is_some_and(|c| c.kernel == want.kernel) {
        d.note(format!(
            "{cfg}: kernel {} is already the default entry",
            best.version
        ));
        return Ok(());
    }
    // Keep the selector style the guest uses: titles if the current one is a title.
    let new_sel = if current.is_some_and(|c| c.title_selector() == selector) {
        want.title_selector()
    } else {
        want.selector()
    };
    if default == "saved" {
        if let Some(env) = env_path {
            d.note(format!(
                "{env}: saved_entry changed from {selector:?} to {new_sel:?} (GRUB_DEFAULT=saved)"
            ));
            return set_env(d, &env, "saved_entry", &new_sel, REASON);
        }
    }
    // A fixed default: change it in /etc/default/grub and in the generated grub.cfg.
    let old_set = format!("set default=\"{default}\"");
    let new_cfg = text.replace(&old_set, &format!("set default=\"{new_sel}\""));
    if new_cfg == *text {
        d.warn(format!(
            "{cfg}: cannot find {old_set}; kernel {} must be chosen at boot",
            best.version
        ));
        return Ok(());
    }
    d.note(format!(
        "GRUB_DEFAULT changed from {default:?} to {new_sel:?} (kernel {})",
        best.version
    ));
    d.edit(cfg, new_cfg, REASON)?;
    if let Some(dg) = dg {
        let mut found = false;
        let mut new: String = dg
            .split_inclusive('\n')
            .map(|l| {
                if l.trim_start().starts_with("GRUB_DEFAULT=") {
                    found = true;
                    format!("GRUB_DEFAULT=\"{new_sel}\"\n")
                } else {
                    l.to_owned()
                }
            })
            .collect();
        if !found {
            new.push_str(&format!("GRUB_DEFAULT=\"{new_sel}\"\n"));
        }
        d.edit("/etc/default/grub", new, REASON)?;
    }
    Ok(())
}
