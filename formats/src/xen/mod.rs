//! Xen `xl.cfg` and legacy `xm` configuration reader → [`VmModel`].

mod disk;
mod syntax;

pub use disk::{parse_disk, parse_vif, DiskSpec, VifSpec};
pub use syntax::{parse as parse_syntax, Setting, Value};

use crate::model::{
    normalize_mac, normalize_uuid, read_limited, Bus, ConfigError, Disk, DiskSource, Firmware, NetKind, Nic, PvBoot,
    Removable, RemovableKind, VmModel,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const MAX_CFG: u64 = 1 << 20;

/// Reads an xl.cfg / xm config file.
pub fn read_xen(path: &Path) -> Result<VmModel, ConfigError> {
    let bytes = read_limited(path, MAX_CFG)?;
    let text = String::from_utf8(bytes).map_err(|e| ConfigError::invalid(path, "encoding", e.utf8_error().valid_up_to(), "not UTF-8 at this byte offset"))?;
    parse_xen(&text, path)
}

/// Bus and unit for a Xen virtual device name: `xvdb` → (Xen, 1), `hdc` → (IDE, 2).
pub fn vdev_position(vdev: &str) -> Option<(Bus, u32)> {
    let (bus, rest) = [("xvd", Bus::Xen), ("hd", Bus::Ide), ("sd", Bus::Scsi), ("vd", Bus::Virtio)]
        .iter()
        .find_map(|(p, b)| vdev.strip_prefix(p).map(|r| (*b, r)))?;
    let letters: String = rest.chars().take_while(|c| c.is_ascii_lowercase()).collect();
    if letters.is_empty() || letters.len() > 3 {
        return None;
    }
    let mut n: u32 = 0;
    for c in letters.bytes() {
        n = n * 26 + u32::from(c - b'a') + 1;
    }
    Some((bus, n - 1))
}

/// Parses config text; `path` names the file in errors.
pub fn parse_xen(text: &str, path: &Path) -> Result<VmModel, ConfigError> {
    let settings = syntax::parse(text, path)?;
    let mut vm = VmModel { hypervisor: "xen".into(), ..Default::default() };
    let mut map: BTreeMap<&str, &Setting> = BTreeMap::new();
    for s in &settings {
        if map.insert(s.key.as_str(), s).is_some() {
            vm.warnings.push(format!("line {}: {} set again, the last value wins", s.line, s.key));
        }
    }
    let bad = |s: &Setting, v: &dyn std::fmt::Display, reason: &str| ConfigError::invalid(path, format!("line {}: {}", s.line, s.key), v, reason);
    let string = |k: &str| -> Result<Option<String>, ConfigError> {
        match map.get(k) {
            None => Ok(None),
            Some(s) => match &s.value {
                Value::Str(v) => Ok(Some(v.clone())),
                Value::Int(i) => Ok(Some(i.to_string())),
                Value::List(_) => Err(bad(s, &"[...]", "expected a string")),
            },
        }
    };
    let int = |k: &str| -> Result<Option<i64>, ConfigError> {
        match map.get(k) {
            None => Ok(None),
            Some(s) => match &s.value {
                Value::Int(i) => Ok(Some(*i)),
                Value::Str(v) => v.trim().parse().map(Some).map_err(|_| bad(s, v, "expected a number")),
                Value::List(_) => Err(bad(s, &"[...]", "expected a number")),
            },
        }
    };
    let list = |k: &str| -> Result<Vec<(String, usize)>, ConfigError> {
        match map.get(k) {
            None => Ok(Vec::new()),
            Some(s) => match &s.value {
                Value::List(items) => items
                    .iter()
                    .map(|i| match i {
                        Value::Str(v) => Ok((v.clone(), s.line)),
                        other => Err(bad(s, &format!("{other:?}"), "expected a list of strings")),
                    })
                    .collect(),
                Value::Str(v) => Ok(vec![(v.clone(), s.line)]),
                Value::Int(i) => Err(bad(s, i, "expected a list of strings")),
            },
        }
    };

    vm.name = string("name")?.filter(|n| !n.is_empty()).ok_or_else(|| ConfigError::missing(path, "name", "the config has no name"))?;
    if let Some(u) = string("uuid")? {
        let s = map.get("uuid").copied();
        let norm = normalize_uuid(&u).ok_or_else(|| s.map(|s| bad(s, &u, "not a UUID")).unwrap_or_else(|| ConfigError::other(path, "uuid")))?;
        vm.bios_uuid = Some(norm.clone());
        vm.uuid = Some(norm);
    }
    let memory = int("memory")?;
    let maxmem = int("maxmem")?;
    let mib = maxmem.into_iter().chain(memory).max().unwrap_or(128);
    if !(1..=(16 << 20)).contains(&mib) {
        let key = if maxmem == Some(mib) { "maxmem" } else { "memory" };
        return Err(ConfigError::invalid(path, key, mib, "not a memory size in MiB"));
    }
    vm.memory_bytes = (mib as u64) << 20;
    let count = |k: &str, v: i64| u32::try_from(v).ok().filter(|n| (1..=1024).contains(n)).ok_or_else(|| ConfigError::invalid(path, k, v, "not a vCPU count"));
    // `vcpus` is how many are online at boot, `maxvcpus` how many the guest may have.
    vm.vcpus = count("vcpus", int("vcpus")?.unwrap_or(1))?;
    if let Some(m) = int("maxvcpus")? {
        let max = count("maxvcpus", m)?;
        if max < vm.vcpus {
            return Err(ConfigError::invalid(path, "maxvcpus", m, format!("smaller than vcpus {}", vm.vcpus)));
        }
        vm.max_vcpus = Some(max).filter(|&m| m != vm.vcpus);
    }

    let kind = match (string("type")?, string("builder")?) {
        (Some(t), _) => t.to_ascii_lowercase(),
        (None, Some(b)) if b.eq_ignore_ascii_case("hvm") => "hvm".into(),
        (None, Some(b)) if b == "linux" || b == "generic" => "pv".into(),
        (None, Some(b)) => return Err(ConfigError::invalid(path, "builder", b, "expected hvm, linux or generic")),
        (None, None) => "pv".into(),
    };
    match kind.as_str() {
        "hvm" => {
            for k in ["bios", "firmware"] {
                match string(k)?.map(|v| v.to_ascii_lowercase()).as_deref() {
                    Some("ovmf" | "uefi") => vm.firmware = Firmware::Uefi,
                    Some("seabios" | "rombios" | "bios") | None => {}
                    Some(other) => vm.warnings.push(format!("{k} {other:?} not understood, assuming BIOS")),
                }
            }
        }
        "pv" | "pvh" => {
            vm.pv = Some(PvBoot {
                kind: kind.clone(),
                kernel: string("kernel")?.map(PathBuf::from),
                ramdisk: string("ramdisk")?.map(PathBuf::from),
                cmdline: match (string("cmdline")?, string("root")?, string("extra")?) {
                    (Some(c), _, _) => Some(c),
                    (None, Some(r), Some(e)) => Some(format!("root={r} {e}")),
                    (None, Some(r), None) => Some(format!("root={r}")),
                    (None, None, e) => e,
                },
                bootloader: string("bootloader")?,
            });
        }
        other => return Err(ConfigError::invalid(path, "type", other, "expected pv, pvh or hvm")),
    }
    let hvm = kind == "hvm";
    if int("vnc")?.unwrap_or(0) != 0 || map.contains_key("vfb") {
        vm.display = Some("vnc".into());
    } else if int("sdl")?.unwrap_or(0) != 0 {
        vm.display = Some("sdl".into());
    }
    if let Some(s) = string("soundhw")? {
        vm.sound = Some(s);
    }

    for (spec, line) in list("disk")? {
        let d = parse_disk(&spec).map_err(|r| ConfigError::invalid(path, format!("line {line}: disk"), &spec, &r))?;
        let (bus, unit) = vdev_position(&d.vdev)
            .ok_or_else(|| ConfigError::invalid(path, format!("line {line}: disk vdev"), &d.vdev, "not a Xen virtual device name"))?;
        if d.cdrom {
            vm.removables.push(Removable {
                kind: RemovableKind::Cdrom,
                bus,
                controller: 0,
                unit,
                media: (!d.target.is_empty()).then(|| d.target.clone()),
            });
            continue;
        }
        if vm.disks.iter().any(|x| x.target_dev.as_deref() == Some(d.vdev.as_str())) {
            return Err(ConfigError::invalid(path, format!("line {line}: disk vdev"), &d.vdev, "used by two disks"));
        }
        let p = PathBuf::from(&d.target);
        vm.disks.push(Disk {
            source: if d.network {
                // Network storage: the user names a local copy (--disk-file REF=FILE), or
                // the copy refuses naming it.
                DiskSource::Unresolved { reference: d.target.clone() }
            } else if d.block {
                DiskSource::Block { path: p }
            } else {
                DiskSource::File { path: p }
            },
            format: d.format.clone(),
            bus,
            controller_model: None,
            controller: 0,
            unit,
            target_dev: Some(d.vdev.clone()),
            readonly: d.readonly,
            capacity: None,
        });
    }
    // xm's HVM `cdrom = "/path.iso"`: the CD-ROM on hdc, unless a disk spec names hdc.
    if let Some(iso) = string("cdrom")? {
        let hdc_taken = vm.disks.iter().any(|d| d.target_dev.as_deref() == Some("hdc"))
            || vm.removables.iter().any(|r| r.bus == Bus::Ide && r.unit == 2);
        if hdc_taken {
            vm.warnings.push("cdrom is set but hdc is already a disk spec, the cdrom key is ignored".into());
        } else {
            vm.removables.push(Removable {
                kind: RemovableKind::Cdrom,
                bus: Bus::Ide,
                controller: 0,
                unit: 2,
                media: (!iso.is_empty()).then_some(iso),
            });
        }
    }
    vm.disks.sort_by_key(|d| (d.bus, d.unit));
    for (spec, line) in list("vif")? {
        let v = parse_vif(&spec).map_err(|r| ConfigError::invalid(path, format!("line {line}: vif"), &spec, &r))?;
        let mac = match &v.mac {
            Some(m) => Some(normalize_mac(m).ok_or_else(|| ConfigError::invalid(path, format!("line {line}: vif mac"), m, "not a MAC address"))?),
            None => None,
        };
        let model = v.model.clone().or_else(|| Some(if hvm && v.kind.as_deref() != Some("vif") { "rtl8139".into() } else { "netfront".into() }));
        vm.nics.push(Nic { mac, model, kind: NetKind::Bridge, network: v.bridge.clone().unwrap_or_else(|| "xenbr0".into()) });
    }
    vm.cap_warnings();
    Ok(vm)
}

#[cfg(test)]
mod tests {
    use super::vdev_position;
    use crate::model::Bus;

    #[test]
    fn vdevs() {
        assert_eq!(vdev_position("xvda"), Some((Bus::Xen, 0)));
        assert_eq!(vdev_position("hdc"), Some((Bus::Ide, 2)));
        assert_eq!(vdev_position("xvdaa"), Some((Bus::Xen, 26)));
        assert_eq!(vdev_position("sdb1"), Some((Bus::Scsi, 1)));
        assert_eq!(vdev_position("floppy"), None);
    }
}
