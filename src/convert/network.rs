//! virt-v2v's network mapping: `-n [in:]out`, `-b [in:]out`, `--mac MAC:network|bridge:OUT`,
//! and its static addresses, `--mac MAC:ip:ADDR,GW,LEN,DNS...`.

use anyhow::bail;
use ferry_formats::layout::NetBackend;
use ferry_formats::model::{normalize_mac, NetKind, VmModel};
use std::collections::BTreeMap;

#[derive(Default)]
struct Map {
    default: Option<String>,
    named: BTreeMap<String, String>,
}

fn parse_map(opts: &[String], what: &str) -> anyhow::Result<Map> {
    let mut m = Map::default();
    for o in opts {
        match o.split_once(':') {
            Some((from, to)) if !from.is_empty() && !to.is_empty() => {
                if m.named.insert(from.to_string(), to.to_string()).is_some() {
                    bail!("--{what} {o:?}: {from:?} is already mapped");
                }
            }
            None if !o.is_empty() => {
                if m.default.replace(o.clone()).is_some() {
                    bail!("--{what} {o:?}: a default {what} is already given");
                }
            }
            _ => bail!("--{what} {o:?}: expected [in:]out"),
        }
    }
    Ok(m)
}

/// A `--mac` option's MAC and the rest: the MAC itself contains colons, so it is the first
/// 17 characters.
fn split_mac(o: &str) -> (&str, &str) {
    (o.get(..17).unwrap_or(""), o.get(17..).unwrap_or(""))
}

/// The `--mac MAC:ip:...` options: static IPv4 addresses for Windows' first boot.
pub fn static_ips(macs: &[String]) -> anyhow::Result<Vec<ferry_converters::windows::firstboot::StaticIp>> {
    let mut out: Vec<ferry_converters::windows::firstboot::StaticIp> = Vec::new();
    for o in macs {
        let (mac, rest) = split_mac(o);
        let Some(spec) = rest.strip_prefix(":ip:") else { continue };
        let Some(mac) = normalize_mac(mac) else { bail!("--mac {o:?}: expected MAC:ip:ADDR[,GW[,LEN[,DNS...]]]") };
        let ip = ferry_converters::windows::firstboot::StaticIp::parse(&mac, spec).map_err(|e| anyhow::anyhow!("--mac {o:?}: {e}"))?;
        if out.iter().any(|s| s.mac == ip.mac) {
            bail!("--mac {o:?}: this MAC already has an address");
        }
        out.push(ip);
    }
    Ok(out)
}

/// One backend per NIC of `vm`, after applying the mappings.
pub fn map_nics(vm: &VmModel, networks: &[String], bridges: &[String], macs: &[String]) -> anyhow::Result<Vec<NetBackend>> {
    let nets = parse_map(networks, "network")?;
    let brs = parse_map(bridges, "bridge")?;
    let mut by_mac: BTreeMap<String, NetBackend> = BTreeMap::new();
    for o in macs {
        let (mac, rest) = split_mac(o);
        let Some(mac) = normalize_mac(mac) else { bail!("--mac {o:?}: expected MAC:network:NAME or MAC:bridge:NAME") };
        let backend = match rest.strip_prefix(':').and_then(|r| r.split_once(':')) {
            Some(("network", n)) if !n.is_empty() => NetBackend::Network { name: n.into() },
            Some(("bridge", n)) if !n.is_empty() => NetBackend::Bridge { name: n.into() },
            Some(("ip", _)) => continue,
            _ => bail!("--mac {o:?}: expected MAC:network:NAME or MAC:bridge:NAME"),
        };
        if by_mac.insert(mac, backend).is_some() {
            bail!("--mac {o:?}: this MAC is already mapped");
        }
    }
    Ok(vm
        .nics
        .iter()
        .map(|nic| {
            if let Some(b) = nic.mac.as_ref().and_then(|m| by_mac.get(m)) {
                return b.clone();
            }
            match nic.kind {
                NetKind::Network => NetBackend::Network {
                    name: nets.named.get(&nic.network).or(nets.default.as_ref()).unwrap_or(&nic.network).clone(),
                },
                NetKind::Bridge => NetBackend::Bridge {
                    name: brs.named.get(&nic.network).or(brs.default.as_ref()).unwrap_or(&nic.network).clone(),
                },
            }
        })
        .collect())
}
