//! `ferry inspect` on a "Windows" disk: MBR, two NTFS volumes (mkntfs), the system one
//! holding SYSTEM and SOFTWARE hives written by hivexsh. Oracles: hivexget on the same
//! hive files, blkid -p, sfdisk --json.

mod inspect_support;
use inspect_support::*;

#[test]
fn windows_every_fact() {
    let Some(dir) = fixtures() else { return };
    let img = dir.join("windows.img");
    let r = inspect_json(std::slice::from_ref(&img));
    let soft = dir.join("SOFTWARE.hive").display().to_string();
    let sys = dir.join("SYSTEM.hive").display().to_string();
    let cv = "Microsoft\\Windows NT\\CurrentVersion";
    let get = |hive: &str, key: &str, val: &str| run("hivexget", &[hive, key, val]).trim_end().to_string();

    let want = sfdisk(&img);
    let parts = r["disks"][0]["partition_table"]["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), want.len());
    for (p, (num, start, size, ty)) in parts.iter().zip(&want) {
        assert_eq!(p["number"], *num);
        assert_eq!(p["start"], start * 512);
        assert_eq!(p["size"], size * 512);
        assert_eq!(p["type_id"].as_str().unwrap(), format!("0x{:0>2}", ty));
        assert_eq!(p["kind"], "ms-basic-data");
    }
    for (dev, (_, start, _, _)) in ["/dev/sda1", "/dev/sda2"].iter().zip(&want) {
        let b = blkid(&img, start * 512);
        let f = fs(&r, dev);
        assert_eq!(f["fstype"], "ntfs");
        assert_eq!(f["uuid"].as_str(), b.get("UUID").map(String::as_str));
        assert_eq!(f["label"].as_str(), b.get("LABEL").map(String::as_str));
    }

    assert_eq!(r["operating_systems"].as_array().unwrap().len(), 1);
    let os = os(&r, "/dev/sda2");
    assert_eq!(os["os_type"], "windows");
    assert_eq!(os["distro"], "windows");
    assert_eq!(os["product_name"], get(&soft, cv, "ProductName"));
    assert_eq!(os["product_variant"], get(&soft, cv, "InstallationType"));
    assert_eq!(os["windows_edition"], get(&soft, cv, "EditionID"));
    assert_eq!(os["windows_build"], get(&soft, cv, "CurrentBuildNumber"));
    assert_eq!(os["major_version"].to_string(), get(&soft, cv, "CurrentMajorVersionNumber"));
    assert_eq!(os["minor_version"].to_string(), get(&soft, cv, "CurrentMinorVersionNumber"));
    let current: u32 = get(&sys, "Select", "Current").parse().unwrap();
    let cs = format!("ControlSet{current:03}");
    assert_eq!(os["windows_current_control_set"], cs);
    assert_eq!(os["hostname"], get(&sys, &format!("{cs}\\Services\\Tcpip\\Parameters"), "Hostname"));
    let arch = get(&sys, &format!("{cs}\\Control\\Session Manager\\Environment"), "PROCESSOR_ARCHITECTURE");
    assert_eq!(arch, "AMD64");
    assert_eq!(os["arch"], "x86_64");
    assert_eq!(os["windows_systemroot"], "\\Windows");
    assert_eq!(os["osinfo"], "win2k19");
    assert_eq!(os["hypervisor_tools"], serde_json::json!(["vmware-tools"]));
    assert_eq!(os["warnings"], serde_json::json!([]));

    let xml = ferry(&["inspect", "--xml", &img.display().to_string()]);
    for want in [
        "<name>windows</name>",
        "<product_name>Windows Server 2019 Standard</product_name>",
        "<product_variant>Server</product_variant>",
        "<windows_systemroot>\\Windows</windows_systemroot>",
        "<windows_current_control_set>ControlSet002</windows_current_control_set>",
        "<hostname>win2019-ad</hostname>",
    ] {
        assert!(xml.contains(want), "missing {want} in\n{xml}");
    }
}
