//! Windows services and installed software that matter to conversion: storage, network,
//! hypervisor and virtio drivers in the current control set, hypervisor tools in the
//! Uninstall keys, and which device database (DriverDatabase or CriticalDeviceDatabase)
//! binds boot devices.

use nt_hive::KeyNode;
use serde::Serialize;

/// One service key (`ControlSet00N\Services\NAME`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct WindowsService {
    pub name: String,
    /// storage, network, hypervisor, virtio.
    pub role: String,
    /// 0 boot, 1 system, 2 automatic, 3 manual, 4 disabled.
    pub start: Option<u32>,
    /// 1 kernel driver, 2 filesystem driver, 0x10 own process, 0x20 shared process.
    pub service_type: Option<u32>,
    pub group: Option<String>,
    pub image_path: Option<String>,
}

/// One Uninstall entry of hypervisor tools.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct WindowsUninstall {
    /// The subkey of `Microsoft\Windows\CurrentVersion\Uninstall`.
    pub key: String,
    /// `vmware-tools`, `xen-tools` or `parallels-tools`.
    pub tools: String,
    pub display_name: String,
    pub display_version: Option<String>,
    pub uninstall_string: Option<String>,
}

/// Services by name (lowercase) and role: what virt-v2v installs, disables or removes.
const KNOWN: &[(&str, &str)] = &[
    ("viostor", "virtio"),
    ("vioscsi", "virtio"),
    ("netkvm", "virtio"),
    ("balloon", "virtio"),
    ("vioser", "virtio"),
    ("viorng", "virtio"),
    ("viofs", "virtio"),
    ("pvpanic", "virtio"),
    ("qemu-ga", "virtio"),
    ("pvscsi", "storage"),
    ("lsi_sas", "storage"),
    ("lsi_sas2", "storage"),
    ("lsi_scsi", "storage"),
    ("megasas", "storage"),
    ("storahci", "storage"),
    ("msahci", "storage"),
    ("stornvme", "storage"),
    ("iastorv", "storage"),
    ("intelide", "storage"),
    ("pciide", "storage"),
    ("atapi", "storage"),
    ("vmxnet3ndis6", "network"),
    ("vmxnet3", "network"),
    ("vmxnet", "network"),
    ("e1iexpress", "network"),
    ("e1g60", "network"),
    ("vmtools", "hypervisor"),
    ("vmci", "hypervisor"),
    ("vmhgfs", "hypervisor"),
    ("vm3dmp", "hypervisor"),
    ("vmmouse", "hypervisor"),
    ("vmusbmouse", "hypervisor"),
    ("vmmemctl", "hypervisor"),
    ("vmvss", "hypervisor"),
    ("xenbus", "hypervisor"),
    ("xenfilt", "hypervisor"),
    ("xeniface", "hypervisor"),
    ("xenvif", "hypervisor"),
    ("xenvbd", "hypervisor"),
    ("xennet", "hypervisor"),
    ("xensvc", "hypervisor"),
    ("xenpci", "hypervisor"),
    // The old RHEL Xen PV block driver, and Parallels' drivers (virt-v2v disables them).
    ("rhelscsi", "hypervisor"),
    ("prl_boot", "hypervisor"),
    ("prl_dd", "hypervisor"),
    ("prl_eth5", "hypervisor"),
    ("prl_fs", "hypervisor"),
    ("prl_memdev", "hypervisor"),
    ("prl_mouf", "hypervisor"),
    ("prl_pv32", "hypervisor"),
    ("prl_pv64", "hypervisor"),
    ("prl_scsi", "hypervisor"),
    ("prl_sound", "hypervisor"),
    ("prl_strg", "hypervisor"),
    ("prl_tg", "hypervisor"),
    ("prl_time", "hypervisor"),
    ("prl_uprof", "hypervisor"),
    ("prl_va", "hypervisor"),
];

type K<'h> = KeyNode<'h, &'h [u8]>;

fn string(k: &K<'_>, name: &str) -> Option<String> {
    let v = k.value(name)?.ok()?;
    v.string_data().ok().map(|s| s.trim_end_matches('\0').to_string())
}

fn dword(k: &K<'_>, name: &str) -> Option<u32> {
    k.value(name)?.ok()?.dword_data().ok()
}

fn children<'h>(k: &K<'h>) -> Vec<(String, K<'h>)> {
    let Some(Ok(subs)) = k.subkeys() else { return Vec::new() };
    subs.filter_map(|s| s.ok())
        .filter_map(|s| Some((s.name().ok()?.to_string_lossy(), s)))
        .take(100_000)
        .collect()
}

/// The known services under `set\Services`, sorted by name.
pub(crate) fn services(set: &K<'_>) -> Vec<WindowsService> {
    let Some(Ok(services)) = set.subkey("Services") else { return Vec::new() };
    let mut out: Vec<WindowsService> = children(&services)
        .into_iter()
        .filter_map(|(name, k)| {
            let lower = name.to_ascii_lowercase();
            let role = KNOWN.iter().find(|(n, _)| *n == lower)?.1;
            Some(WindowsService {
                role: role.into(),
                start: dword(&k, "Start"),
                service_type: dword(&k, "Type"),
                group: string(&k, "Group"),
                image_path: string(&k, "ImagePath"),
                name,
            })
        })
        .collect();
    out.sort_by_key(|s| s.name.to_ascii_lowercase());
    out
}

/// `DriverDatabase` when SYSTEM has one (Windows 8 and later), else
/// `CriticalDeviceDatabase` when the control set has one.
pub(crate) fn device_database(root: &K<'_>, set: &K<'_>) -> Option<String> {
    if matches!(root.subkey("DriverDatabase"), Some(Ok(_))) {
        return Some("DriverDatabase".into());
    }
    match set.subpath("Control\\CriticalDeviceDatabase") {
        Some(Ok(_)) => Some("CriticalDeviceDatabase".into()),
        _ => None,
    }
}

/// Which tools an Uninstall entry belongs to, by its display name and publisher.
fn tools_of(display: &str, publisher: &str) -> Option<&'static str> {
    let d = display.to_ascii_lowercase();
    let p = publisher.to_ascii_lowercase();
    if d == "vmware tools" || (p.starts_with("vmware") && d.contains("tools")) {
        return Some("vmware-tools");
    }
    if p.starts_with("parallels") && d.contains("tools") {
        return Some("parallels-tools");
    }
    let xen = d.contains("xen") && (d.contains("tools") || d.contains("pv") || d.contains("agent") || d.contains("driver"));
    (xen || p.contains("xen project")).then_some("xen-tools")
}

/// Hypervisor tools in SOFTWARE's Uninstall keys (64-bit and WOW6432Node), by key name.
pub(crate) fn uninstall(software: &K<'_>) -> Vec<WindowsUninstall> {
    let mut out = Vec::new();
    for base in ["Microsoft\\Windows\\CurrentVersion\\Uninstall", "WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall"] {
        let Some(Ok(u)) = software.subpath(base) else { continue };
        for (key, k) in children(&u) {
            let Some(display_name) = string(&k, "DisplayName") else { continue };
            let publisher = string(&k, "Publisher").unwrap_or_default();
            if let Some(tools) = tools_of(&display_name, &publisher) {
                out.push(WindowsUninstall {
                    key,
                    tools: tools.into(),
                    display_version: string(&k, "DisplayVersion"),
                    uninstall_string: string(&k, "UninstallString"),
                    display_name,
                });
            }
        }
    }
    out
}
