//! `modprobe` aliases from the old hypervisor: `alias ethN <nic driver>` becomes `virtio_net`,
//! the first `alias scsi_hostadapter* <hba driver>` becomes `virtio_blk` and later ones go.

use super::draft::Draft;
use super::LinuxError;

const REASON: &str = "devices are virtio on KVM";
const FILES: [&str; 5] = [
    "/etc/modprobe.conf",
    "/etc/modprobe.conf.local",
    "/etc/modules.conf",
    "/etc/conf.modules",
    "/etc/modprobe.d",
];
const XEN_DRIVERS: [&str; 4] = ["xennet", "xen-vnif", "xenblk", "xen-vbd"];

fn is_eth(name: &str) -> bool {
    name.strip_prefix("eth")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn is_hba(name: &str) -> bool {
    name.strip_prefix("scsi_hostadapter")
        .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
}

/// Plans the alias rewrites across all modprobe configuration files, in file order.
pub fn plan(d: &mut Draft<'_>) -> Result<(), LinuxError> {
    let mut files = Vec::new();
    for f in FILES {
        if f == "/etc/modprobe.d" {
            files.extend(d.list_dir(f)?.into_iter().map(|n| format!("{f}/{n}")));
        } else {
            files.push(f.to_owned());
        }
    }
    let mut hba_seen = false;
    for path in files {
        let Some(text) = d.read(&path)? else { continue };
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["alias", name, driver, ..] if is_eth(name) => {
                    if XEN_DRIVERS.contains(driver) {
                        d.note(format!("{path}: Xen driver alias for {name} replaced"));
                    }
                    out.push_str(&format!("alias {name} virtio_net\n"));
                }
                ["alias", name, _, ..] if is_hba(name) => {
                    if !hba_seen {
                        out.push_str(&format!("alias {name} virtio_blk\n"));
                        hba_seen = true;
                    }
                }
                _ => out.push_str(line),
            }
        }
        // Keep lines that were already right byte-identical (idempotence).
        let out = if normalized(&out) == normalized(&text) {
            text.clone()
        } else {
            out
        };
        d.edit(&path, out, REASON)?;
    }
    Ok(())
}

fn normalized(s: &str) -> Vec<Vec<&str>> {
    s.lines().map(|l| l.split_whitespace().collect()).collect()
}
