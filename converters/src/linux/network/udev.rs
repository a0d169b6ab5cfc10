//! udev persistent-net rules (`70-persistent-net.rules`, written by udev's rule generator on
//! pre-systemd-naming guests: RHEL 6, SLES 11/12) pin a name to a MAC address and often to the
//! driver too (`DRIVERS=="vif"` on Xen, `"vmxnet3"` on VMware). On KVM the driver is
//! `virtio_net`: a rule for a kept MAC gets `DRIVERS=="?*"`, so it still names the NIC. A rule
//! for a MAC the KVM machine does not have, naming what one of its NICs should be called (a
//! clone's template NIC as `eth0`), is removed with its device comment: otherwise it reserves
//! the name and the rule generator calls the NIC `eth1`. Other stale rules never match and stay.

use super::super::draft::Draft;
use super::super::LinuxError;
use super::UDEV_RULES;
use crate::linux::facts::NicTarget;

/// The lowercased MAC of a rule's `ATTR{address}==` match.
fn rule_mac(line: &str) -> Option<String> {
    let lower = line.to_ascii_lowercase();
    let i = lower.find("attr{address}==\"")?;
    let rest = &lower[i + 16..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// The `NAME="..."` a rule gives.
fn rule_name(line: &str) -> Option<&str> {
    let i = line.find("NAME=\"")?;
    let rest = &line[i + 6..];
    Some(&rest[..rest.find('"')?])
}

/// `line` with its `DRIVERS=="..."` match widened to any driver.
fn any_driver(line: &str) -> String {
    let key = "DRIVERS==\"";
    let Some(i) = line.find(key) else { return line.to_owned() };
    let rest = &line[i + key.len()..];
    let Some(end) = rest.find('"') else { return line.to_owned() };
    format!("{}?*{}", &line[..i + key.len()], &rest[end..])
}

/// Plans the cleaning of the rules for the target's `nics`, whose configured names are `olds`.
pub fn plan(d: &mut Draft<'_>, nics: &[NicTarget], olds: &[Option<String>]) -> Result<(), LinuxError> {
    let Some(text) = d.read(UDEV_RULES)? else { return Ok(()) };
    let macs: Vec<String> = nics.iter().map(|n| n.mac.to_ascii_lowercase()).collect();
    let claimed: Vec<&str> = olds
        .iter()
        .flatten()
        .map(String::as_str)
        .chain(nics.iter().map(|n| n.new_name.as_str()))
        .collect();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut keep = vec![true; lines.len()];
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    let mut removed = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.trim_start().starts_with('#') {
            continue;
        }
        let Some(mac) = rule_mac(l) else { continue };
        if macs.contains(&mac) {
            out[i] = any_driver(l);
            continue;
        }
        if !rule_name(l).is_some_and(|n| claimed.contains(&n)) {
            continue;
        }
        keep[i] = false;
        removed.push(mac);
        // The generator's device comment ("# PCI device 0x15ad:0x07b0 (vmxnet3)") just above.
        let is_comment = |j: usize| lines[j].trim_start().starts_with('#');
        let blank_or_start = |j: Option<usize>| j.is_none_or(|j| lines[j].trim().is_empty() || !keep[j]);
        if i > 0 && is_comment(i - 1) && blank_or_start(i.checked_sub(2)) {
            keep[i - 1] = false;
            // And the blank line that separated the entry from the one before.
            if i >= 2 && lines[i - 2].trim().is_empty() {
                keep[i - 2] = false;
            }
        }
    }
    let new: String = out
        .into_iter()
        .zip(keep)
        .filter_map(|(l, k)| k.then_some(l))
        .collect();
    if !removed.is_empty() {
        d.note(format!(
            "{UDEV_RULES}: rules for {} removed: the KVM machine has no NIC with that address, and the name they reserve is one of its NICs'",
            removed.join(", ")
        ));
    }
    d.edit(
        UDEV_RULES,
        new,
        "the NICs are virtio_net on KVM: rules match their MAC address with any driver; rules for NICs the KVM machine lacks do not take their names",
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn drivers_widened() {
        let l = "SUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"vif\", ATTR{address}==\"00:16:3e:01:02:03\", NAME=\"eth0\"\n";
        assert_eq!(super::any_driver(l), l.replace("\"vif\"", "\"?*\""));
        assert_eq!(super::rule_mac(l).as_deref(), Some("00:16:3e:01:02:03"));
        assert_eq!(super::any_driver("DRIVERS==\"x"), "DRIVERS==\"x");
        assert_eq!(super::rule_name(l), Some("eth0"));
    }
}
