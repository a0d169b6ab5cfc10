//! The OVF envelope (`.ovf` XML, OVF 1.x and 2.0) → [`VmModel`]. Elements are matched by
//! local name, so `rasd:`, `sasd:`, `epasd:` and unprefixed spellings are alike.

use crate::model::xml::{self, Element};
use crate::model::{
    one_line, normalize_mac, normalize_uuid, Bus, ConfigError, CpuTopology, Disk, DiskSource, Firmware, NetKind, Nic, Removable,
    RemovableKind, VmModel,
};
use std::collections::BTreeMap;
use std::path::Path;

/// A `References/File`.
#[derive(Clone, Debug)]
pub struct FileRef {
    pub href: String,
    pub size: Option<u64>,
    pub gzip: bool,
    pub chunked: bool,
    /// `ovf:size` as written.
    pub size_text: Option<String>,
}

/// Turns a File reference into a disk source (checks presence, escape, size, digests).
pub type Resolver<'a> = dyn FnMut(&FileRef) -> Result<DiskSource, ConfigError> + 'a;

/// Bytes per unit for `byte * 2^20`, `MegaBytes`, `MB`, `GigaBytes`...
pub fn units(s: &str) -> Option<u64> {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
    match t.as_str() {
        "" | "byte" | "bytes" => return Some(1),
        "kilobytes" | "kb" | "kib" => return Some(1 << 10),
        "megabytes" | "mb" | "mib" => return Some(1 << 20),
        "gigabytes" | "gb" | "gib" => return Some(1 << 30),
        "terabytes" | "tb" | "tib" => return Some(1 << 40),
        _ => {}
    }
    // byte*2^N, optionally byte*B^N*M
    let rest = t.strip_prefix("byte*")?;
    let (base, exp) = rest.split_once('^')?;
    let base: u64 = base.parse().ok()?;
    let exp: u32 = exp.parse().ok()?;
    base.checked_pow(exp)
}

fn refs(root: &Element) -> BTreeMap<String, FileRef> {
    let mut out = BTreeMap::new();
    if let Some(r) = root.child("References") {
        for f in r.children("File") {
            if let (Some(id), Some(href)) = (f.attr("id"), f.attr("href")) {
                out.insert(
                    id.to_string(),
                    FileRef {
                        href: href.to_string(),
                        size: f.attr("size").and_then(|s| s.trim().parse().ok()),
                        gzip: f.attr("compression").is_some_and(|c| c.eq_ignore_ascii_case("gzip")),
                        chunked: f.attr("chunkSize").is_some(),
                        size_text: f.attr("size").map(str::to_string),
                    },
                );
            }
        }
    }
    out
}

/// What decompressing the archive may produce at most: declared file sizes (or disk
/// capacities when a size is missing) plus slack for metadata.
pub fn budget(text: &str) -> u64 {
    let Ok(root) = xml::parse(text, Path::new("budget.ovf")) else { return super::archive::PRE_OVF_BUDGET };
    let files = refs(&root);
    let mut caps: BTreeMap<&str, u64> = BTreeMap::new();
    for d in root.child("DiskSection").into_iter().flat_map(|s| s.children("Disk")) {
        let unit = d.attr("capacityAllocationUnits").and_then(units).unwrap_or(1);
        if let (Some(f), Some(c)) = (d.attr("fileRef"), d.attr("capacity").and_then(|c| c.trim().parse::<u64>().ok())) {
            caps.insert(f, c.saturating_mul(unit));
        }
    }
    let mut total: u64 = 64 << 20;
    for (id, f) in &files {
        let size = f.size.or_else(|| caps.get(id.as_str()).copied()).unwrap_or(0);
        total = total.saturating_add(size).saturating_add(1 << 20);
    }
    total
}

fn num(e: &Element, child: &str, path: &Path) -> Result<Option<u64>, ConfigError> {
    match e.child_text(child) {
        None | Some("") => Ok(None),
        Some(t) => t.parse::<u64>().map(Some).map_err(|_| {
            ConfigError::invalid(path, format!("line {}: {child}", e.child(child).map(|c| c.line).unwrap_or(e.line)), t, "not a number")
        }),
    }
}

struct Controller {
    bus: Bus,
    model: Option<String>,
    index: u32,
}

/// Parses the envelope. `resolve` maps each disk's File reference to its bytes.
/// `want` picks one VirtualSystem by id or Name when the OVF holds several.
pub fn parse(text: &str, path: &Path, want: Option<&str>, resolve: &mut Resolver<'_>) -> Result<VmModel, ConfigError> {
    let root = xml::parse(text, path)?;
    if root.name != "Envelope" {
        return Err(ConfigError::invalid(path, "root element", &root.name, "expected an OVF Envelope"));
    }
    let files = refs(&root);
    let vs = find_system(&root, path, want)?;
    let props = properties(&root, vs);
    let mut disks_by_id: BTreeMap<String, (&Element, Option<u64>)> = BTreeMap::new();
    let sections = root.children.iter().chain(vs.children.iter());
    for s in sections.filter(|c| c.name == "DiskSection" || c.name == "VirtualDiskSection") {
        for d in s.children("Disk") {
            let id = d.attr("diskId").unwrap_or("").to_string();
            let cap = match d.attr("capacity") {
                Some(c) => Some(capacity(d, c, &props, path)?),
                None => None,
            };
            disks_by_id.insert(id, (d, cap));
        }
    }
    let mut vm = VmModel { hypervisor: "ova".into(), vcpus: 1, ..Default::default() };
    vm.name = vs.child_text("Name").filter(|n| !n.is_empty()).or(vs.attr("id")).unwrap_or("").to_string();
    if vm.name.is_empty() {
        return Err(ConfigError::missing(path, format!("line {}: VirtualSystem Name", vs.line), "the VM has no name"));
    }
    if let Some(os) = vs.child("OperatingSystemSection") {
        vm.os_hint = os
            .attr("osType")
            .map(str::to_string)
            .or_else(|| os.child_text("OSType").map(str::to_string))
            .or_else(|| os.attr("id").map(|id| format!("cim:{id}")));
    }
    if let Some(m) = vs.child("Machine") {
        vm.uuid = m.attr("uuid").and_then(normalize_uuid);
    }
    let hw = vs.child("VirtualHardwareSection").ok_or_else(|| ConfigError::other(path, "no VirtualHardwareSection"))?;
    if let Some(sys) = hw.child("System") {
        if let Some(u) = sys.child_text("VirtualSystemIdentifier").and_then(normalize_uuid) {
            vm.uuid.get_or_insert(u);
        }
    }
    for c in hw.children("Config") {
        match (c.attr("key"), c.attr("value")) {
            (Some("firmware"), Some(v)) => match v.to_ascii_lowercase().as_str() {
                "efi" => vm.firmware = Firmware::Uefi,
                "bios" => vm.firmware = Firmware::Bios,
                _ => return Err(ConfigError::invalid(path, format!("line {}: vmw:Config firmware", c.line), v, "expected bios or efi")),
            },
            (Some("uefi.secureBoot.enabled"), Some(v)) => vm.secure_boot = v.eq_ignore_ascii_case("true"),
            (Some("uuid"), Some(v)) => vm.bios_uuid = normalize_uuid(v),
            _ => {}
        }
    }
    // Ranged items (`ovf:bound="min|max"`) give limits; the value used is the `normal` one.
    let items: Vec<&Element> = hw
        .children
        .iter()
        .filter(|c| c.name.ends_with("Item"))
        .filter(|c| c.attr("bound").is_none_or(|b| b.eq_ignore_ascii_case("normal")))
        .collect();
    let mut controllers: BTreeMap<String, Controller> = BTreeMap::new();
    let mut memory = None;
    for it in &items {
        let rt = num(it, "ResourceType", path)?.unwrap_or(0);
        let id = it.child_text("InstanceID").unwrap_or("").to_string();
        let sub = it.child_text("ResourceSubType").map(str::to_string);
        let addr = num(it, "Address", path).ok().flatten().unwrap_or(0) as u32;
        match rt {
            3 => {
                let q = num(it, "VirtualQuantity", path)?.unwrap_or(1);
                vm.vcpus = u32::try_from(q).ok().filter(|&n| (1..=1024).contains(&n)).ok_or_else(|| {
                    let shown = it.child_text("VirtualQuantity").unwrap_or("");
                    ConfigError::invalid(path, format!("line {}: CPU VirtualQuantity", it.line), shown, "not a vCPU count")
                })?;
                if let Some(c) = num(it, "CoresPerSocket", path)? {
                    let cores = u32::try_from(c).unwrap_or(0);
                    if cores == 0 || !vm.vcpus.is_multiple_of(cores) {
                        return Err(ConfigError::invalid(path, format!("line {}: CoresPerSocket", it.line), c, format!("does not divide {} vCPUs", vm.vcpus)));
                    }
                    vm.topology = Some(CpuTopology { sockets: vm.vcpus / cores, cores, threads: 1 });
                }
            }
            4 => {
                let q = num(it, "VirtualQuantity", path)?.ok_or_else(|| {
                    ConfigError::missing(path, format!("line {}: memory VirtualQuantity", it.line), "the memory Item has no size")
                })?;
                let u = it.child_text("AllocationUnits").unwrap_or("byte * 2^20");
                let unit = units(u).ok_or_else(|| ConfigError::invalid(path, format!("line {}: AllocationUnits", it.line), u, "unknown unit"))?;
                memory = Some(q.checked_mul(unit).filter(|b| ((1 << 20)..=(16 << 40)).contains(b)).ok_or_else(|| {
                    let shown = it.child_text("VirtualQuantity").unwrap_or("");
                    ConfigError::invalid(path, format!("line {}: memory VirtualQuantity", it.line), shown, format!("not a memory size in {u}"))
                })?);
            }
            5 | 6 | 20 => {
                let (bus, model) = match (rt, sub.as_deref().map(str::to_ascii_lowercase).as_deref()) {
                    (5, _) => (Bus::Ide, None),
                    (6, Some("virtualscsi")) => (Bus::Scsi, Some("pvscsi".to_string())),
                    (6, s) => (Bus::Scsi, s.map(str::to_string)),
                    (_, Some("vmware.nvme.controller")) => (Bus::Nvme, Some("nvme".to_string())),
                    (_, _) => (Bus::Sata, Some("ahci".to_string())),
                };
                controllers.insert(id, Controller { bus, model, index: addr });
            }
            24 => vm.display = Some("vga".into()),
            35 => vm.sound = Some(sub.unwrap_or_else(|| "sound".into())),
            _ => {}
        }
    }
    vm.memory_bytes = memory.ok_or_else(|| ConfigError::missing(path, "memory Item (ResourceType 4)", "the OVF states no memory size"))?;
    let mut disks: Vec<(u8, Disk)> = Vec::new();
    for it in &items {
        let rt = num(it, "ResourceType", path)?.unwrap_or(0);
        let parent = it.child_text("Parent").and_then(|p| controllers.get(p));
        let unit = num(it, "AddressOnParent", path)?.unwrap_or(0) as u32;
        let (bus, model, ci) = match parent {
            Some(c) => (c.bus, c.model.clone(), c.index),
            None => (Bus::Ide, None, 0),
        };
        match rt {
            17 => {
                let host = it.child_text("HostResource").unwrap_or("");
                let did = host.strip_prefix("ovf:").unwrap_or(host).trim_start_matches('/').strip_prefix("disk/").unwrap_or("");
                let (d, cap) = disks_by_id.get(did).ok_or_else(|| {
                    ConfigError::invalid(path, format!("line {}: HostResource", it.line), host, "no such disk in DiskSection")
                })?;
                // A Disk without fileRef is a blank disk the import creates, of its capacity.
                let source = match d.attr("fileRef").filter(|f| !f.is_empty()) {
                    None => {
                        let size = cap.ok_or_else(|| {
                            ConfigError::missing(path, format!("line {}: Disk capacity", d.line), "a blank disk (no fileRef) needs a capacity")
                        })?;
                        DiskSource::Blank { size }
                    }
                    Some(fref) => {
                        let f = files.get(fref).ok_or_else(|| {
                            ConfigError::invalid(path, format!("line {}: Disk fileRef", d.line), fref, "no such File in References")
                        })?;
                        resolve(f)?
                    }
                };
                let fmt = d.attr("format").unwrap_or("").to_ascii_lowercase();
                let format = if fmt.contains("vmdk") {
                    Some("vmdk".into())
                } else if fmt.contains("qcow") {
                    Some("qcow2".into())
                } else {
                    None
                };
                let order = match bus {
                    Bus::Scsi => 0,
                    Bus::Sata => 1,
                    Bus::Ide => 2,
                    _ => 3,
                };
                if parent.is_none() {
                    vm.warnings.push(format!("disk {did} has no controller, assuming IDE"));
                }
                disks.push((
                    order,
                    Disk {
                        source,
                        format,
                        bus,
                        controller_model: model,
                        controller: ci,
                        unit,
                        target_dev: None,
                        readonly: false,
                        capacity: *cap,
                    },
                ));
            }
            14..=16 => vm.removables.push(Removable {
                kind: if rt == 14 { RemovableKind::Floppy } else { RemovableKind::Cdrom },
                bus: if rt == 14 { Bus::Fdc } else { bus },
                controller: ci,
                unit,
                media: None,
            }),
            10 => {
                let mac = match it.child_text("Address").filter(|a| !a.is_empty()) {
                    Some(a) => Some(normalize_mac(a).ok_or_else(|| {
                        ConfigError::invalid(path, format!("line {}: NIC Address", it.line), a, "not a MAC address")
                    })?),
                    None => None,
                };
                let n = vm.nics.len();
                vm.nics.push(Nic {
                    mac,
                    model: it.child_text("ResourceSubType").map(str::to_ascii_lowercase),
                    kind: NetKind::Network,
                    network: it.child_text("Connection").filter(|c| !c.is_empty()).map(str::to_string).unwrap_or_else(|| format!("eth{n}")),
                });
            }
            _ => {}
        }
    }
    disks.sort_by_key(|(o, d)| (*o, d.controller, d.unit));
    vm.disks = disks.into_iter().map(|(_, d)| d).collect();
    Ok(vm)
}

fn system_name(e: &Element) -> &str {
    e.child_text("Name").filter(|n| !n.is_empty()).or(e.attr("id")).unwrap_or("")
}

fn find_system<'a>(root: &'a Element, path: &Path, want: Option<&str>) -> Result<&'a Element, ConfigError> {
    let mut found = Vec::new();
    fn walk<'a>(e: &'a Element, out: &mut Vec<&'a Element>) {
        for c in &e.children {
            if c.name == "VirtualSystem" {
                out.push(c);
            } else if c.name == "VirtualSystemCollection" {
                walk(c, out);
            }
        }
    }
    walk(root, &mut found);
    let names = || found.iter().map(|v| one_line(system_name(v))).collect::<Vec<_>>().join(", ");
    if let Some(w) = want {
        return found.iter().copied().find(|v| system_name(v) == w || v.attr("id") == Some(w)).ok_or_else(|| {
            ConfigError::invalid(path, "--vm", w, format!("no such VirtualSystem; the OVF holds: {}", names()))
        });
    }
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(ConfigError::other(path, "no VirtualSystem in the OVF")),
        many => Err(ConfigError::other(
            path,
            format!("{} virtual systems (a VirtualSystemCollection): choose one with --vm NAME: {}", many.len(), names()),
        )),
    }
}

/// ProductSection property defaults (`ovf:key` → `ovf:value`) of the envelope and `vs`.
fn properties<'a>(root: &'a Element, vs: &'a Element) -> BTreeMap<&'a str, &'a str> {
    let mut out = BTreeMap::new();
    // The envelope's, every enclosing VirtualSystemCollection's, then the VM's own (last wins).
    fn collect<'a>(e: &'a Element, out: &mut Vec<&'a Element>) {
        out.extend(e.children("ProductSection"));
        for c in e.children("VirtualSystemCollection") {
            collect(c, out);
        }
    }
    let mut sections: Vec<&Element> = Vec::new();
    collect(root, &mut sections);
    sections.extend(vs.children("ProductSection"));
    for p in sections {
        let props = p.children("Property").chain(p.children("Category").flat_map(|c| c.children("Property")));
        for prop in props {
            if let (Some(k), Some(v)) = (prop.attr("key"), prop.attr("value")) {
                out.insert(k, v);
            }
        }
    }
    out
}

/// A Disk's capacity in bytes: a number or `${property}` (its ProductSection default), times
/// `capacityAllocationUnits`.
fn capacity(d: &Element, c: &str, props: &BTreeMap<&str, &str>, path: &Path) -> Result<u64, ConfigError> {
    let field = || format!("line {}: Disk capacity", d.line);
    let text = match c.trim().strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        Some(key) => props.get(key).copied().ok_or_else(|| {
            ConfigError::invalid(path, field(), c, format!("property {key:?} has no default value in a ProductSection"))
        })?,
        None => c,
    };
    let n: u64 = text.trim().parse().map_err(|_| ConfigError::invalid(path, field(), text, "not a number"))?;
    let unit_s = d.attr("capacityAllocationUnits").unwrap_or("byte");
    let unit = units(unit_s)
        .ok_or_else(|| ConfigError::invalid(path, format!("line {}: capacityAllocationUnits", d.line), unit_s, "unknown unit"))?;
    n.checked_mul(unit).ok_or_else(|| ConfigError::invalid(path, field(), text, "too large"))
}

#[cfg(test)]
mod tests {
    use super::units;

    #[test]
    fn allocation_units() {
        assert_eq!(units("byte * 2^20"), Some(1 << 20));
        assert_eq!(units("byte*2^30"), Some(1 << 30));
        assert_eq!(units("MegaBytes"), Some(1 << 20));
        assert_eq!(units("byte"), Some(1));
        assert_eq!(units("byte * 2^99"), None);
        assert_eq!(units("furlongs"), None);
    }
}
