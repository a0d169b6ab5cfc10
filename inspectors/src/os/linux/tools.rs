//! Package format and manager, hypervisor guest tools, SELinux state.

use super::super::{GuestFs, OsInfo};
use super::release::shell_var;

/// Names of the packages dpkg lists as installed.
pub fn dpkg_installed(g: &GuestFs) -> Vec<String> {
    let Ok(Some(b)) = g.read("/var/lib/dpkg/status", 256 << 20) else { return Vec::new() };
    let t = String::from_utf8_lossy(&b);
    t.split("\n\n")
        .filter(|stanza| stanza.lines().any(|l| l.starts_with("Status:") && l.ends_with(" installed")))
        .filter_map(|stanza| stanza.lines().find_map(|l| l.strip_prefix("Package:")).map(|p| p.trim().to_string()))
        .collect()
}

/// Package format and manager (virt-inspector's rules).
pub fn packages(g: &GuestFs, os: &mut OsInfo) {
    let has = |p: &str| g.is_file(p);
    if g.exists("/var/lib/dpkg/status") {
        os.package_format = "deb".into();
        os.package_management = "apt".into();
    } else if g.is_dir("/var/lib/rpm") || g.is_dir("/usr/lib/sysimage/rpm") {
        os.package_format = "rpm".into();
        let new_dnf = matches!(os.distro.as_str(), "fedora" if os.major_version >= 22)
            || matches!(os.distro.as_str(), "rhel" | "centos" | "rocky" | "alma" | "oraclelinux" if os.major_version >= 8);
        os.package_management = if matches!(os.distro.as_str(), "sles" | "opensuse") || has("/usr/bin/zypper") {
            "zypper"
        } else if new_dnf || has("/usr/bin/dnf") {
            "dnf"
        } else if has("/usr/bin/yum") || os.major_version >= 5 {
            "yum"
        } else {
            "up2date"
        }
        .into();
    } else if g.is_dir("/var/lib/pacman") {
        os.package_format = "pacman".into();
        os.package_management = "pacman".into();
    } else if g.exists("/lib/apk/db/installed") {
        os.package_format = "apk".into();
        os.package_management = "apk".into();
    }
}

/// Hypervisor guest tools installed (names virt-v2v acts on).
pub fn hypervisor_tools(g: &GuestFs, debs: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let deb = |p: &str| debs.iter().any(|d| d == p);
    if g.is_file("/etc/vmware-tools/locations") {
        out.push("vmware-tools (tarball)".to_string());
    }
    if deb("open-vm-tools") || (g.is_file("/usr/bin/vmtoolsd") && !g.is_file("/etc/vmware-tools/locations")) {
        out.push("open-vm-tools".into());
    }
    if deb("xe-guest-utilities") || g.is_file("/usr/sbin/xe-daemon") {
        out.push("xe-guest-utilities".into());
    }
    if deb("virtualbox-guest-utils")
        || g.is_file("/var/lib/VBoxGuestAdditions/config")
        || g.list("/opt").iter().any(|(n, _)| n.starts_with("VBoxGuestAdditions"))
    {
        out.push("virtualbox-guest-additions".into());
    }
    if g.is_dir("/usr/lib/parallels-tools") {
        out.push("parallels-tools".into());
    }
    out
}

/// SELINUX= from /etc/selinux/config.
pub fn selinux(g: &GuestFs) -> Option<String> {
    shell_var(&g.text("/etc/selinux/config")?, "SELINUX").map(|s| s.to_lowercase())
}
