//! Inspection of Windows roots beyond version and hostname: conversion-relevant services,
//! hypervisor tools from the Uninstall keys, the device database, and the dirty /
//! hibernated / Fast Startup state. Volumes are made by mkntfs and filled through an
//! ntfs-3g FUSE mount with hives built by hivexregedit. Oracles: hivexget on the same
//! hives, ntfs-3g's refusal to mount a hibernated volume, ntfsls's refusal of a volume
//! scheduled for check (dirty, set by ntfsfix).

mod windows_support;

use ferry_formats::disk::RawImage;
use ferry_inspectors::os::OsInfo;
use ferry_inspectors::{inspect, Device};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use windows_support::*;

const SYS: &str = "HKEY_LOCAL_MACHINE\\SYSTEM";
const SOFT: &str = "HKEY_LOCAL_MACHINE\\SOFTWARE";

/// An NTFS volume holding `Windows/System32/config/{SYSTEM,SOFTWARE}` and optionally a
/// hiberfil.sys with a hibernation header. `None` when FUSE mounts are not allowed here.
fn volume(dir: &Path, name: &str, system: &Path, software: &Path, hiber: Option<&[u8]>) -> Option<PathBuf> {
    let mut files = vec![
        ("Windows/System32/config/SYSTEM", std::fs::read(system).unwrap()),
        ("Windows/System32/config/SOFTWARE", std::fs::read(software).unwrap()),
    ];
    if let Some(h) = hiber {
        files.push(("hiberfil.sys", hiberfil(h, 64 << 10)));
    }
    ntfs_volume(dir, name, 48, &files)
}

fn inspect_os(img: &Path) -> OsInfo {
    let raw = RawImage::open(img).unwrap();
    let r = inspect(&[Device::new("/dev/sda", Arc::new(raw))]).unwrap();
    assert_eq!(r.operating_systems.len(), 1, "{:?}", r.warnings);
    r.operating_systems.into_iter().next().unwrap()
}

fn get(hive: &Path, key: &str, val: &str) -> String {
    run("hivexget", &[hive.to_str().unwrap(), key, val]).trim_end().to_string()
}

#[test]
fn server_2022_services_tools_and_state() {
    if !have("hivexregedit") || !have("mkntfs") || !have("ntfs-3g") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let system = build_hive(t.path(), "SYSTEM", 5, Some(&support().join("system-2022.reg")), SYS);
    let software = build_hive(t.path(), "SOFTWARE", 5, Some(&support().join("software-2022.reg")), SOFT);
    let Some(img) = volume(t.path(), "clean.img", &system, &software, None) else { return };
    let os = inspect_os(&img);
    assert_eq!(os.product_name, get(&software, "Microsoft\\Windows NT\\CurrentVersion", "ProductName"));
    assert_eq!(os.windows_build.as_deref(), Some("20348"));
    assert_eq!(os.osinfo, "win2k22");
    assert_eq!(os.arch, "x86_64");
    assert_eq!(os.hostname, get(&system, "ControlSet001\\Services\\Tcpip\\Parameters", "Hostname"));
    assert_eq!(os.windows_device_database.as_deref(), Some("DriverDatabase"));

    let names: Vec<&str> = os.windows_services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["pvscsi", "vmci", "VMTools", "vmxnet3ndis6"]);
    for s in &os.windows_services {
        let k = format!("ControlSet001\\Services\\{}", s.name);
        assert_eq!(s.start.map(|v| v.to_string()), Some(get(&system, &k, "Start")), "{}", s.name);
        assert_eq!(s.service_type.map(|v| v.to_string()), Some(get(&system, &k, "Type")), "{}", s.name);
    }
    let pv = &os.windows_services[0];
    assert_eq!((pv.role.as_str(), pv.group.as_deref()), ("storage", Some("SCSI miniport")));
    assert_eq!(pv.image_path.as_deref(), Some(get(&system, "ControlSet001\\Services\\pvscsi", "ImagePath").as_str()));

    assert_eq!(os.windows_uninstall.len(), 1);
    let u = &os.windows_uninstall[0];
    let key = format!("Microsoft\\Windows\\CurrentVersion\\Uninstall\\{}", u.key);
    assert_eq!(u.tools, "vmware-tools");
    assert_eq!(u.display_name, get(&software, &key, "DisplayName"));
    assert_eq!(u.uninstall_string.as_deref(), Some(get(&software, &key, "UninstallString").as_str()));
    assert_eq!(os.hypervisor_tools, ["vmware-tools"]);
    let state = os.windows_state.clone().unwrap();
    assert!(!state.dirty && !state.hibernated && !state.fast_startup, "{state:?}");
    assert_eq!(os.warnings, Vec::<String>::new());

    // Hibernated with Fast Startup on, then marked dirty by ntfsfix.
    let reg = t.path().join("power.reg");
    std::fs::write(&reg, "Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Control\\Session Manager\\Power]\n\"HiberbootEnabled\"=dword:00000001\n").unwrap();
    merge(&system, &reg, SYS);
    assert_eq!(get(&system, "ControlSet001\\Control\\Session Manager\\Power", "HiberbootEnabled"), "1");
    let Some(img) = volume(t.path(), "hiber.img", &system, &software, Some(b"HIBR")) else { return };
    let mnt = t.path().join("probe.mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let o = Command::new("ntfs-3g").args([img.to_str().unwrap(), mnt.to_str().unwrap()]).output().unwrap();
    let _ = Command::new("umount").arg(&mnt).status();
    assert!(String::from_utf8_lossy(&o.stderr).contains("Windows is hibernated"), "{o:?}");
    let state = inspect_os(&img).windows_state.unwrap();
    assert!(!state.dirty && state.hibernated && state.fast_startup, "{state:?}");

    let _ = Command::new("ntfsfix").arg(&img).output().unwrap();
    let o = Command::new("ntfsls").arg(&img).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("Volume is scheduled for check"), "{o:?}");
    let state = inspect_os(&img).windows_state.unwrap();
    assert!(state.dirty && state.hibernated, "{state:?}");
}

#[test]
fn server_2008r2_xen_and_critical_device_database() {
    if !have("hivexregedit") || !have("mkntfs") || !have("ntfs-3g") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let system = build_hive(t.path(), "SYSTEM", 3, Some(&support().join("system-2008r2.reg")), SYS);
    let software = build_hive(t.path(), "SOFTWARE", 3, Some(&support().join("software-2008r2.reg")), SOFT);
    let Some(img) = volume(t.path(), "w.img", &system, &software, None) else { return };
    let os = inspect_os(&img);
    assert_eq!(os.osinfo, "win2k8r2");
    assert_eq!((os.major_version, os.minor_version), (6, 1));
    assert_eq!(os.windows_current_control_set.as_deref(), Some("ControlSet002"));
    assert_eq!(os.hostname, get(&system, "ControlSet002\\Services\\Tcpip\\Parameters", "Hostname"));
    assert_eq!(os.windows_device_database.as_deref(), Some("CriticalDeviceDatabase"));
    let names: Vec<&str> = os.windows_services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["intelide", "pvscsi", "rhelscsi", "xenbus", "xennet", "xenvbd"]);
    let xenvbd = os.windows_services.iter().find(|s| s.name == "xenvbd").unwrap();
    assert_eq!(xenvbd.start.map(|v| v.to_string()), Some(get(&system, "ControlSet002\\Services\\xenvbd", "Start")));
    let tools: Vec<(&str, &str)> = os.windows_uninstall.iter().map(|u| (u.key.as_str(), u.tools.as_str())).collect();
    assert_eq!(tools, [("Citrix XenTools", "xen-tools"), ("{FE2F6A2C-196E-4210-9C04-2B1BC21F07EF}", "vmware-tools")]);
    assert_eq!(os.hypervisor_tools, ["vmware-tools", "xen-tools"]);
    assert_eq!(os.windows_state, Some(Default::default()));
}
