//! libvirt domain XML reader → [`VmModel`]: `type='xen'` (PV and HVM), `type='vmware'`
//! (ESX driver output, `[datastore] path` sources left [`DiskSource::Unresolved`] until
//! [`VmModel::resolve_datastores`] maps them) and `type='kvm'`/`'qemu'` for round trips.

use crate::model::xml::{self, Element};
use crate::model::{
    normalize_mac, normalize_uuid, read_limited, split_datastore_path, Bus, ConfigError, CpuTopology, Disk, DiskSource,
    Firmware, NetKind, Nic, PvBoot, Removable, RemovableKind, VmModel,
};
use crate::xen::vdev_position;
use std::path::{Path, PathBuf};

const MAX_XML: u64 = 16 << 20;

/// Reads a domain XML file.
pub fn read_libvirt_xml(path: &Path) -> Result<VmModel, ConfigError> {
    let bytes = read_limited(path, MAX_XML)?;
    let text = String::from_utf8(bytes).map_err(|e| ConfigError::invalid(path, "encoding", e.utf8_error().valid_up_to(), "not UTF-8 at this byte offset"))?;
    parse_libvirt_xml(&text, path)
}

fn memory_unit(u: &str) -> Option<u64> {
    Some(match u {
        "b" | "bytes" => 1,
        "KB" => 1000,
        "k" | "KiB" => 1 << 10,
        "MB" => 1000 * 1000,
        "M" | "MiB" => 1 << 20,
        "GB" => 1000 * 1000 * 1000,
        "G" | "GiB" => 1 << 30,
        "TB" => 1000 * 1000 * 1000 * 1000,
        "T" | "TiB" => 1 << 40,
        _ => return None,
    })
}

fn field(e: &Element, what: &str) -> String {
    format!("line {}: {what}", e.line)
}

fn number<T: std::str::FromStr>(e: &Element, what: &str, path: &Path) -> Result<T, ConfigError> {
    e.text.trim().parse().map_err(|_| ConfigError::invalid(path, field(e, what), e.text.trim(), "not a number"))
}

fn bus_of(s: &str) -> Option<Bus> {
    Some(match s {
        "ide" => Bus::Ide,
        "scsi" => Bus::Scsi,
        "sata" => Bus::Sata,
        "virtio" => Bus::Virtio,
        "xen" => Bus::Xen,
        "fdc" => Bus::Fdc,
        "usb" => Bus::Usb,
        "nvme" => Bus::Nvme,
        _ => return None,
    })
}

/// Parses domain XML text; `path` names the file in errors.
pub fn parse_libvirt_xml(text: &str, path: &Path) -> Result<VmModel, ConfigError> {
    let root = xml::parse(text, path)?;
    if root.name != "domain" {
        return Err(ConfigError::invalid(path, "root element", &root.name, "expected <domain>"));
    }
    let dtype = root.attr("type").unwrap_or("").to_string();
    if !matches!(dtype.as_str(), "xen" | "vmware" | "kvm" | "qemu") {
        return Err(ConfigError::invalid(path, field(&root, "domain type"), &dtype, "expected xen, vmware, kvm or qemu"));
    }
    let mut vm = VmModel { hypervisor: dtype.clone(), vcpus: 1, ..Default::default() };
    vm.name = root.child_text("name").filter(|n| !n.is_empty()).ok_or_else(|| ConfigError::missing(path, "<name>", "the domain has no name"))?.to_string();
    for (tag, slot) in [("uuid", &mut vm.uuid), ("hwuuid", &mut vm.bios_uuid), ("genid", &mut vm.genid)] {
        if let Some(e) = root.child(tag) {
            let t = e.text.trim();
            if !t.is_empty() {
                *slot = Some(normalize_uuid(t).ok_or_else(|| ConfigError::invalid(path, field(e, &format!("<{tag}>")), t, "not a UUID"))?);
            }
        }
    }
    for entry in root.path(&["sysinfo", "system"]).into_iter().flat_map(|s| s.children("entry")) {
        if entry.attr("name") == Some("uuid") {
            let t = entry.text.trim();
            vm.bios_uuid = Some(normalize_uuid(t).ok_or_else(|| ConfigError::invalid(path, field(entry, "sysinfo uuid"), t, "not a UUID"))?);
        }
    }
    if vm.bios_uuid.is_none() && dtype != "vmware" {
        vm.bios_uuid = vm.uuid.clone();
    }
    let mem = root.child("memory").ok_or_else(|| ConfigError::missing(path, "<memory>", "the domain has no memory size"))?;
    let unit_s = mem.attr("unit").unwrap_or("KiB");
    let unit = memory_unit(unit_s).ok_or_else(|| ConfigError::invalid(path, field(mem, "memory unit"), unit_s, "unknown unit"))?;
    let n: u64 = number(mem, "<memory>", path)?;
    vm.memory_bytes = n.checked_mul(unit).filter(|b| ((1 << 20)..=(16 << 40)).contains(b)).ok_or_else(|| ConfigError::invalid(path, field(mem, "<memory>"), n, "not a memory size"))?;
    if let Some(v) = root.child("vcpu") {
        let n: u32 = number(v, "<vcpu>", path)?;
        vm.vcpus = Some(n).filter(|n| (1..=1024).contains(n)).ok_or_else(|| ConfigError::invalid(path, field(v, "<vcpu>"), n, "not a vCPU count"))?;
        // `<vcpu current='2'>4</vcpu>`: 2 online at boot, at most 4 (as Xen's vcpus/maxvcpus).
        if let Some(c) = v.attr("current") {
            let cur = c.trim().parse::<u32>().ok().filter(|&k| (1..=n).contains(&k)).ok_or_else(|| {
                ConfigError::invalid(path, field(v, "<vcpu> current"), c, format!("not a vCPU count up to {n}"))
            })?;
            if cur < n {
                vm.max_vcpus = Some(n);
                vm.vcpus = cur;
            }
        }
    }
    if let Some(t) = root.path(&["cpu", "topology"]) {
        let get = |a: &str| -> Result<u32, ConfigError> {
            let v = t.attr(a).unwrap_or("1");
            v.parse().ok().filter(|&n: &u32| n >= 1).ok_or_else(|| ConfigError::invalid(path, field(t, &format!("topology {a}")), v, "not a count"))
        };
        let topo = CpuTopology { sockets: get("sockets")?, cores: get("cores")?, threads: get("threads")? };
        if topo.sockets.saturating_mul(topo.cores).saturating_mul(topo.threads) == vm.max_vcpus.unwrap_or(vm.vcpus) {
            vm.topology = Some(topo);
        } else {
            vm.warnings.push(format!("CPU topology does not multiply to {} vCPUs, ignored", vm.vcpus));
        }
    }
    let os = root.child("os");
    let os_type = os.and_then(|o| o.child("type"));
    let machine = os_type.and_then(|t| t.attr("machine")).unwrap_or("");
    let is_pv = dtype == "xen" && (machine == "xenpv" || os_type.is_some_and(|t| matches!(t.text.trim(), "linux" | "xen")));
    if let Some(o) = os {
        let loader = o.child("loader");
        let efi_loader = loader.is_some_and(|l| {
            let t = l.text.to_ascii_lowercase();
            t.contains("ovmf") || t.contains("efi") || l.attr("type") == Some("pflash")
        });
        if o.attr("firmware") == Some("efi") || efi_loader {
            vm.firmware = Firmware::Uefi;
        }
        vm.secure_boot = loader.and_then(|l| l.attr("secure")) == Some("yes")
            || o.path(&["firmware", "feature"]).is_some_and(|f| f.attr("name") == Some("secure-boot") && f.attr("enabled") == Some("yes"));
    }
    if is_pv {
        let o = os;
        vm.pv = Some(PvBoot {
            kind: "pv".into(),
            kernel: o.and_then(|o| o.child_text("kernel")).map(PathBuf::from),
            ramdisk: o.and_then(|o| o.child_text("initrd")).map(PathBuf::from),
            cmdline: o.and_then(|o| o.child_text("cmdline")).map(str::to_string),
            bootloader: root.child_text("bootloader").filter(|b| !b.is_empty()).map(str::to_string),
        });
    }
    vm.os_hint = root
        .path(&["metadata", "libosinfo", "os"])
        .and_then(|o| o.attr("id"))
        .map(str::to_string);
    let Some(devices) = root.child("devices") else { return Ok(vm) };
    let scsi_models: Vec<(u32, String)> = devices
        .children("controller")
        .filter(|c| c.attr("type") == Some("scsi"))
        .filter_map(|c| Some((c.attr("index")?.parse().ok()?, c.attr("model")?.to_string())))
        .collect();
    for d in devices.children("disk") {
        read_disk(d, &dtype, is_pv, &scsi_models, path, &mut vm)?;
    }
    vm.disks.sort_by_key(|d| (d.bus, d.controller, d.unit));
    for i in devices.children("interface") {
        let mac = match i.child("mac").and_then(|m| m.attr("address")) {
            Some(m) => Some(normalize_mac(m).ok_or_else(|| ConfigError::invalid(path, field(i, "interface mac"), m, "not a MAC address"))?),
            None => None,
        };
        let src = i.child("source");
        let (kind, network) = match i.attr("type") {
            Some("network") => (NetKind::Network, src.and_then(|s| s.attr("network")).unwrap_or("default")),
            Some("bridge") => (NetKind::Bridge, src.and_then(|s| s.attr("bridge")).unwrap_or("")),
            _ => (NetKind::Network, "default"),
        };
        if network.is_empty() {
            return Err(ConfigError::invalid(path, field(i, "interface source bridge"), "", "bridge interface without a bridge"));
        }
        vm.nics.push(Nic { mac, model: i.child("model").and_then(|m| m.attr("type")).map(str::to_string), kind, network: network.to_string() });
    }
    vm.display = devices.child("graphics").and_then(|g| g.attr("type")).map(str::to_string);
    vm.sound = devices.child("sound").and_then(|s| s.attr("model")).map(str::to_string);
    Ok(vm)
}

fn read_disk(d: &Element, dtype: &str, is_pv: bool, scsi: &[(u32, String)], path: &Path, vm: &mut VmModel) -> Result<(), ConfigError> {
    let device = d.attr("device").unwrap_or("disk");
    let target = d.child("target");
    let dev = target.and_then(|t| t.attr("dev")).unwrap_or("");
    let bus_s = target.and_then(|t| t.attr("bus"));
    let pos = vdev_position(dev);
    let bus = match bus_s {
        Some(b) => bus_of(b).ok_or_else(|| ConfigError::invalid(path, field(d, "disk target bus"), b, "unknown bus"))?,
        None if is_pv => Bus::Xen,
        None => pos.map(|p| p.0).ok_or_else(|| ConfigError::invalid(path, field(d, "disk target dev"), dev, "cannot tell the bus"))?,
    };
    let addr = d.child("address").filter(|a| a.attr("type") == Some("drive"));
    let attr_num = |a: &Element, n: &str| a.attr(n).and_then(|v| v.parse::<u32>().ok());
    let controller = addr.and_then(|a| attr_num(a, "controller")).unwrap_or(0);
    let unit = match addr.and_then(|a| attr_num(a, "unit")) {
        Some(u) => u.saturating_add(addr.and_then(|a| attr_num(a, "bus")).unwrap_or(0).saturating_mul(2 * u32::from(bus == Bus::Ide))),
        None => pos.map(|p| p.1).unwrap_or(0),
    };
    let src = d.child("source");
    let location = src.and_then(|s| s.attr("file").or(s.attr("dev")).or(s.attr("name")));
    if matches!(device, "cdrom" | "floppy") {
        vm.removables.push(Removable {
            kind: if device == "cdrom" { RemovableKind::Cdrom } else { RemovableKind::Floppy },
            bus,
            controller,
            unit,
            media: location.map(str::to_string),
        });
        return Ok(());
    }
    let Some(loc) = location.filter(|l| !l.is_empty()) else {
        return Err(ConfigError::invalid(path, field(d, "disk source"), dev, "disk has no source file or device"));
    };
    let driver = d.child("driver");
    let dname = driver.and_then(|x| x.attr("name")).unwrap_or("");
    let format = match driver.and_then(|x| x.attr("type")) {
        Some("aio") => Some("raw".to_string()),
        Some(t) => Some(t.to_string()),
        None if dtype == "vmware" => Some("vmdk".into()),
        None if dname == "phy" => Some("raw".into()),
        None => None,
    };
    let source = if split_datastore_path(loc).is_some() {
        DiskSource::Unresolved { reference: loc.to_string() }
    } else if d.attr("type") == Some("block") || dname == "phy" {
        DiskSource::Block { path: PathBuf::from(loc) }
    } else if d.attr("type") == Some("network") {
        return Err(ConfigError::invalid(path, field(d, "disk type"), "network", "network disks are not supported"));
    } else {
        DiskSource::File { path: PathBuf::from(loc) }
    };
    vm.disks.push(Disk {
        source,
        format,
        bus,
        controller_model: match bus {
            Bus::Scsi => scsi.iter().find(|(i, _)| *i == controller).map(|(_, m)| m.clone()),
            _ => None,
        },
        controller,
        unit,
        target_dev: (!dev.is_empty()).then(|| dev.to_string()),
        readonly: d.child("readonly").is_some(),
        capacity: None,
    });
    Ok(())
}
