//! Keeps a NIC's old name on KVM by pinning it to the MAC address: a systemd `.link` file
//! (`/etc/systemd/network/10-ferry-<name>.link`), or on guests without systemd a udev
//! persistent-net rule. Nothing else in the network configuration changes.

use super::super::draft::Draft;
use super::super::LinuxError;
use super::{udev_name_for, UDEV_RULES};

/// The `.link` file that names the NIC with `mac` `name`.
pub fn link_file(name: &str, mac: &str) -> String {
    format!(
        "# Written by ferry: keep the name {name} this NIC had before the conversion to KVM.\n[Match]\nMACAddress={}\n\n[Link]\nName={name}\n",
        mac.to_ascii_lowercase()
    )
}

/// Plans pinning `old` to `mac`.
pub fn plan(d: &mut Draft<'_>, old: &str, mac: &str, systemd: bool) -> Result<(), LinuxError> {
    let reason = format!("keep the name {old} for the NIC {mac} on KVM");
    let rules = d.read(UDEV_RULES)?;
    if let Some(name) = rules.as_deref().and_then(|r| udev_name_for(r, mac)) {
        if name == old {
            d.note(format!("NIC {mac}: {UDEV_RULES} already names it {old}"));
            return Ok(());
        }
    }
    if systemd {
        let path = format!("/etc/systemd/network/10-ferry-{old}.link");
        return d.create(&path, link_file(old, mac), 0o644, &reason);
    }
    let rule = format!(
        "SUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"?*\", ATTR{{address}}==\"{}\", ATTR{{type}}==\"1\", NAME=\"{old}\"\n",
        mac.to_ascii_lowercase()
    );
    let mut text = rules.unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# Added by ferry: the name this NIC had before the conversion to KVM.\n");
    text.push_str(&rule);
    d.create(UDEV_RULES, text, 0o644, &reason)
}
