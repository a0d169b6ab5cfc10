//! Distro, product name and version from os-release, lsb-release and the per-distro
//! release files; hostname.

use super::super::{GuestFs, OsInfo};

/// Value of `KEY=value` / `KEY="value"` in shell-style files.
pub fn shell_var(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.trim().split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').trim_matches('\'').to_string())
    })
}

fn set_version(os: &mut OsInfo, v: &str) {
    let mut it = v.split(|c: char| !c.is_ascii_digit());
    os.major_version = it.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    os.minor_version = it.next().and_then(|m| m.parse().ok()).unwrap_or(0);
}

/// libguestfs distro names from os-release IDs.
fn distro_of(id: &str) -> &str {
    match id {
        "rhel" => "rhel",
        "ol" => "oraclelinux",
        "sles" | "sled" => "sles",
        "opensuse" | "opensuse-leap" | "opensuse-tumbleweed" => "opensuse",
        "almalinux" => "alma",
        "rocky" => "rocky",
        "linuxmint" => "linuxmint",
        other => other,
    }
}

/// Fills distro, product name and version. Release files in libguestfs's order.
pub fn detect(g: &GuestFs, os: &mut OsInfo) {
    if let Some(t) = g.text("/etc/os-release").or_else(|| g.text("/usr/lib/os-release")) {
        if let Some(id) = shell_var(&t, "ID") {
            os.distro = distro_of(&id.to_lowercase()).to_string();
        }
        os.product_name = shell_var(&t, "PRETTY_NAME").unwrap_or_default();
        if let Some(v) = shell_var(&t, "VERSION_ID") {
            set_version(os, &v);
        }
    }
    if os.distro.is_empty() {
        if let Some(t) = g.text("/etc/lsb-release") {
            if let Some(id) = shell_var(&t, "DISTRIB_ID") {
                os.distro = distro_of(&id.to_lowercase()).to_string();
                os.product_name = shell_var(&t, "DISTRIB_DESCRIPTION").unwrap_or_default();
                if let Some(v) = shell_var(&t, "DISTRIB_RELEASE") {
                    set_version(os, &v);
                }
            }
        }
    }
    let first_line = |p: &str| g.text(p).and_then(|t| t.lines().next().map(|l| l.trim().to_string()));
    for (file, distro) in [
        ("/etc/redhat-release", ""),
        ("/etc/centos-release", "centos"),
        ("/etc/fedora-release", "fedora"),
        ("/etc/SuSE-release", "sles"),
        ("/etc/debian_version", "debian"),
    ] {
        let Some(line) = first_line(file) else { continue };
        if distro == "debian" {
            // Debian's point release is here (os-release only has the major).
            if os.distro == "debian" || os.distro.is_empty() {
                os.distro = "debian".into();
                if line.starts_with(|c: char| c.is_ascii_digit()) {
                    set_version(os, &line);
                }
            }
            continue;
        }
        if os.distro.is_empty() {
            os.distro = if distro.is_empty() {
                if line.starts_with("Red Hat Enterprise Linux") {
                    "rhel".into()
                } else if line.starts_with("CentOS") {
                    "centos".into()
                } else if line.starts_with("Fedora") {
                    "fedora".into()
                } else {
                    "redhat-based".into()
                }
            } else {
                distro.into()
            };
            os.product_name = line.clone();
            if let Some(v) = line.split("release ").nth(1) {
                set_version(os, v);
            }
        }
        if os.product_name.is_empty() {
            os.product_name = line;
        }
    }
    if os.distro.is_empty() {
        os.distro = "unknown".into();
    }
    os.osinfo = match os.distro.as_str() {
        "debian" => format!("debian{}", os.major_version),
        "ubuntu" => format!("ubuntu{}.{:02}", os.major_version, os.minor_version),
        "rhel" | "centos" | "rocky" | "alma" | "oraclelinux" if os.major_version >= 7 => {
            format!("{}{}.{}", os.distro.replace("alma", "almalinux").replace("oraclelinux", "ol"), os.major_version, os.minor_version)
        }
        "fedora" => format!("fedora{}", os.major_version),
        _ => String::new(),
    };
}

/// Hostname: /etc/hostname, /etc/HOSTNAME, or HOSTNAME= in /etc/sysconfig/network.
pub fn hostname(g: &GuestFs) -> String {
    let first = |p: &str| {
        g.text(p).and_then(|t| {
            t.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string)
        })
    };
    first("/etc/hostname")
        .or_else(|| first("/etc/HOSTNAME"))
        .or_else(|| g.text("/etc/sysconfig/network").and_then(|t| shell_var(&t, "HOSTNAME")))
        .unwrap_or_default()
}
