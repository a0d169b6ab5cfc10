//! Network identity: on KVM each NIC gets the predictable name of its PCI slot (`enp0s3`), not
//! the one it had (`ens192`, `eth0`). Either the guest's configuration is rewritten to the new
//! names ([`NetStrategy::Rename`], `rename.rs`) or the old names are pinned to the MAC addresses
//! ([`NetStrategy::PinOldName`], `pin.rs`). udev persistent-net rules that name hardware the
//! KVM machine does not have are cleaned (`udev.rs`). SUSE keeps the kernel's `ethN` names
//! unless `net.ifnames=1` is set.

mod pin;
mod rename;
mod udev;

use super::draft::Draft;
use super::facts::{DistroFamily, GuestFacts, NetStrategy, NicTarget, TargetLayout};
use super::text::has_word;
use super::LinuxError;

/// Network-scripts directories holding `ifcfg-*` files (RHEL, SUSE).
pub const IFCFG_DIRS: [&str; 2] = ["/etc/sysconfig/network-scripts", "/etc/sysconfig/network"];
/// NetworkManager keyfile directory.
pub const NM_DIR: &str = "/etc/NetworkManager/system-connections";
/// udev's persistent network names rules (pre-systemd-naming guests).
pub const UDEV_RULES: &str = "/etc/udev/rules.d/70-persistent-net.rules";

/// The ifupdown configuration files: /etc/network/interfaces and what interfaces.d holds.
fn ifupdown_files(d: &Draft<'_>) -> Result<Vec<String>, LinuxError> {
    let mut files = vec!["/etc/network/interfaces".to_owned()];
    files.extend(
        d.list_dir("/etc/network/interfaces.d")?
            .into_iter()
            .map(|n| format!("/etc/network/interfaces.d/{n}")),
    );
    Ok(files)
}

fn value_of<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let (k, v) = line.split_once('=')?;
    (k.trim() == key).then(|| v.trim().trim_matches('"').trim_matches('\''))
}

/// The `NAME=` a udev persistent-net rule gives to `mac`.
pub fn udev_name_for(rules: &str, mac: &str) -> Option<String> {
    let want = format!("attr{{address}}==\"{}\"", mac.to_ascii_lowercase());
    rules
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.to_ascii_lowercase().contains(&want))
        .find_map(|l| {
            let i = l.find("NAME=\"")?;
            let rest = &l[i + 6..];
            Some(rest[..rest.find('"')?].to_owned())
        })
}

/// Interface names configured in the guest, with the MAC address when the file names one.
fn configured(d: &mut Draft<'_>) -> Result<Vec<(String, Option<String>)>, LinuxError> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for dir in IFCFG_DIRS {
        for name in d.list_dir(dir)? {
            if !name.starts_with("ifcfg-") || name == "ifcfg-lo" {
                continue;
            }
            let Some(t) = d.read(&format!("{dir}/{name}"))? else {
                continue;
            };
            let dev = t
                .lines()
                .find_map(|l| value_of(l, "DEVICE"))
                .map(str::to_owned)
                .or_else(|| name.strip_prefix("ifcfg-").map(str::to_owned));
            let mac = t
                .lines()
                .find_map(|l| value_of(l, "HWADDR"))
                .map(str::to_ascii_lowercase);
            if let Some(dev) = dev {
                out.push((dev, mac));
            }
        }
    }
    for name in d.list_dir(NM_DIR)? {
        let Some(t) = d.read(&format!("{NM_DIR}/{name}"))? else {
            continue;
        };
        let mac = t
            .lines()
            .find_map(|l| value_of(l, "mac-address"))
            .map(str::to_ascii_lowercase);
        if let Some(dev) = t.lines().find_map(|l| value_of(l, "interface-name")) {
            out.push((dev.to_owned(), mac));
        }
    }
    for path in ifupdown_files(d)? {
        let Some(t) = d.read(&path)? else { continue };
        for l in t.lines() {
            if let ["iface", name, ..] = l.split_whitespace().collect::<Vec<_>>().as_slice() {
                let base = name.split(['.', ':']).next().unwrap_or(name);
                if base != "lo" {
                    out.push((base.to_owned(), None));
                }
            }
        }
    }
    for name in d.list_dir("/etc/netplan")? {
        let Some(t) = d.read(&format!("/etc/netplan/{name}"))? else {
            continue;
        };
        out.extend(rename::netplan_ethernets(&t));
    }
    for name in d.list_dir("/etc/systemd/network")? {
        if !name.ends_with(".network") {
            continue;
        }
        let Some(t) = d.read(&format!("/etc/systemd/network/{name}"))? else {
            continue;
        };
        for l in t.lines() {
            if let Some(v) = value_of(l, "Name") {
                out.extend(
                    v.split_whitespace()
                        .filter(|n| !n.contains(['*', '?', '[']))
                        .map(|n| (n.to_owned(), None)),
                );
            }
        }
    }
    Ok(out)
}

/// The old name of each NIC: given, or found by MAC, or the only configured interface.
fn old_names(d: &mut Draft<'_>, nics: &[NicTarget]) -> Result<Vec<Option<String>>, LinuxError> {
    let conf = configured(d)?;
    let rules = d.read(UDEV_RULES)?.unwrap_or_default();
    let mut names: Vec<Option<String>> = nics
        .iter()
        .map(|n| {
            let mac = n.mac.to_ascii_lowercase();
            n.old_name
                .clone()
                .or_else(|| udev_name_for(&rules, &mac))
                .or_else(|| {
                    conf.iter()
                        .find(|(_, m)| m.as_deref() == Some(mac.as_str()))
                        .map(|(d, _)| d.clone())
                })
        })
        .collect();
    let mut distinct: Vec<&String> = conf.iter().map(|(n, _)| n).collect();
    distinct.sort();
    distinct.dedup();
    if let ([only], [None]) = (distinct.as_slice(), names.as_slice()) {
        names[0] = Some((*only).clone());
    }
    Ok(names)
}

/// Plans the network identity changes.
pub fn plan(d: &mut Draft<'_>, facts: &GuestFacts, target: &TargetLayout) -> Result<(), LinuxError> {
    if target.nics.is_empty() {
        return Ok(());
    }
    let olds = old_names(d, &target.nics)?;
    udev::plan(d, &target.nics, &olds)?;
    let systemd =
        d.fs().exists("/lib/systemd/systemd")? || d.fs().exists("/usr/lib/systemd/systemd")?;
    // `net.ifnames=0` keeps the kernel's ethN names: nothing to rename to. SUSE's systemd
    // keeps them unless `net.ifnames=1` is given (SLES names NICs ethN by default).
    let cmdlines = [
        "/etc/default/grub",
        "/boot/grub/grub.cfg",
        "/boot/grub2/grub.cfg",
    ]
    .iter()
    .map(|p| d.read(p))
    .collect::<Result<Vec<_>, _>>()?
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    let ifnames_off = if facts.family == DistroFamily::Suse {
        !cmdlines.iter().any(|t| has_word(t, "net.ifnames=1"))
    } else {
        cmdlines.iter().any(|t| has_word(t, "net.ifnames=0"))
    };
    for (nic, old) in target.nics.iter().zip(olds) {
        let Some(old) = old else {
            d.note(format!(
                "NIC {}: no configuration found for it; it is {} on KVM",
                nic.mac, nic.new_name
            ));
            continue;
        };
        if old == nic.new_name {
            continue;
        }
        let pinned = udev_name_for(&d.read(UDEV_RULES)?.unwrap_or_default(), &nic.mac).is_some();
        if target.net == NetStrategy::Rename && !pinned && (!systemd || ifnames_off) {
            d.note(format!(
                "NIC {}: keeps the kernel's name {old} (no predictable interface names on this guest); its configuration is unchanged",
                nic.mac
            ));
            continue;
        }
        match target.net {
            NetStrategy::Rename => rename::plan(d, &old, &nic.new_name)?,
            NetStrategy::PinOldName => pin::plan(d, &old, &nic.mac, systemd)?,
        }
    }
    Ok(())
}
