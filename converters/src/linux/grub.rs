//! GRUB configuration helpers: the environment block (`grubenv`, fixed 1024 bytes), the kernel
//! command lines in every place they live (SUSE's snapper menus and `/etc/sysconfig/bootloader`
//! included), and choosing the default entry.

use super::draft::Draft;
use super::facts::{BootloaderKind, GuestFacts, KernelFacts};
pub use super::grubmenu::plan_default;
use super::LinuxError;

/// Parses a GRUB environment block into `key=value` pairs (comments and padding dropped).
pub fn env_parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

/// The value of `key` in a GRUB environment block.
pub fn env_get(text: &str, key: &str) -> Option<String> {
    env_parse(text)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// The comment lines of an environment block (its header), padding excluded.
fn env_comments(text: &str) -> String {
    let mut s = String::new();
    for l in text
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n') && l.starts_with('#'))
    {
        s.push_str(l);
    }
    if s.is_empty() {
        s.push_str("# GRUB Environment Block\n");
    }
    s
}

/// Renders an environment block padded with `#` to `size` bytes; `None` if it does not fit.
fn env_render(header: &str, vars: &[(String, String)], size: usize) -> Option<String> {
    let mut s = header.to_owned();
    for (k, v) in vars {
        s.push_str(&format!("{k}={v}\n"));
    }
    if s.len() > size {
        return None;
    }
    let pad = size - s.len();
    s.push_str(&"#".repeat(pad));
    Some(s)
}

/// Edits the values of a GRUB environment block through `f(key, value)`, keeping its size.
pub fn edit_env<F>(d: &mut Draft<'_>, path: &str, reason: &str, f: F) -> Result<(), LinuxError>
where
    F: Fn(&str, &str) -> String,
{
    let Some(text) = d.read(path)? else {
        return Ok(());
    };
    let vars: Vec<(String, String)> = env_parse(&text)
        .into_iter()
        .map(|(k, v)| {
            let nv = f(&k, &v);
            (k, nv)
        })
        .collect();
    if vars == env_parse(&text) {
        return Ok(());
    }
    write_env(d, path, &text, &vars, reason)
}

/// Sets `key=value` in a GRUB environment block (added if missing), keeping its size.
pub fn set_env(
    d: &mut Draft<'_>,
    path: &str,
    key: &str,
    value: &str,
    reason: &str,
) -> Result<(), LinuxError> {
    let text = d.read(path)?.unwrap_or_default();
    let mut vars = env_parse(&text);
    match vars.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) if v == value => return Ok(()),
        Some((_, v)) => *v = value.to_owned(),
        None => vars.push((key.to_owned(), value.to_owned())),
    }
    if text.is_empty() {
        let Some(new) = env_render(&env_comments(""), &vars, 1024) else {
            return Ok(());
        };
        return d.create(path, new, 0o644, reason);
    }
    write_env(d, path, &text, &vars, reason)
}

fn write_env(
    d: &mut Draft<'_>,
    path: &str,
    text: &str,
    vars: &[(String, String)],
    reason: &str,
) -> Result<(), LinuxError> {
    match env_render(&env_comments(text), vars, text.len().max(1024)) {
        Some(new) => d.edit(path, new, reason),
        None => {
            d.warn(format!("{path}: the edited GRUB environment block would not fit in {} bytes; left unchanged", text.len()));
            Ok(())
        }
    }
}

/// Words that start a kernel line in `grub.cfg` (GRUB 2) or `grub.conf` (legacy).
const KERNEL_CMDS: [&str; 4] = ["linux", "linux16", "linuxefi", "kernel"];

/// Applies `f` to the kernel command line part of `line` if it is a boot loader kernel line
/// (`linux PATH ARGS`, BLS `options ARGS`); other lines are returned unchanged.
fn edit_kernel_line(line: &str, f: &dyn Fn(&str) -> String) -> String {
    // Byte offsets of the end of each word and the start of the next, keeping the separators.
    let skip_ws = |from: usize| {
        line[from..]
            .find(|c: char| !c.is_whitespace())
            .map_or(line.len(), |i| from + i)
    };
    let skip_word = |from: usize| {
        line[from..]
            .find(char::is_whitespace)
            .map_or(line.len(), |i| from + i)
    };
    let cmd_start = skip_ws(0);
    let cmd_end = skip_word(cmd_start);
    let cmd = &line[cmd_start..cmd_end];
    let args_start = if cmd == "options" {
        skip_ws(cmd_end)
    } else if KERNEL_CMDS.contains(&cmd) {
        skip_ws(skip_word(skip_ws(cmd_end)))
    } else {
        return line.to_owned();
    };
    format!("{}{}", &line[..args_start], f(&line[args_start..]))
}

/// Applies `f` to the value of `GRUB_CMDLINE_LINUX` / `GRUB_CMDLINE_LINUX_DEFAULT` lines.
fn edit_default_line(line: &str, f: &dyn Fn(&str) -> String) -> String {
    let Some((key, value)) = line.split_once('=') else {
        return line.to_owned();
    };
    if key.trim() != "GRUB_CMDLINE_LINUX" && key.trim() != "GRUB_CMDLINE_LINUX_DEFAULT" {
        return line.to_owned();
    }
    format!("{key}={}", f(value))
}

/// SUSE's boot loader settings (`LOADER_TYPE`; before SLES 15 also the kernel command lines
/// perl-Bootloader writes into new entries: `DEFAULT_APPEND`, `FAILSAFE_APPEND`, `XEN_APPEND`...).
pub const SUSE_BOOTLOADER: &str = "/etc/sysconfig/bootloader";

/// Applies `f` to the value of the `*_APPEND` lines of `/etc/sysconfig/bootloader`.
fn edit_append_line(line: &str, f: &dyn Fn(&str) -> String) -> String {
    match line.split_once('=') {
        Some((key, value)) if !key.trim_start().starts_with('#') && key.trim().ends_with("_APPEND") => {
            format!("{key}={}", f(value))
        }
        _ => line.to_owned(),
    }
}

/// The snapper boot menus of a SUSE btrfs root (grub2-snapper-plugin): the submenu
/// `/.snapshots/grub-snapshot.cfg` that `grub.cfg` sources, and the `grub-snapshot.cfg` of each
/// snapshot it sources in turn. Their entries select a snapshot by subvolume path
/// (`btrfs_subvol`, `rootflags=subvol=`), which no step changes; the snapshots themselves
/// (`/.snapshots/N/snapshot`) are read-only and never edited.
pub fn snapshot_menus(d: &Draft<'_>) -> Result<Vec<String>, LinuxError> {
    let mut out = Vec::new();
    if d.fs().is_file("/.snapshots/grub-snapshot.cfg")? {
        out.push("/.snapshots/grub-snapshot.cfg".to_owned());
    }
    for n in d.list_dir("/.snapshots")? {
        if n.bytes().all(|b| b.is_ascii_digit()) {
            let p = format!("/.snapshots/{n}/grub-snapshot.cfg");
            if d.fs().is_file(&p)? {
                out.push(p);
            }
        }
    }
    Ok(out)
}

fn map_lines(text: &str, f: impl Fn(&str) -> String) -> String {
    text.split_inclusive('\n')
        .map(|l| {
            let (body, nl) = l.strip_suffix('\n').map_or((l, ""), |b| (b, "\n"));
            format!("{}{nl}", f(body))
        })
        .collect()
}

/// Applies `f` to every kernel command line the guest has: the boot menu (`grub.cfg`,
/// `grub.conf`), BLS entries, `/etc/default/grub` (and `/etc/sysconfig/grub`) and the
/// `kernelopts` of `grubenv`.
pub fn edit_cmdlines(
    d: &mut Draft<'_>,
    facts: &GuestFacts,
    reason: &str,
    f: &dyn Fn(&str) -> String,
) -> Result<(), LinuxError> {
    let bl = &facts.bootloader;
    let mut menus: Vec<String> = bl.config.iter().cloned().collect();
    if let Some(dir) = &bl.bls_dir {
        for name in d.list_dir(dir)? {
            if name.ends_with(".conf") {
                menus.push(format!("{dir}/{name}"));
            }
        }
    }
    for path in menus {
        if let Some(text) = d.read(&path)? {
            d.edit(&path, map_lines(&text, |l| edit_kernel_line(l, f)), reason)?;
        }
    }
    if bl.kind == BootloaderKind::Grub2 {
        for path in snapshot_menus(d)? {
            if let Some(text) = d.read(&path)? {
                d.edit(&path, map_lines(&text, |l| edit_kernel_line(l, f)), reason)?;
            }
        }
    }
    if let Some(text) = d.read(SUSE_BOOTLOADER)? {
        d.edit(SUSE_BOOTLOADER, map_lines(&text, |l| edit_append_line(l, f)), reason)?;
    }
    if bl.kind == BootloaderKind::Grub2 {
        for path in ["/etc/default/grub", "/etc/sysconfig/grub"] {
            if let Some(text) = d.read(path)? {
                d.edit(path, map_lines(&text, |l| edit_default_line(l, f)), reason)?;
            }
        }
    }
    if let Some(env) = &bl.grubenv {
        edit_env(d, env, reason, |k, v| {
            if k == "kernelopts" {
                f(v)
            } else {
                v.to_owned()
            }
        })?;
    }
    Ok(())
}

/// Whether a boot entry's kernel path is `kernel`'s image.
pub fn is_kernel_path(path: &str, kernel: &KernelFacts) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let want = kernel.vmlinuz.rsplit('/').next().unwrap_or(&kernel.vmlinuz);
    name == want
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_roundtrip() {
        let vars = vec![("saved_entry".to_owned(), "x".to_owned())];
        let s = env_render(&env_comments(""), &vars, 1024).unwrap();
        assert_eq!(s.len(), 1024);
        assert_eq!(env_get(&s, "saved_entry").as_deref(), Some("x"));
    }

    #[test]
    fn kernel_lines() {
        let up = |s: &str| s.replace("hvc0", "ttyS0");
        assert_eq!(
            edit_kernel_line("\tlinux\t/boot/vmlinuz-6 root=/dev/xvda1 console=hvc0", &up),
            "\tlinux\t/boot/vmlinuz-6 root=/dev/xvda1 console=ttyS0"
        );
        assert_eq!(
            edit_kernel_line("options root=x console=hvc0", &up),
            "options root=x console=ttyS0"
        );
        assert_eq!(edit_kernel_line("echo hvc0", &up), "echo hvc0");
        assert_eq!(
            edit_default_line("GRUB_CMDLINE_LINUX=\"console=hvc0\"", &up),
            "GRUB_CMDLINE_LINUX=\"console=ttyS0\""
        );
    }
}
