//! Network configuration files and the interface names they use.

use super::super::{GuestFs, NetConfig};
use super::release::shell_var;
use crate::fs::FileKind;

fn files(g: &GuestFs, dir: &str, pred: impl Fn(&str) -> bool) -> Vec<String> {
    g.list(dir)
        .into_iter()
        .filter(|(n, k)| *k != FileKind::Dir && pred(n))
        .map(|(n, _)| format!("{dir}/{n}"))
        .collect()
}

fn push(out: &mut Vec<NetConfig>, kind: &str, file: String, mut ifs: Vec<String>) {
    ifs.retain(|i| !i.is_empty() && i != "lo");
    ifs.dedup();
    out.push(NetConfig { kind: kind.into(), file, interfaces: ifs });
}

/// Every network configuration found.
pub fn detect(g: &GuestFs) -> Vec<NetConfig> {
    let mut out = Vec::new();
    let mut ifupdown = vec!["/etc/network/interfaces".to_string()];
    ifupdown.extend(files(g, "/etc/network/interfaces.d", |_| true));
    for f in ifupdown {
        let Some(t) = g.text(&f) else { continue };
        let ifs = t
            .lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                match w.as_slice() {
                    ["iface", name, ..] => Some(name.to_string()),
                    _ => None,
                }
            })
            .collect();
        push(&mut out, "ifupdown", f, ifs);
    }
    for dir in ["/etc/sysconfig/network-scripts", "/etc/sysconfig/network"] {
        for f in files(g, dir, |n| n.starts_with("ifcfg-")) {
            let Some(t) = g.text(&f) else { continue };
            let name = shell_var(&t, "DEVICE").unwrap_or_else(|| f.rsplit("ifcfg-").next().unwrap_or_default().into());
            push(&mut out, "ifcfg", f, vec![name]);
        }
    }
    for f in files(g, "/etc/NetworkManager/system-connections", |_| true) {
        let Some(t) = g.text(&f) else { continue };
        let ifs = t.lines().filter_map(|l| l.trim().strip_prefix("interface-name=")).map(str::to_string).collect();
        push(&mut out, "networkmanager", f, ifs);
    }
    for f in files(g, "/etc/netplan", |n| n.ends_with(".yaml") || n.ends_with(".yml")) {
        let Some(t) = g.text(&f) else { continue };
        push(&mut out, "netplan", f, netplan_ifs(&t));
    }
    for dir in ["/etc/systemd/network", "/usr/lib/systemd/network"] {
        for f in files(g, dir, |n| n.ends_with(".network")) {
            if dir.starts_with("/usr") {
                continue;
            }
            let Some(t) = g.text(&f) else { continue };
            let ifs = t
                .lines()
                .filter_map(|l| l.trim().strip_prefix("Name="))
                .flat_map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .collect();
            push(&mut out, "systemd-networkd", f, ifs);
        }
    }
    out
}

/// Interface keys under `ethernets:` / `bonds:` / `bridges:` / `vlans:` (and their
/// `set-name:` values) in a netplan YAML file.
fn netplan_ifs(t: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut section_indent: Option<usize> = None;
    let mut child_indent: Option<usize> = None;
    for l in t.lines() {
        let body = l.split('#').next().unwrap_or_default();
        if body.trim().is_empty() {
            continue;
        }
        let indent = body.len() - body.trim_start().len();
        let key = body.trim().trim_end_matches(':');
        if let Some(si) = section_indent {
            if indent <= si {
                section_indent = None;
                child_indent = None;
            } else {
                let ci = *child_indent.get_or_insert(indent);
                if indent == ci && body.trim().ends_with(':') {
                    out.push(key.trim_matches('"').to_string());
                } else if let Some(v) = body.trim().strip_prefix("set-name:") {
                    out.push(v.trim().trim_matches('"').to_string());
                }
                continue;
            }
        }
        if ["ethernets", "bonds", "bridges", "vlans", "wifis"].contains(&key) {
            section_indent = Some(indent);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn netplan_interfaces() {
        let y = "network:\n  version: 2\n  ethernets:\n    ens3:\n      dhcp4: true\n    id1:\n      match: {macaddress: aa}\n      set-name: lan0\n  bridges:\n    br0:\n      interfaces: [ens3]\n";
        assert_eq!(super::netplan_ifs(y), vec!["ens3", "id1", "lan0", "br0"]);
    }
}
