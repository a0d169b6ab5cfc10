//! Versioned machine profiles (the guest ABI) kept as data in `formats/machines/*.json`:
//! chipset functions at QEMU's addresses with their config headers (see [`super::chipset`]) and
//! one slot range per device class.

use super::chipset::{Header, HeaderSpec};
use super::{LayoutError, PciAddr};
use serde::{Deserialize, Serialize};

const PROFILES: &[(&str, &str)] = &[
    ("q35-v1", include_str!("../../machines/q35-v1.json")),
    ("pc-v1", include_str!("../../machines/pc-v1.json")),
    ("q35-v2", include_str!("../../machines/q35-v2.json")),
    ("pc-v2", include_str!("../../machines/pc-v2.json")),
];

/// The profile used when none is asked for.
pub const DEFAULT_PROFILE: &str = "q35-v2";

/// A function the chipset itself provides (not allocated).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChipsetFunction {
    pub function: String,
    /// `bb:ss.f`.
    pub addr: String,
    /// PCI vendor and device ID, 4 hex digits each.
    pub vendor: String,
    pub device: String,
    /// The config header the function presents.
    pub config: HeaderSpec,
}

/// Slots `first..=last` on the root bus for one class of device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotClass {
    /// "video", "console", "balloon", "rng", "nic" or "disk".
    pub class: String,
    pub first: u8,
    pub last: u8,
    pub vendor: String,
    pub device: String,
    /// QEMU `-device` driver name.
    pub qemu_device: String,
    /// MSI-X vectors the device has under this profile's versioned machine type, where that
    /// differs from the device's own default (pc-*-7.2's virtio-balloon has none: INTx only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msix_vectors: Option<u16>,
    /// The config header of a device the runtime presents as a plain function with no model
    /// behind it (the VGA adapter: the runtime is headless, but the slot's ABI stays QEMU's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<HeaderSpec>,
}

/// Where CD-ROM drives go: on the chipset's own storage controller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdromPlan {
    /// "ahci" (q35) or "ide" (pc).
    pub controller: String,
    /// QEMU bus name pattern: `{port}` is the AHCI port, `{bus}` the IDE bus.
    pub qemu_bus: String,
    /// How many drives fit.
    pub ports: u32,
    /// libvirt `<target bus=>`.
    pub libvirt_bus: String,
    /// libvirt target device prefix ("sd", "hd").
    pub libvirt_prefix: String,
}

/// A machine profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub version: u32,
    /// "q35" or "pc".
    pub machine: String,
    /// Versioned QEMU machine type, frozen with the profile.
    pub qemu_machine: String,
    /// QEMU's name for bus 0 ("pcie.0", "pci.0").
    pub root_bus: String,
    /// How QEMU hot-plugs onto the root bus: "none" (it refuses: a PCIe root complex) or
    /// "acpi-pcihp" (the PIIX4 PM function's ACPI PCI hotplug controller and DSDT slots).
    pub root_hotplug: String,
    /// PCIe ECAM (MMCONFIG) base the chipset's PCIEXBAR points at, hex; absent without PCIe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecam: Option<String>,
    pub chipset: Vec<ChipsetFunction>,
    pub classes: Vec<SlotClass>,
    pub cdrom: CdromPlan,
    /// Where NICs and disks go once their classes' root-bus slots are full (absent: refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expansion: Option<Expansion>,
}

/// Root-bus slots for PCIe root ports or PCI bridges, and how they are made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expansion {
    /// "pcie-root-port": eight ports per slot (functions 0-7, multifunction), one device at
    /// slot 0 behind each; "pci-bridge": one bridge per slot, devices at slots 1-31 behind it.
    pub kind: String,
    pub first: u8,
    pub last: u8,
    /// QEMU `-device` driver name ("pcie-root-port", "pci-bridge").
    pub qemu_device: String,
    /// The first root port's PCIe port number (libvirt numbers them from 0x10).
    #[serde(default)]
    pub first_port: u8,
}

impl Expansion {
    /// Device positions behind the expansion, in allocation order: (bridge index, slot).
    pub fn capacity(&self) -> usize {
        let slots = usize::from(self.last.saturating_sub(self.first)) + 1;
        match self.kind.as_str() {
            "pcie-root-port" => slots * 8,
            _ => slots * 31,
        }
    }
}

/// Parses `bb:ss.f`.
pub fn parse_addr(s: &str) -> Option<PciAddr> {
    let (bus, rest) = s.split_once(':')?;
    let (slot, function) = rest.split_once('.')?;
    let addr = PciAddr {
        bus: u8::from_str_radix(bus, 16).ok()?,
        slot: u8::from_str_radix(slot, 16).ok()?,
        function: u8::from_str_radix(function, 16).ok()?,
    };
    (addr.slot < 32 && addr.function < 8).then_some(addr)
}

impl Profile {
    /// Names of the built-in profiles.
    pub fn names() -> Vec<&'static str> {
        PROFILES.iter().map(|(n, _)| *n).collect()
    }

    /// Loads a built-in profile by name and checks it is self-consistent.
    pub fn builtin(name: &str) -> Result<Profile, LayoutError> {
        let (_, text) = PROFILES
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| LayoutError::UnknownProfile { name: name.to_string(), known: Self::names().join(", ") })?;
        Self::parse(name, text)
    }

    /// Parses a profile's JSON text and checks it is self-consistent.
    pub fn parse(name: &str, text: &str) -> Result<Profile, LayoutError> {
        let p: Profile = serde_json::from_str(text).map_err(|e| LayoutError::BadProfile { name: name.into(), reason: e.to_string() })?;
        p.check()?;
        Ok(p)
    }

    /// Every chipset function's address and decoded config header.
    pub fn chipset_headers(&self) -> Result<Vec<(PciAddr, Header)>, LayoutError> {
        let bad = |reason: String| LayoutError::BadProfile { name: self.name.clone(), reason };
        self.chipset
            .iter()
            .map(|f| {
                let a = parse_addr(&f.addr).filter(|a| a.bus == 0).ok_or_else(|| bad(format!("chipset {}: bad address {:?}", f.function, f.addr)))?;
                let h = f.config.decode(&f.vendor, &f.device).map_err(|e| bad(format!("chipset {}: {e}", f.function)))?;
                Ok((a, h))
            })
            .collect()
    }

    /// The functions the runtime presents from data alone: every class with a `config`, at the
    /// class's first slot (function 0).
    pub fn stub_headers(&self) -> Result<Vec<(PciAddr, Header)>, LayoutError> {
        let bad = |reason: String| LayoutError::BadProfile { name: self.name.clone(), reason };
        self.classes
            .iter()
            .filter_map(|c| c.config.as_ref().map(|h| (c, h)))
            .map(|(c, h)| {
                let h = h.decode(&c.vendor, &c.device).map_err(|e| bad(format!("class {}: {e}", c.class)))?;
                Ok((PciAddr { bus: 0, slot: c.first, function: 0 }, h))
            })
            .collect()
    }

    /// The ECAM base, if the profile has PCIe.
    pub fn ecam_base(&self) -> Result<Option<u64>, LayoutError> {
        let Some(e) = &self.ecam else { return Ok(None) };
        let v = u64::from_str_radix(e, 16).ok().filter(|v| e.len() <= 16 && v % (1 << 28) == 0);
        v.map(Some).ok_or_else(|| LayoutError::BadProfile { name: self.name.clone(), reason: format!("ecam {e:?}: expected a hex address aligned to 256 MiB") })
    }

    /// The QEMU driver for a device of slot class `class` under `model`.
    pub fn qemu_device(&self, class: &str, model: super::VirtioModel) -> Result<String, LayoutError> {
        let c = self.class(class)?;
        model.qemu_device(&c.qemu_device).ok_or_else(|| LayoutError::BadProfile {
            name: self.name.clone(),
            reason: format!("class {class}: qemu_device {:?} is not a virtio-*-pci-non-transitional driver, no {} form", c.qemu_device, model.name()),
        })
    }

    /// The slot class named `class`.
    pub fn class(&self, class: &str) -> Result<&SlotClass, LayoutError> {
        self.classes
            .iter()
            .find(|c| c.class == class)
            .ok_or_else(|| LayoutError::BadProfile { name: self.name.clone(), reason: format!("no slot class {class}") })
    }

    /// Slot ranges lie in 1..=31, do not overlap each other or the chipset.
    fn check(&self) -> Result<(), LayoutError> {
        let bad = |reason: String| LayoutError::BadProfile { name: self.name.clone(), reason };
        let mut used = [false; 32];
        let mut functions = Vec::new();
        for (a, _) in self.chipset_headers()? {
            if functions.contains(&(a.slot, a.function)) {
                return Err(bad(format!("chipset address {a} used twice")));
            }
            functions.push((a.slot, a.function));
            if let Some(u) = used.get_mut(usize::from(a.slot)) {
                *u = true;
            }
        }
        self.ecam_base()?;
        if !["none", "acpi-pcihp"].contains(&self.root_hotplug.as_str()) {
            return Err(bad(format!("root_hotplug {:?}: expected none or acpi-pcihp", self.root_hotplug)));
        }
        for c in &self.classes {
            if c.first == 0 || c.first > c.last || c.last > 31 {
                return Err(bad(format!("class {} has bad range {}..={}", c.class, c.first, c.last)));
            }
            for s in c.first..=c.last {
                let u = used.get_mut(usize::from(s)).ok_or_else(|| bad(format!("slot {s}")))?;
                if *u {
                    return Err(bad(format!("class {} reuses slot {s:#x}", c.class)));
                }
                *u = true;
            }
        }
        for class in ["video", "console", "balloon", "rng", "nic", "disk"] {
            self.class(class)?;
        }
        for class in ["console", "balloon", "rng", "nic", "disk"] {
            self.qemu_device(class, super::VirtioModel::Transitional)?;
        }
        if let Some(e) = &self.expansion {
            if !["pcie-root-port", "pci-bridge"].contains(&e.kind.as_str()) {
                return Err(bad(format!("expansion kind {:?}: expected pcie-root-port or pci-bridge", e.kind)));
            }
            if e.first == 0 || e.first > e.last || e.last > 31 {
                return Err(bad(format!("expansion has bad range {}..={}", e.first, e.last)));
            }
            for s in e.first..=e.last {
                let u = used.get_mut(usize::from(s)).ok_or_else(|| bad(format!("slot {s}")))?;
                if *u {
                    return Err(bad(format!("expansion reuses slot {s:#x}")));
                }
                *u = true;
            }
            if e.capacity() > 254 {
                return Err(bad(format!("expansion {}..={} needs more than 254 buses", e.first, e.last)));
            }
        }
        Ok(())
    }
}
