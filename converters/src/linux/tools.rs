//! Hypervisor guest tools that must not run on KVM: open-vm-tools, VMware Tools (package or
//! tarball), Citrix xe-guest-utilities, VirtualBox Guest Additions. systemd units are masked
//! (`/etc/systemd/system/UNIT` → `/dev/null`), SysV `rc?.d` start/stop links removed (SUSE's
//! `/etc/init.d/rc?.d` included).

use super::draft::Draft;
use super::LinuxError;
use crate::guestfs::FileKind;

struct Tool {
    name: &'static str,
    units: &'static [&'static str],
    sysv: &'static [&'static str],
}

const TOOLS: &[Tool] = &[
    Tool {
        name: "open-vm-tools (VMware)",
        units: &[
            "open-vm-tools.service",
            "vmtoolsd.service",
            "vgauth.service",
            "vgauthd.service",
            "run-vmblock\\x2dfuse.mount",
        ],
        sysv: &["open-vm-tools"],
    },
    Tool {
        name: "VMware Tools",
        units: &[
            "vmware-tools.service",
            "vmware-tools-thinprint.service",
            "vmware-toolbox-cmd.service",
        ],
        sysv: &["vmware-tools", "vmware-tools-thinprint", "vmware-tools-services"],
    },
    Tool {
        name: "xe-guest-utilities (Citrix Xen)",
        units: &["xe-linux-distribution.service", "xe-daemon.service"],
        sysv: &["xe-linux-distribution"],
    },
    Tool {
        name: "VirtualBox Guest Additions",
        units: &[
            "vboxadd.service",
            "vboxadd-service.service",
            "vboxadd-x11.service",
        ],
        sysv: &["vboxadd", "vboxadd-service", "vboxadd-x11"],
    },
];

const UNIT_DIRS: [&str; 4] = [
    "/etc/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/run/systemd/system",
];
/// SysV start/stop link directories: Debian (`/etc/rcN.d`), Red Hat (`/etc/rc.d/rcN.d`) and
/// SUSE before systemd (`/etc/init.d/rcN.d`, SLES 11).
const RC_DIRS: [&str; 23] = [
    "/etc/rc0.d",
    "/etc/rc1.d",
    "/etc/rc2.d",
    "/etc/rc3.d",
    "/etc/rc4.d",
    "/etc/rc5.d",
    "/etc/rc6.d",
    "/etc/rcS.d",
    "/etc/rc.d/rc0.d",
    "/etc/rc.d/rc1.d",
    "/etc/rc.d/rc2.d",
    "/etc/rc.d/rc3.d",
    "/etc/rc.d/rc4.d",
    "/etc/rc.d/rc5.d",
    "/etc/rc.d/rc6.d",
    "/etc/init.d/rc0.d",
    "/etc/init.d/rc1.d",
    "/etc/init.d/rc2.d",
    "/etc/init.d/rc3.d",
    "/etc/init.d/rc4.d",
    "/etc/init.d/rc5.d",
    "/etc/init.d/rc6.d",
    "/etc/init.d/rcS.d",
];

/// Whether `name` is `S`/`K`, two digits, then `script`.
fn is_rc_link(name: &str, script: &str) -> bool {
    let b = name.as_bytes();
    b.len() > 3
        && (b[0] == b'S' || b[0] == b'K')
        && b[1].is_ascii_digit()
        && b[2].is_ascii_digit()
        && &name[3..] == script
}

/// Plans disabling every hypervisor tool found.
pub fn plan(d: &mut Draft<'_>) -> Result<(), LinuxError> {
    let wants_dirs: Vec<String> = d
        .list_dir("/etc/systemd/system")?
        .into_iter()
        .filter(|n| n.ends_with(".wants") || n.ends_with(".requires"))
        .map(|n| format!("/etc/systemd/system/{n}"))
        .collect();
    for tool in TOOLS {
        let reason = format!("{} does not work on KVM", tool.name);
        let mut masked = Vec::new();
        let mut disabled = Vec::new();
        for unit in tool.units {
            let etc = format!("/etc/systemd/system/{unit}");
            if d.is_link_to(&etc, "/dev/null")? {
                continue;
            }
            let mut present = false;
            for dir in UNIT_DIRS {
                let p = format!("{dir}/{unit}");
                present |= d.lstat(&p)?.is_some() && !d.is_link_to(&p, "/dev/null")?;
            }
            for w in &wants_dirs {
                present |= d.lstat(&format!("{w}/{unit}"))?.is_some();
            }
            if !present {
                continue;
            }
            if d.lstat(&etc)?.is_some_and(|s| s.kind == FileKind::File) {
                // A unit installed into /etc itself cannot be masked without losing it: disable it.
                for w in &wants_dirs {
                    d.delete(&format!("{w}/{unit}"), &reason)?;
                }
                disabled.push(*unit);
            } else {
                d.symlink(&etc, "/dev/null", &reason)?;
                masked.push(*unit);
            }
        }
        let mut rc_links = 0usize;
        for script in tool.sysv {
            for dir in RC_DIRS {
                for name in d.list_dir(dir)? {
                    if is_rc_link(&name, script) && d.delete(&format!("{dir}/{name}"), &reason)? {
                        rc_links += 1;
                    }
                }
            }
        }
        let mut what = Vec::new();
        if !masked.is_empty() {
            what.push(format!("masked {}", masked.join(", ")));
        }
        if !disabled.is_empty() {
            what.push(format!("disabled {}", disabled.join(", ")));
        }
        if rc_links > 0 {
            what.push(format!("removed {rc_links} SysV rc links"));
        }
        if !what.is_empty() {
            d.note(format!("{} disabled: {}", tool.name, what.join("; ")));
        }
    }
    // open-vm-tools packages also create /etc/vmware-tools; the tarball leaves its installer
    // database (`locations`) and uninstaller.
    if d.fs().exists("/etc/vmware-tools/locations")?
        || d.fs().exists("/usr/bin/vmware-uninstall-tools.pl")?
    {
        d.note("VMware Tools installed from the tarball (/etc/vmware-tools): its services are disabled; remove it in the guest with vmware-uninstall-tools.pl".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn rc_links() {
        assert!(super::is_rc_link("S01open-vm-tools", "open-vm-tools"));
        assert!(!super::is_rc_link("S01open-vm-tools-x", "open-vm-tools"));
        assert!(!super::is_rc_link("README", "open-vm-tools"));
    }
}
