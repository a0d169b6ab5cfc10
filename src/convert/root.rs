//! `--root ask|single|first|/dev/sdX`: which Linux root to convert when inspection finds
//! several (virt-v2v's option, same meanings).

use anyhow::bail;
use ferry_inspectors::os::OsInfo;
use std::io::{BufRead, IsTerminal, Write};

/// How the root to convert is chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootChoice {
    /// Prompt on the terminal when there are several; without a terminal, as `Single`.
    Ask,
    /// Exactly one root, or an error listing them.
    Single,
    /// The first root found.
    First,
    /// The root on this device (inspection's name: `/dev/sdb1`, `/dev/vg0/root`).
    Device(String),
}

impl std::str::FromStr for RootChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "ask" => RootChoice::Ask,
            "single" => RootChoice::Single,
            "first" => RootChoice::First,
            d if d.starts_with("/dev/") => RootChoice::Device(d.to_string()),
            other => return Err(format!("invalid --root {other:?}: expected ask, single, first or a device like /dev/sda1")),
        })
    }
}

fn describe(os: &OsInfo) -> String {
    let name = [os.distro.as_str(), &format!("{}.{}", os.major_version, os.minor_version)]
        .join(" ")
        .trim()
        .to_string();
    format!("{} ({name})", os.root)
}

/// Picks the root to convert among `roots` (inspection's Linux roots, in order; not empty).
pub fn choose<'a>(roots: &[&'a OsInfo], choice: &RootChoice) -> anyhow::Result<&'a OsInfo> {
    let Some(first) = roots.first().copied() else { bail!("no Linux root to choose from") };
    let list = || roots.iter().map(|o| describe(o)).collect::<Vec<_>>().join(", ");
    match choice {
        RootChoice::First => Ok(first),
        RootChoice::Device(d) => match roots.iter().find(|o| o.root == *d || mapper_name(&o.root) == *d) {
            Some(o) => Ok(o),
            None => bail!("--root {d}: no Linux root on that device; roots found: {}", list()),
        },
        _ if roots.len() == 1 => Ok(first),
        RootChoice::Ask if std::io::stdin().is_terminal() => ask(roots),
        RootChoice::Ask | RootChoice::Single => bail!(
            "{} Linux roots found: {}; choose one with --root DEVICE (e.g. --root {}) or --root first",
            roots.len(),
            list(),
            first.root
        ),
    }
}

/// `/dev/VG/LV` as `/dev/mapper/VG-LV` (dashes in the names doubled), for `--root`.
fn mapper_name(dev: &str) -> String {
    match dev.strip_prefix("/dev/").and_then(|r| r.split_once('/')) {
        Some((vg, lv)) if !vg.is_empty() && !lv.contains('/') => {
            format!("/dev/mapper/{}-{}", vg.replace('-', "--"), lv.replace('-', "--"))
        }
        _ => String::new(),
    }
}

fn ask<'a>(roots: &[&'a OsInfo]) -> anyhow::Result<&'a OsInfo> {
    let mut err = std::io::stderr();
    writeln!(err, "ferry: this guest has several operating systems:")?;
    for (i, o) in roots.iter().enumerate() {
        writeln!(err, "  [{}] {}", i + 1, describe(o))?;
    }
    loop {
        write!(err, "Which one to convert? [1-{}] ", roots.len())?;
        err.flush()?;
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line)? == 0 {
            bail!("--root ask: no answer on standard input");
        }
        if let Some(o) = line.trim().parse::<usize>().ok().and_then(|n| n.checked_sub(1)).and_then(|i| roots.get(i)) {
            return Ok(o);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(root: &str, distro: &str) -> OsInfo {
        OsInfo { root: root.into(), distro: distro.into(), major_version: 12, ..Default::default() }
    }

    #[test]
    fn single_lists_the_roots_and_device_picks_one() {
        let (a, b) = (os("/dev/sda1", "debian"), os("/dev/vg-x/root", "rhel"));
        let roots = [&a, &b];
        let e = choose(&roots, &RootChoice::Single).unwrap_err().to_string();
        assert_eq!(
            e,
            "2 Linux roots found: /dev/sda1 (debian 12.0), /dev/vg-x/root (rhel 12.0); \
             choose one with --root DEVICE (e.g. --root /dev/sda1) or --root first"
        );
        assert_eq!(choose(&roots, &RootChoice::First).unwrap().root, "/dev/sda1");
        assert_eq!(choose(&roots, &"/dev/vg-x/root".parse().unwrap()).unwrap().root, "/dev/vg-x/root");
        assert_eq!(choose(&roots, &"/dev/mapper/vg--x-root".parse().unwrap()).unwrap().root, "/dev/vg-x/root");
        let e = choose(&roots, &"/dev/sdc1".parse().unwrap()).unwrap_err().to_string();
        assert!(e.starts_with("--root /dev/sdc1: no Linux root on that device; roots found: /dev/sda1"), "{e}");
        assert_eq!(choose(&[&a], &RootChoice::Single).unwrap().root, "/dev/sda1");
        assert!("sideways".parse::<RootChoice>().unwrap_err().contains("invalid --root \"sideways\""));
    }
}
