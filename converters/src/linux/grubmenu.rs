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
use super::kernel::version_cmp;
use super::LinuxError;

const REASON: &str = "boot the kernel chosen for KVM by default";

/// One bootable entry of a menu: its position in each (sub)menu level.
#[derive(Debug, Clone)]
struct Entry {
    /// (index in its menu, id, title) for each level, outermost first.
    path: Vec<(usize, Option<String>, String)>,
    kernel: Option<String>,
}

impl Entry {
    /// The entry by ids (titles where there is no id), `>`-joined.
    fn selector(&self) -> String {
        let parts: Vec<String> = self.path.iter().map(|(_, id, title)| id.clone().unwrap_or_else(|| title.clone())).collect();
        parts.join(">")
    }
    /// The entry by titles, `>`-joined (what `grub2-set-default` writes on RHEL 7).
    fn title_selector(&self) -> String {
        let parts: Vec<&str> = self.path.iter().map(|(_, _, title)| title.as_str()).collect();
        parts.join(">")
    }
}

/// The first quoted (or bare) word after `menuentry`/`submenu`, and the `$menuentry_id_option` id.
fn title_and_id(line: &str) -> (String, Option<String>) {
    let quoted = |s: &str| -> Option<(String, usize)> {
        let s_trim = s.trim_start();
        let off = s.len() - s_trim.len();
        let q = s_trim.chars().next()?;
        if q == '\'' || q == '"' {
            let end = s_trim[1..].find(q)?;
            Some((s_trim[1..1 + end].to_owned(), off + end + 2))
        } else {
            let end = s_trim.find(char::is_whitespace).unwrap_or(s_trim.len());
            Some((s_trim[..end].to_owned(), off + end))
        }
    };
    let after_kw = line.trim_start().split_once(char::is_whitespace).map_or("", |(_, r)| r);
    let title = quoted(after_kw).map(|(t, _)| t).unwrap_or_default();
    let id = line.split_once("$menuentry_id_option").and_then(|(_, r)| quoted(r)).map(|(t, _)| t);
    (title, id)
}

/// The bootable entries of a GRUB 2 `grub.cfg`, in menu order.
fn grub2_entries(text: &str) -> Vec<Entry> {
    enum Frame {
        Menu(Entry),
        Sub,
        Other,
    }
    let mut frames: Vec<Frame> = Vec::new();
    let mut counters: Vec<usize> = vec![0];
    let mut path: Vec<(usize, Option<String>, String)> = Vec::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        let kw = t.split_whitespace().next().unwrap_or("");
        if (kw == "menuentry" || kw == "submenu") && t.ends_with('{') {
            let (title, id) = title_and_id(t);
            let level = counters.len() - 1;
            let idx = counters.get(level).copied().unwrap_or(0);
            if let Some(c) = counters.last_mut() {
                *c += 1;
            }
            let mut p = path.clone();
            p.push((idx, id, title));
            if kw == "submenu" {
                path = p;
                counters.push(0);
                frames.push(Frame::Sub);
            } else {
                frames.push(Frame::Menu(Entry { path: p, kernel: None }));
            }
        } else if t.ends_with('{') {
            frames.push(Frame::Other);
        } else if t == "}" {
            match frames.pop() {
                Some(Frame::Menu(e)) => out.push(e),
                Some(Frame::Sub) => {
                    path.pop();
                    counters.pop();
                }
                _ => {}
            }
        } else if ["linux", "linux16", "linuxefi", "kernel"].contains(&kw) {
            if let Some(Frame::Menu(e)) = frames.last_mut() {
                e.kernel = t.split_whitespace().nth(1).map(str::to_owned);
            }
        }
    }
    out
}

/// The entry a `GRUB_DEFAULT`-style selector picks (first entry if it matches nothing).
fn select<'e>(entries: &'e [Entry], selector: &str) -> Option<&'e Entry> {
    let parts: Vec<&str> = selector.split('>').collect();
    let matches = |e: &Entry| {
        parts.iter().enumerate().all(|(k, p)| {
            e.path.get(k).is_some_and(|(idx, id, title)| p.parse::<usize>().ok() == Some(*idx) || id.as_deref() == Some(*p) || title == p)
        })
    };
    entries.iter().find(|e| matches(e)).or(entries.first())
}

fn unquote(v: &str) -> String {
    v.trim().trim_matches('"').trim_matches('\'').to_owned()
}

/// `GRUB_DEFAULT` from `/etc/default/grub` (unset means `0`).
fn grub_default(text: &str) -> String {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("GRUB_DEFAULT="))
        .next_back()
        .map_or_else(|| "0".to_owned(), unquote)
}

/// Makes `best` the boot loader's default entry where the configuration allows it.
pub fn plan_default(d: &mut Draft<'_>, facts: &GuestFacts, best: &KernelFacts) -> Result<(), LinuxError> {
    let bl = &facts.bootloader;
    let Some(cfg) = bl.config.clone() else {
        if facts.kernels.len() > 1 {
            d.warn(format!("no boot loader configuration found: kernel {} must be chosen at boot", best.version));
        }
        return Ok(());
    };
    let Some(text) = d.read(&cfg)? else { return Ok(()) };
    match bl.kind {
        BootloaderKind::GrubLegacy => legacy(d, &cfg, &text, best),
        BootloaderKind::Grub2 if text.contains("blscfg") && bl.bls_dir.is_some() => bls(d, facts, best),
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
                    *k = w.next().map(|p| p.rsplit(')').next().unwrap_or(p).to_owned());
                }
            }
            _ => {}
        }
    }
    let default_of = |l: &str| l.trim().strip_prefix("default").map(|r| r.trim_start_matches([' ', '=']).trim().to_owned());
    let current: usize = text.lines().find_map(default_of).and_then(|v| v.parse().ok()).unwrap_or(0);
    let Some(want) = kernels.iter().position(|k| k.as_deref().is_some_and(|p| is_kernel_path(p, best))) else {
        d.warn(format!("{cfg}: no entry boots {}; the default entry is left as it is", best.vmlinuz));
        return Ok(());
    };
    if want == current {
        d.note(format!("{cfg}: kernel {} is already the default entry ({want})", best.version));
        return Ok(());
    }
    let has_default = text.lines().any(|l| default_of(l).is_some());
    let new: String = if has_default {
        text.split_inclusive('\n')
            .map(|l| if default_of(l).is_some() { format!("default={want}\n") } else { l.to_owned() })
            .collect()
    } else {
        format!("default={want}\n{text}")
    };
    d.note(format!("{cfg}: default entry changed from {current} to {want} (kernel {})", best.version));
    d.edit(cfg, new, REASON)
}

fn bls(d: &mut Draft<'_>, facts: &GuestFacts, best: &KernelFacts) -> Result<(), LinuxError> {
    let Some(dir) = facts.bootloader.bls_dir.clone() else { return Ok(()) };
    let mut entries: Vec<(String, Option<String>)> = Vec::new();
    for name in d.list_dir(&dir)? {
        let Some(stem) = name.strip_suffix(".conf") else { continue };
        let text = d.read(&format!("{dir}/{name}"))?.unwrap_or_default();
        let kernel = text.lines().find_map(|l| l.trim().strip_prefix("linux").map(|r| r.trim().to_owned()));
        entries.push((stem.to_owned(), kernel));
    }
    // blscfg shows entries newest first.
    entries.sort_by(|a, b| version_cmp(&b.0, &a.0));
    let Some((want, _)) = entries.iter().find(|(_, k)| k.as_deref().is_some_and(|p| is_kernel_path(p, best))) else {
        d.warn(format!("{dir}: no entry boots {}; the default entry is left as it is", best.vmlinuz));
        return Ok(());
    };
    let default = d.read("/etc/default/grub")?.map_or_else(|| "0".to_owned(), |t| grub_default(&t));
    let env_path = facts.bootloader.grubenv.clone();
    let saved = match &env_path {
        Some(p) => d.read(p)?.and_then(|t| env_get(&t, "saved_entry")),
        None => None,
    };
    let current = if default == "saved" { saved.clone() } else { default.parse::<usize>().ok().and_then(|i| entries.get(i)).map(|e| e.0.clone()) };
    let current = current.or_else(|| entries.first().map(|e| e.0.clone()));
    if current.as_deref() == Some(want.as_str()) {
        d.note(format!("BLS entry {want} (kernel {}) is already the default", best.version));
        return Ok(());
    }
    match (default.as_str(), env_path) {
        ("saved", Some(env)) => {
            d.note(format!("{env}: saved_entry changed from {} to {want} (GRUB_DEFAULT=saved)", saved.as_deref().unwrap_or("(none)")));
            set_env(d, &env, "saved_entry", want, REASON)
        }
        _ => {
            d.warn(format!("GRUB_DEFAULT={default} does not select kernel {}; choose BLS entry {want} at boot", best.version));
            Ok(())
        }
    }
}

fn menu(d: &mut Draft<'_>, facts: &GuestFacts, cfg: &str, text: &str, best: &KernelFacts) -> Result<(), LinuxError> {
    let entries = grub2_entries(text);
    let Some(want) = entries.iter().find(|e| e.kernel.as_deref().is_some_and(|p| is_kernel_path(p, best))) else {
        d.warn(format!("{cfg}: no menu entry boots {}; the default entry is left as it is", best.vmlinuz));
        return Ok(());
    };
    let dg = d.read("/etc/default/grub")?;
    let default = dg.as_deref().map_or_else(|| "0".to_owned(), grub_default);
    let env_path = facts.bootloader.grubenv.clone();
    let saved = match &env_path {
        Some(p) => d.read(p)?.and_then(|t| env_get(&t, "saved_entry")),
        None => None,
    };
    let selector = if default == "saved" { saved.clone().unwrap_or_else(|| "0".into()) } else { default.clone() };
    let current = select(&entries, &selector);
    if current.is_some_and(|c| c.kernel == want.kernel) {
        d.note(format!("{cfg}: kernel {} is already the default entry", best.version));
        return Ok(());
    }
    // Keep the selector style the guest uses: titles if the current one is a title.
    let new_sel = if current.is_some_and(|c| c.title_selector() == selector) { want.title_selector() } else { want.selector() };
    if default == "saved" {
        if let Some(env) = env_path {
            d.note(format!("{env}: saved_entry changed from {selector:?} to {new_sel:?} (GRUB_DEFAULT=saved)"));
            return set_env(d, &env, "saved_entry", &new_sel, REASON);
        }
    }
    // A fixed default: change it in /etc/default/grub and in the generated grub.cfg.
    let old_set = format!("set default=\"{default}\"");
    let new_cfg = text.replace(&old_set, &format!("set default=\"{new_sel}\""));
    if new_cfg == *text {
        d.warn(format!("{cfg}: cannot find {old_set}; kernel {} must be chosen at boot", best.version));
        return Ok(());
    }
    d.note(format!("GRUB_DEFAULT changed from {default:?} to {new_sel:?} (kernel {})", best.version));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menu_entries_and_selectors() {
        let cfg = "set default=\"0\"\nfunction f {\n}\nmenuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple-U' {\n\tlinux /boot/vmlinuz-6.1.0-2 root=/dev/sda1\n}\nsubmenu 'Advanced' $menuentry_id_option 'gnulinux-advanced-U' {\n\tmenuentry 'Debian, 6.1.0-2' $menuentry_id_option 'gnulinux-6.1.0-2-advanced-U' {\n\t\tlinux /boot/vmlinuz-6.1.0-2 ro\n\t}\n\tmenuentry 'Debian, 6.1.0-1' $menuentry_id_option 'gnulinux-6.1.0-1-advanced-U' {\n\t\tlinux /boot/vmlinuz-6.1.0-1 ro\n\t}\n}\n";
        let e = grub2_entries(cfg);
        assert_eq!(e.len(), 3);
        assert_eq!(e[2].selector(), "gnulinux-advanced-U>gnulinux-6.1.0-1-advanced-U");
        assert_eq!(select(&e, "1>1").and_then(|x| x.kernel.clone()).as_deref(), Some("/boot/vmlinuz-6.1.0-1"));
        assert_eq!(select(&e, "Advanced>Debian, 6.1.0-2").and_then(|x| x.kernel.clone()).as_deref(), Some("/boot/vmlinuz-6.1.0-2"));
        assert_eq!(grub_default("GRUB_DEFAULT=saved\n"), "saved");
    }
}
