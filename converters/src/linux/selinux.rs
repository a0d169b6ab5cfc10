//! SELinux guests get `/.autorelabel`: files written host-side have no security labels, and
//! the guest relabels itself on its first boot.

use super::draft::Draft;
use super::facts::GuestFacts;
use super::LinuxError;

/// `SELINUX=` from `/etc/selinux/config` text.
pub fn mode(config: &str) -> Option<String> {
    config
        .lines()
        .filter_map(|l| l.trim().strip_prefix("SELINUX="))
        .next_back()
        .map(|v| v.trim().trim_matches('"').to_ascii_lowercase())
}

/// Plans the relabel flag.
pub fn plan(d: &mut Draft<'_>, facts: &GuestFacts) -> Result<(), LinuxError> {
    let on = match d.read("/etc/selinux/config")? {
        Some(t) => matches!(mode(&t).as_deref(), Some("enforcing") | Some("permissive")),
        None => facts.selinux,
    };
    if on && d.lstat("/.autorelabel")?.is_none() {
        d.create(
            "/.autorelabel",
            String::new(),
            0o644,
            "SELinux is on and files written host-side are not labelled by its policy: the guest relabels itself at its first boot, as an admin does with touch /.autorelabel",
        )?;
    }
    Ok(())
}
