//! VMware `.vmx` reader → [`VmModel`].
//!
//! Disks come from `scsiN:M`, `sataN:M`, `ideN:M` and `nvmeN:M` (in that order, each sorted
//! by controller and unit), NICs from `ethernetN`. Anything that would give a wrong guest
//! (unparsable memory or vCPUs, a bad MAC or UUID, a disk with no file) is an error.

mod syntax;

pub use syntax::Vmx;

use crate::model::{
    normalize_mac, normalize_uuid, read_limited, Bus, ConfigError, CpuTopology, Disk, DiskSource, Firmware, NetKind,
    Nic, Removable, RemovableKind, VmModel,
};
use std::path::{Path, PathBuf};

/// Largest `.vmx` accepted.
const MAX_VMX: u64 = 4 << 20;

/// Reads a `.vmx` file.
pub fn read_vmx(path: &Path) -> Result<VmModel, ConfigError> {
    let bytes = read_limited(path, MAX_VMX)?;
    parse_vmx(&bytes, path)
}

/// Parses `.vmx` bytes; `path` names the file in errors and anchors relative disk paths.
pub fn parse_vmx(bytes: &[u8], path: &Path) -> Result<VmModel, ConfigError> {
    if bytes.starts_with(b"KDMV") || bytes.starts_with(b"COWD") {
        return Err(ConfigError::other(path, "this is a VMDK disk image, not a VMX file"));
    }
    let text = String::from_utf8_lossy(bytes);
    if text.lines().take(5).any(|l| l.trim().eq_ignore_ascii_case("# Disk DescriptorFile")) {
        return Err(ConfigError::other(path, "this is a VMDK descriptor, not a VMX file"));
    }
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(ConfigError::other(path, format!("not a VMX file: binary content (a NUL byte at offset {at})")));
    }
    let vmx = Vmx::parse(&text);
    if vmx.good_lines == 0 {
        return Err(ConfigError::other(path, "not a VMX file: no `key = \"value\"` line"));
    }
    if vmx.bad_lines > vmx.good_lines {
        return Err(ConfigError::other(
            path,
            format!(
                "not a VMX file: {} of {} lines are not `key = \"value\"` (the first is line {})",
                vmx.bad_lines,
                vmx.bad_lines + vmx.good_lines,
                vmx.first_bad.unwrap_or(0)
            ),
        ));
    }
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut vm = VmModel { hypervisor: "vmware".into(), warnings: vmx.warnings.clone(), ..Default::default() };
    let bad = |key: &str, value: &str, reason: &str| ConfigError::invalid(path, format!("key {key}"), value, reason);

    vm.name = match vmx.get("displayname") {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => {
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "vm".into());
            vm.warnings.push(format!("no displayName, using the file name {stem:?}"));
            stem
        }
    };
    let memsize = match vmx.get("memsize") {
        None => 32,
        Some(v) => v.trim().parse::<u64>().ok().filter(|m| (1..=(16 << 20)).contains(m)).ok_or_else(|| bad("memsize", v, "not a size in MiB"))?,
    };
    vm.memory_bytes = memsize << 20;
    vm.vcpus = match vmx.get("numvcpus") {
        None => 1,
        Some(v) => v.trim().parse::<u32>().ok().filter(|n| (1..=1024).contains(n)).ok_or_else(|| bad("numvcpus", v, "not a vCPU count"))?,
    };
    if let Some(v) = vmx.get("cpuid.corespersocket") {
        let cores = v.trim().parse::<u32>().ok().filter(|&c| c >= 1).ok_or_else(|| bad("cpuid.coresPerSocket", v, "not a number"))?;
        if !vm.vcpus.is_multiple_of(cores) {
            return Err(bad("cpuid.coresPerSocket", v, &format!("does not divide numvcpus {}", vm.vcpus)));
        }
        vm.topology = Some(CpuTopology { sockets: vm.vcpus / cores, cores, threads: 1 });
    }
    match vmx.get("firmware").map(str::to_ascii_lowercase).as_deref() {
        None | Some("bios") => {}
        Some("efi") => vm.firmware = Firmware::Uefi,
        Some(other) => vm.warnings.push(format!("unknown firmware {other:?}, assuming BIOS")),
    }
    if let Some(b) = vmx.get_bool("uefi.secureboot.enabled") {
        vm.secure_boot = b.map_err(|v| bad("uefi.secureBoot.enabled", &v, "not a boolean"))?;
    }
    for (key, slot) in [("uuid.bios", &mut vm.bios_uuid), ("vc.uuid", &mut vm.uuid)] {
        if let Some(v) = vmx.get(key) {
            *slot = Some(normalize_uuid(v).ok_or_else(|| bad(key, v, "not a UUID"))?);
        }
    }
    vm.genid = genid(&vmx, path)?;
    if vm.genid.is_none() && (vmx.get("vm.genid").is_some() != vmx.get("vm.genidx").is_some()) {
        vm.warnings.push("only one of vm.genid / vm.genidX is set, VM generation ID ignored".into());
    }
    vm.os_hint = vmx.get("guestos").map(str::to_string);
    if vmx.get_bool("sound.present") == Some(Ok(true)) {
        vm.sound = Some(vmx.get("sound.virtualdev").unwrap_or("es1371").to_string());
    }
    if vmx.get_bool("svga.present") != Some(Ok(false)) {
        vm.display = Some("vga".into());
    }
    read_disks(&vmx, path, &dir, &mut vm)?;
    read_nics(&vmx, path, &mut vm)?;
    vm.cap_warnings();
    Ok(vm)
}

/// VM generation ID from the two signed 64-bit halves, laid out as virt-v2v does.
fn genid(vmx: &Vmx, path: &Path) -> Result<Option<String>, ConfigError> {
    let (Some(lo), Some(hi)) = (vmx.get("vm.genid"), vmx.get("vm.genidx")) else { return Ok(None) };
    let parse = |k: &str, v: &str| {
        v.trim().parse::<i64>().map_err(|_| ConfigError::invalid(path, format!("key {k}"), v, "not a 64-bit integer"))
    };
    let s = format!("{:016x}{:016x}", parse("vm.genid", lo)?, parse("vm.genidX", hi)?);
    let sub = |a: usize, n: usize| s.get(a..a + n).unwrap_or("").to_string();
    Ok(Some(format!(
        "{}-{}-{}-{}{}-{}{}{}{}{}{}",
        sub(8, 8),
        sub(4, 4),
        sub(0, 4),
        sub(30, 2),
        sub(28, 2),
        sub(26, 2),
        sub(24, 2),
        sub(22, 2),
        sub(20, 2),
        sub(18, 2),
        sub(16, 2)
    )))
}

/// `(controller, unit)` of every present device key `prefixC:U.present = TRUE`.
fn devices(vmx: &Vmx, prefix: &str) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = vmx
        .keys
        .keys()
        .filter_map(|k| {
            let rest = k.strip_prefix(prefix)?.strip_suffix(".present")?;
            let (c, u) = rest.split_once(':')?;
            Some((c.parse().ok()?, u.parse().ok()?))
        })
        .filter(|&(c, u)| c < 64 && u < 256 && vmx.get_bool(&format!("{prefix}{c}:{u}.present")) == Some(Ok(true)))
        .filter(|&(c, _)| !vmx.is_disabled(&format!("{prefix}{c}")))
        .collect();
    out.sort_unstable();
    out
}

fn resolve(dir: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

fn read_disks(vmx: &Vmx, path: &Path, dir: &Path, vm: &mut VmModel) -> Result<(), ConfigError> {
    let mut skipped: Vec<String> = Vec::new();
    for (prefix, bus) in [("scsi", Bus::Scsi), ("sata", Bus::Sata), ("ide", Bus::Ide), ("nvme", Bus::Nvme)] {
        for (c, u) in devices(vmx, prefix) {
            let ns = format!("{prefix}{c}:{u}");
            let dtype = vmx.get(&format!("{ns}.devicetype")).map(str::to_ascii_lowercase);
            let file = vmx.get(&format!("{ns}.filename")).filter(|f| !f.is_empty());
            let is_iso = file.is_some_and(|f| f.to_ascii_lowercase().ends_with(".iso"));
            let is_cdrom = match dtype.as_deref() {
                Some(t) => matches!(t, "cdrom-image" | "atapi-cdrom" | "cdrom-raw"),
                // VMware's default for a slot without deviceType is a disk; an .iso is a CD.
                None => is_iso,
            };
            let is_disk = match dtype.as_deref() {
                None => !is_iso,
                Some(t) => matches!(
                    (bus, t),
                    (_, "disk" | "plaindisk" | "rawdisk")
                        | (Bus::Scsi, "scsi-harddisk")
                        | (Bus::Ide | Bus::Sata, "ata-harddisk")
                ),
            };
            if is_cdrom {
                vm.removables.push(Removable {
                    kind: RemovableKind::Cdrom,
                    bus,
                    controller: c,
                    unit: u,
                    media: file.filter(|_| dtype.as_deref().is_none_or(|t| t == "cdrom-image")).map(str::to_string),
                });
                continue;
            }
            if !is_disk {
                let t = dtype.unwrap_or_default();
                skipped.push(format!("{ns} (deviceType {t:?})"));
                vm.warnings.push(format!("{ns}: deviceType {t:?} is not a disk here, ignored"));
                continue;
            }
            let Some(file) = file else {
                return Err(ConfigError::missing(path, format!("key {ns}.fileName"), "the disk has no file"));
            };
            let model = match bus {
                Bus::Scsi => {
                    let m = vmx.get(&format!("scsi{c}.virtualdev")).map(str::to_ascii_lowercase);
                    if let Some(m) = &m {
                        if !matches!(m.as_str(), "lsilogic" | "lsisas1068" | "pvscsi" | "buslogic") {
                            vm.warnings.push(format!("scsi{c}.virtualDev {m:?} is not a known SCSI controller"));
                        }
                    }
                    m
                }
                Bus::Sata => Some("ahci".into()),
                Bus::Nvme => Some("nvme".into()),
                _ => None,
            };
            vm.disks.push(Disk {
                source: DiskSource::File { path: resolve(dir, file) },
                format: Some("vmdk".into()),
                bus,
                controller_model: model,
                controller: c,
                unit: u,
                target_dev: None,
                readonly: false,
                capacity: None,
            });
        }
    }
    for n in (0..2u32).filter(|n| vmx.get_bool(&format!("floppy{n}.present")) == Some(Ok(true))) {
        vm.removables.push(Removable { kind: RemovableKind::Floppy, bus: Bus::Fdc, controller: 0, unit: n, media: None });
    }
    if vm.disks.is_empty() && !skipped.is_empty() {
        return Err(ConfigError::other(path, format!("no disk left: every disk slot was skipped: {}", skipped.join(", "))));
    }
    Ok(())
}

fn read_nics(vmx: &Vmx, path: &Path, vm: &mut VmModel) -> Result<(), ConfigError> {
    let mut idx: Vec<u32> = vmx
        .keys
        .keys()
        .filter_map(|k| k.strip_prefix("ethernet")?.strip_suffix(".present")?.parse().ok())
        .filter(|n: &u32| *n < 100 && vmx.get_bool(&format!("ethernet{n}.present")) == Some(Ok(true)))
        .collect();
    idx.sort_unstable();
    for n in idx {
        let ns = format!("ethernet{n}");
        let get = |k: &str| vmx.get(&format!("{ns}.{k}"));
        let atype = get("addresstype").map(str::to_ascii_lowercase);
        let mac_key = match atype.as_deref() {
            Some("static") => "address",
            Some("generated" | "vpx") => "generatedaddress",
            Some(other) => {
                return Err(ConfigError::invalid(path, format!("key {ns}.addressType"), other, "expected generated, vpx or static"))
            }
            None if get("address").is_some() => "address",
            None => "generatedaddress",
        };
        let mac = match get(mac_key) {
            Some(m) => Some(
                normalize_mac(m).ok_or_else(|| ConfigError::invalid(path, format!("key {ns}.{mac_key}"), m, "not a MAC address"))?,
            ),
            None => None,
        };
        let kind = match get("connectiontype").map(str::to_ascii_lowercase).as_deref() {
            Some("bridged") => NetKind::Bridge,
            _ => NetKind::Network,
        };
        vm.nics.push(Nic {
            mac,
            model: Some(get("virtualdev").unwrap_or("e1000").to_ascii_lowercase()),
            kind,
            network: get("networkname").unwrap_or(&ns).to_string(),
        });
    }
    Ok(())
}
