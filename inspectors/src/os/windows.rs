//! Windows roots: product, version, edition and build from the SOFTWARE hive; current
//! control set, hostname and arch from SYSTEM (read with `nt-hive`).

use super::{GuestFs, OsInfo};
use nt_hive::{Hive, KeyNode};

/// Largest hive read (real SOFTWARE hives are tens of MiB).
const MAX_HIVE: u64 = 512 << 20;

fn key<'h>(root: &KeyNode<'h, &'h [u8]>, path: &str) -> Option<KeyNode<'h, &'h [u8]>> {
    root.subpath(path)?.ok()
}

fn string(k: &KeyNode<'_, &[u8]>, name: &str) -> Option<String> {
    let v = k.value(name)?.ok()?;
    v.string_data().ok().map(|s| s.trim_end_matches('\0').to_string())
}

fn dword(k: &KeyNode<'_, &[u8]>, name: &str) -> Option<u32> {
    k.value(name)?.ok()?.dword_data().ok()
}

/// Reads a hive file from the guest, case-insensitively.
fn hive_file(g: &GuestFs, config: &str, name: &str, os: &mut OsInfo) -> Option<Vec<u8>> {
    let p = g.find_nocase(config, name)?;
    match g.read(&p, MAX_HIVE) {
        Ok(Some(b)) => Some(b),
        Ok(None) => None,
        Err(e) => {
            os.warnings.push(format!("{}: {e}", p));
            None
        }
    }
}

/// Fills `os` for a Windows root.
pub fn inspect(g: &GuestFs, os: &mut OsInfo) {
    os.os_type = "windows".into();
    os.distro = "windows".into();
    os.arch = "unknown".into();
    let Some(sysroot) = g.find_nocase("/", "Windows") else { return };
    os.windows_systemroot = Some(sysroot.replace('/', "\\"));
    let config = g
        .find_nocase(&sysroot, "System32")
        .and_then(|s| g.find_nocase(&s, "config"))
        .unwrap_or_default();
    if let Some(b) = hive_file(g, &config, "SOFTWARE", os) {
        match Hive::new(b.as_slice()) {
            Ok(h) => {
                software(&h, os);
                if let Ok(root) = h.root_key_node() {
                    os.windows_uninstall = super::windows_services::uninstall(&root);
                }
            }
            Err(e) => os.warnings.push(format!("{config}/SOFTWARE: invalid hive: {e}")),
        }
    }
    let mut fast_startup = false;
    if let Some(b) = hive_file(g, &config, "SYSTEM", os) {
        match Hive::new(b.as_slice()) {
            Ok(h) => fast_startup = system(&h, os),
            Err(e) => os.warnings.push(format!("{config}/SYSTEM: invalid hive: {e}")),
        }
    }
    if g.find_nocase("/", "Program Files")
        .and_then(|p| g.find_nocase(&p, "VMware"))
        .and_then(|p| g.find_nocase(&p, "VMware Tools"))
        .is_some()
    {
        os.hypervisor_tools.push("vmware-tools".into());
    }
    let xen_services = os.windows_services.iter().any(|s| s.name.to_ascii_lowercase().starts_with("xen"));
    let vmware_services = os.windows_services.iter().any(|s| s.name.eq_ignore_ascii_case("vmtools"));
    for (tools, by_service) in [("vmware-tools", vmware_services), ("xen-tools", xen_services)] {
        let listed = os.windows_uninstall.iter().any(|u| u.tools == tools);
        if (listed || by_service) && !os.hypervisor_tools.iter().any(|t| t == tools) {
            os.hypervisor_tools.push(tools.into());
        }
    }
    os.windows_state = Some(super::windows_state::read(g, fast_startup, &mut os.warnings));
    os.osinfo = osinfo(os);
}

fn software(h: &Hive<&[u8]>, os: &mut OsInfo) {
    let Ok(root) = h.root_key_node() else { return };
    let Some(cv) = key(&root, "Microsoft\\Windows NT\\CurrentVersion") else {
        os.warnings.push("SOFTWARE: no Microsoft\\Windows NT\\CurrentVersion key".into());
        return;
    };
    os.product_name = string(&cv, "ProductName").unwrap_or_default();
    os.product_variant = string(&cv, "InstallationType").unwrap_or_default();
    os.windows_edition = string(&cv, "EditionID");
    os.windows_build = string(&cv, "CurrentBuildNumber");
    match (dword(&cv, "CurrentMajorVersionNumber"), dword(&cv, "CurrentMinorVersionNumber")) {
        (Some(maj), min) => {
            os.major_version = maj;
            os.minor_version = min.unwrap_or(0);
        }
        (None, _) => {
            let v = string(&cv, "CurrentVersion").unwrap_or_default();
            let mut it = v.split('.');
            os.major_version = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
            os.minor_version = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
        }
    }
}

/// Fills the SYSTEM facts; returns whether Fast Startup is on.
fn system(h: &Hive<&[u8]>, os: &mut OsInfo) -> bool {
    let Ok(root) = h.root_key_node() else { return false };
    let current = key(&root, "Select").and_then(|s| dword(&s, "Current")).unwrap_or(1);
    let cs = format!("ControlSet{current:03}");
    os.windows_current_control_set = Some(cs.clone());
    let Some(set) = key(&root, &cs) else {
        os.warnings.push(format!("SYSTEM: Select\\Current names {cs}, which does not exist"));
        return false;
    };
    os.windows_services = super::windows_services::services(&set);
    os.windows_device_database = super::windows_services::device_database(&root, &set);
    os.hostname = key(&set, "Services\\Tcpip\\Parameters")
        .and_then(|k| string(&k, "Hostname"))
        .or_else(|| key(&set, "Control\\ComputerName\\ComputerName").and_then(|k| string(&k, "ComputerName")))
        .unwrap_or_default();
    if let Some(env) = key(&set, "Control\\Session Manager\\Environment") {
        os.arch = match string(&env, "PROCESSOR_ARCHITECTURE").as_deref() {
            Some("AMD64") => "x86_64",
            Some("x86") => "i386",
            Some("ARM64") => "aarch64",
            _ => "unknown",
        }
        .into();
    }
    key(&set, "Control\\Session Manager\\Power").and_then(|p| dword(&p, "HiberbootEnabled")) == Some(1)
}

/// libosinfo short id, as virt-inspector derives it.
fn osinfo(os: &OsInfo) -> String {
    let server = os.product_variant == "Server" || os.product_name.contains("Server");
    let build: u32 = os.windows_build.as_deref().and_then(|b| b.parse().ok()).unwrap_or(0);
    match (os.major_version, os.minor_version, server) {
        (10, 0, true) if build >= 26100 => "win2k25",
        (10, 0, true) if build >= 20348 => "win2k22",
        (10, 0, true) if build >= 17763 => "win2k19",
        (10, 0, true) => "win2k16",
        (10, 0, false) if build >= 22000 => "win11",
        (10, 0, false) => "win10",
        (6, 3, true) => "win2k12r2",
        (6, 3, false) => "win8.1",
        (6, 2, true) => "win2k12",
        (6, 2, false) => "win8",
        (6, 1, true) => "win2k8r2",
        (6, 1, false) => "win7",
        (6, 0, true) => "win2k8",
        (6, 0, false) => "winvista",
        (5, 2, true) if os.product_name.contains("R2") => "win2k3r2",
        (5, 2, true) => "win2k3",
        // XP Professional x64 is NT 5.2 too, a workstation.
        (5, 2, false) | (5, 1, _) => "winxp",
        _ => "",
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(major: u32, minor: u32, name: &str, build: &str) -> String {
        let os = OsInfo { major_version: major, minor_version: minor, product_name: name.into(), windows_build: Some(build.into()), ..Default::default() };
        osinfo(&os)
    }

    #[test]
    fn osinfo_ids_as_virt_inspector_gives_them() {
        assert_eq!(id(10, 0, "Windows Server 2025 Datacenter", "26100"), "win2k25");
        assert_eq!(id(10, 0, "Windows Server 2022 Standard", "20348"), "win2k22");
        assert_eq!(id(10, 0, "Windows 10 Pro", "22631"), "win11");
        assert_eq!(id(6, 0, "Windows Vista (TM) Business", "6002"), "winvista");
        assert_eq!(id(5, 2, "Microsoft Windows Server 2003 R2", "3790"), "win2k3r2");
        assert_eq!(id(5, 2, "Microsoft Windows Server 2003", "3790"), "win2k3");
        assert_eq!(id(5, 2, "Microsoft Windows XP", "3790"), "winxp");
        assert_eq!(id(5, 1, "Microsoft Windows XP", "2600"), "winxp");
        assert_eq!(id(5, 0, "Microsoft Windows 2000", "2195"), "");
    }
}
