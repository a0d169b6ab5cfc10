//! Rewrites the guest's network configuration from an interface's old name to its new one:
//! ifupdown, `ifcfg-*` (files renamed too; RHEL `route-*`/`rule-*`, SUSE wicked `ifroute-*`/
//! `ifrule-*` and `routes`), NetworkManager keyfiles, netplan, systemd-networkd and udev
//! persistent-net rules. MAC addresses are kept as they are.

use super::super::draft::Draft;
use super::super::text::replace_word;
use super::super::LinuxError;
use super::{ifupdown_files, IFCFG_DIRS, NM_DIR, UDEV_RULES};

/// Replaces `old` by `new` in the lines `keep(line)` accepts, skipping `#` comments.
fn rewrite(text: &str, old: &str, new: &str, keep: impl Fn(&str) -> bool) -> String {
    text.split_inclusive('\n')
        .map(|l| {
            if l.trim_start().starts_with('#') || !keep(l) {
                l.to_owned()
            } else {
                replace_word(l, old, new)
            }
        })
        .collect()
}

fn key_is(line: &str, keys: &[&str]) -> bool {
    line.split_once('=')
        .is_some_and(|(k, _)| keys.contains(&k.trim()))
}

/// The interfaces under netplan's `ethernets:`: the name each gets (`set-name:`, else its key)
/// and the `macaddress:` it matches, if any.
pub fn netplan_ethernets(text: &str) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    let mut eth_indent: Option<usize> = None;
    let mut child_indent: Option<usize> = None;
    let clean = |v: &str| v.trim().trim_matches('"').trim_matches('\'').to_owned();
    for l in text.lines() {
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let indent = l.len() - t.len();
        match eth_indent {
            Some(ei) if indent <= ei => {
                eth_indent = None;
                child_indent = None;
            }
            Some(_) => {
                if child_indent.is_none_or(|c| indent == c) {
                    child_indent = Some(indent);
                    if let Some((k, _)) = t.split_once(':') {
                        out.push((clean(k), None));
                    }
                } else if let (Some(last), Some((k, v))) = (out.last_mut(), t.split_once(':')) {
                    match k.trim() {
                        "macaddress" => last.1 = Some(clean(v).to_ascii_lowercase()),
                        "set-name" => last.0 = clean(v),
                        _ => {}
                    }
                }
                continue;
            }
            None => {}
        }
        if t.starts_with("ethernets:") {
            eth_indent = Some(indent);
        }
    }
    out
}

/// Plans renaming `old` to `new` everywhere the network configuration names it.
pub fn plan(d: &mut Draft<'_>, old: &str, new: &str) -> Result<(), LinuxError> {
    let reason = format!("the NIC {old} is {new} on KVM (PCI slot name)");
    let r = reason.as_str();

    for path in ifupdown_files(d)? {
        if let Some(t) = d.read(&path)? {
            d.edit(&path, rewrite(&t, old, new, |_| true), r)?;
        }
    }

    for dir in IFCFG_DIRS {
        for name in d.list_dir(dir)? {
            let Some((prefix, dev)) = name.split_once('-') else {
                continue;
            };
            if !["ifcfg", "route", "route6", "rule", "rule6", "ifroute", "ifrule"].contains(&prefix) {
                continue;
            }
            let mut path = format!("{dir}/{name}");
            let new_dev = replace_word(dev, old, new);
            if new_dev != dev {
                let to = format!("{dir}/{prefix}-{new_dev}");
                if d.lstat(&to)?.is_some() {
                    d.warn(format!("{to} exists already: {path} is not renamed"));
                } else {
                    d.rename(&path, &to, r)?;
                    path = to;
                }
            }
            if prefix == "ifroute" || prefix == "ifrule" {
                // wicked: `DESTINATION GATEWAY NETMASK INTERFACE ...`, the interface often `-`.
                if let Some(t) = d.read(&path)? {
                    d.edit(&path, rewrite(&t, old, new, |_| true), r)?;
                }
            }
            if prefix == "ifcfg" {
                if let Some(t) = d.read(&path)? {
                    d.edit(
                        &path,
                        rewrite(&t, old, new, |l| !key_is(l, &["HWADDR", "MACADDR"])),
                        r,
                    )?;
                }
            }
        }
    }

    // wicked's global routes name the interface in their fourth column.
    for path in ["/etc/sysconfig/network/routes"] {
        if let Some(t) = d.read(path)? {
            d.edit(path, rewrite(&t, old, new, |_| true), r)?;
        }
    }

    for name in d.list_dir(NM_DIR)? {
        let path = format!("{NM_DIR}/{name}");
        if let Some(t) = d.read(&path)? {
            d.edit(
                &path,
                rewrite(&t, old, new, |l| {
                    key_is(l, &["interface-name", "parent", "master"])
                }),
                r,
            )?;
        }
    }

    for name in d.list_dir("/etc/netplan")? {
        if !name.ends_with(".yaml") && !name.ends_with(".yml") {
            continue;
        }
        let path = format!("/etc/netplan/{name}");
        if let Some(t) = d.read(&path)? {
            d.edit(&path, rewrite(&t, old, new, |_| true), r)?;
        }
    }

    for name in d.list_dir("/etc/systemd/network")? {
        if !name.ends_with(".network") && !name.ends_with(".netdev") {
            continue;
        }
        let path = format!("/etc/systemd/network/{name}");
        if let Some(t) = d.read(&path)? {
            d.edit(
                &path,
                rewrite(&t, old, new, |l| {
                    key_is(l, &["Name", "Bond", "Bridge", "VLAN"])
                }),
                r,
            )?;
        }
    }

    if let Some(t) = d.read(UDEV_RULES)? {
        let quoted = format!("NAME=\"{old}\"");
        let new_rules: String = t
            .split_inclusive('\n')
            .map(|l| {
                if l.trim_start().starts_with('#') {
                    l.to_owned()
                } else {
                    l.replace(&quoted, &format!("NAME=\"{new}\""))
                }
            })
            .collect();
        d.edit(UDEV_RULES, new_rules, r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn netplan_keys() {
        let y = "network:\n  version: 2\n  ethernets:\n    ens192:\n      dhcp4: true\n    lan:\n      match:\n        macaddress: 00:11\n      set-name: lan\n  bridges:\n    br0: {}\n";
        let got = super::netplan_ethernets(y);
        assert_eq!(
            got,
            vec![
                ("ens192".to_owned(), None),
                ("lan".to_owned(), Some("00:11".to_owned()))
            ]
        );
    }
}
