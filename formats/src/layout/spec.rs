use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// Version of the [`MachineSpec`] JSON format.
pub const SPEC_VERSION: u32 = 1;

/// A converted guest, ready to boot: everything `ferry run` needs, with every device pinned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineSpec {
    /// Always [`SPEC_VERSION`].
    pub spec_version: u32,
    pub name: String,
    /// The libvirt domain UUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// SMBIOS type 1 system UUID (the source's BIOS UUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smbios_uuid: Option<String>,
    /// The device-layout profile the addresses come from, e.g. "q35-v1".
    pub profile: String,
    pub memory_mib: u64,
    /// vCPUs at boot.
    pub vcpus: u32,
    /// The most vCPUs the guest may have (xl `maxvcpus`, libvirt `<vcpu>` with `current=`),
    /// when above `vcpus`; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_vcpus: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<Topology>,
    pub firmware: Firmware,
    /// Direct kernel boot; without it the guest boots through its firmware and bootloader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<DirectBoot>,
    /// PCIe root ports / PCI bridges holding the devices that do not fit the root bus.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bridges: Vec<SpecBridge>,
    pub devices: Vec<SpecDevice>,
}

/// A PCIe root port (q35) or PCI-PCI bridge (pc) on the root bus, added by the allocator once
/// the root bus is full.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecBridge {
    /// QEMU `id=` and the name devices behind it use as `bus=`: "pci.1".
    pub id: String,
    /// Its own address on the root bus.
    pub addr: PciAddr,
    /// The bus behind it: libvirt's controller index, the `bus` of its devices' addresses.
    pub bus: u8,
    /// "pcie-root-port" or "pci-bridge".
    pub kind: String,
    /// Chassis number (libvirt `chassis` / `chassisNr`).
    pub chassis: u8,
    /// PCIe port number (root ports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub sockets: u32,
    pub cores: u32,
    pub threads: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    Bios,
    Uefi,
}

/// The kernel, initrd and command line of a direct kernel boot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectBoot {
    /// A host file, or with `guest_root` a path inside the guest (`/boot/vmlinuz-6.1.0-27-amd64`).
    pub kernel: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initrd: Option<PathBuf>,
    pub cmdline: String,
    /// The guest's root filesystem (`UUID=...`): `kernel` and `initrd` are then paths inside
    /// the guest, read from the spec's disks at start-up (`ferry convert` records these).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_root: Option<String>,
}

/// A PCI address on segment 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PciAddr {
    pub bus: u8,
    pub slot: u8,
    pub function: u8,
}

impl fmt::Display for PciAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.slot, self.function)
    }
}

/// One guest device at its pinned address.
// No `deny_unknown_fields` here: serde cannot combine it with `flatten` (the `type` tag of
// the flattened kind would be rejected as unknown and no spec with devices would parse).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpecDevice {
    /// Stable id, used as QEMU `id=` and libvirt alias: "disk0", "net0", "console0", "rng0".
    pub id: String,
    pub addr: PciAddr,
    /// Modern-only (absent in the JSON) or transitional.
    #[serde(default, skip_serializing_if = "VirtioModel::is_modern")]
    pub model: VirtioModel,
    #[serde(flatten)]
    pub kind: DeviceKind,
}

/// How a virtio device presents itself on PCI.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VirtioModel {
    /// virtio 1.0 only (QEMU `virtio-*-pci-non-transitional`, libvirt
    /// `model='virtio-non-transitional'`): device IDs 0x1041.., no I/O BAR.
    #[default]
    Modern,
    /// Legacy (virtio 0.9.5) and modern at once (QEMU `virtio-*-pci-transitional`, libvirt
    /// `model='virtio-transitional'`): device IDs 0x1000.., a legacy I/O BAR 0, for kernels
    /// whose virtio-pci driver speaks only the legacy interface.
    Transitional,
}

impl VirtioModel {
    pub fn is_modern(&self) -> bool {
        *self == VirtioModel::Modern
    }

    /// libvirt's `model=` value.
    pub fn libvirt(&self) -> &'static str {
        match self {
            VirtioModel::Modern => "virtio-non-transitional",
            VirtioModel::Transitional => "virtio-transitional",
        }
    }

    /// "modern" or "transitional".
    pub fn name(&self) -> &'static str {
        match self {
            VirtioModel::Modern => "modern",
            VirtioModel::Transitional => "transitional",
        }
    }

    /// The QEMU driver of this model for a profile's modern driver name
    /// (`virtio-net-pci-non-transitional` → `virtio-net-pci-transitional`); None when
    /// `modern` is not a virtio-pci driver name.
    pub fn qemu_device(&self, modern: &str) -> Option<String> {
        let stem = modern.strip_suffix("-pci-non-transitional")?;
        Some(match self {
            VirtioModel::Modern => modern.to_string(),
            VirtioModel::Transitional => format!("{stem}-pci-transitional"),
        })
    }
}

/// What a device is. Its virtio model (modern or transitional) is [`SpecDevice::model`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum DeviceKind {
    VirtioBlk {
        file: PathBuf,
        /// "qcow2" or "raw".
        format: String,
        serial: String,
        #[serde(default)]
        readonly: bool,
        #[serde(default = "default_block_size")]
        logical_block_size: u32,
        #[serde(default = "default_block_size")]
        physical_block_size: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bootindex: Option<u32>,
    },
    VirtioNet {
        mac: String,
        backend: NetBackend,
    },
    /// virtio-console (multiport) carrying the guest agent / host channel.
    VirtioConsole,
    VirtioRng,
    VirtioBalloon,
    /// A virtio-scsi controller (`--block-driver virtio-scsi`) with one `scsi-hd` disk per
    /// target on channel 0, LUN 0, as virt-v2v's libvirt output and QEMU place them.
    VirtioScsi { disks: Vec<ScsiDisk> },
}

/// A disk on a virtio-scsi controller: channel 0, target `target`, LUN 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScsiDisk {
    /// Stable id ("disk0"), QEMU `id=` and libvirt alias, as a virtio-blk disk's.
    pub id: String,
    /// SCSI target (QEMU `scsi-id`, libvirt `<address target=>`), 0-255.
    pub target: u8,
    pub file: PathBuf,
    /// "qcow2" or "raw".
    pub format: String,
    pub serial: String,
    #[serde(default)]
    pub readonly: bool,
    #[serde(default = "default_block_size")]
    pub logical_block_size: u32,
    #[serde(default = "default_block_size")]
    pub physical_block_size: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootindex: Option<u32>,
}

/// Which device the converted guest's disks sit on (`ferry convert --block-driver`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockDriver {
    /// One virtio-blk PCI device per disk (`vdX` in the guest).
    #[default]
    VirtioBlk,
    /// One virtio-scsi controller, a `scsi-hd` per disk (`sdX` in the guest).
    VirtioScsi,
}

impl BlockDriver {
    /// "virtio-blk" or "virtio-scsi".
    pub fn name(&self) -> &'static str {
        match self {
            BlockDriver::VirtioBlk => "virtio-blk",
            BlockDriver::VirtioScsi => "virtio-scsi",
        }
    }
}

/// A disk of the spec, on whichever device holds it.
#[derive(Clone, Copy, Debug)]
pub struct SpecDisk<'a> {
    /// "disk0", ...
    pub id: &'a str,
    pub file: &'a PathBuf,
    pub format: &'a str,
    pub readonly: bool,
}

impl DeviceKind {
    /// The profile slot class the device belongs to (`classes[].class`).
    pub fn class(&self) -> &'static str {
        match self {
            // The controller takes the disk class's first slot, where QEMU has the first disk.
            DeviceKind::VirtioBlk { .. } | DeviceKind::VirtioScsi { .. } => "disk",
            DeviceKind::VirtioNet { .. } => "nic",
            DeviceKind::VirtioConsole => "console",
            DeviceKind::VirtioRng => "rng",
            DeviceKind::VirtioBalloon => "balloon",
        }
    }

    /// The virtio device type (virtio spec 5: 1 net, 2 block, 3 console, 4 entropy, 5 balloon,
    /// 8 SCSI host).
    pub fn virtio_type(&self) -> u16 {
        match self {
            DeviceKind::VirtioNet { .. } => 1,
            DeviceKind::VirtioBlk { .. } => 2,
            DeviceKind::VirtioConsole => 3,
            DeviceKind::VirtioRng => 4,
            DeviceKind::VirtioBalloon => 5,
            DeviceKind::VirtioScsi { .. } => 8,
        }
    }

    /// The PCI device ID under `model`: 0x1040 + type for modern, the legacy ID range
    /// (0x1000 net, 0x1001 block, 0x1002 balloon, 0x1003 console, 0x1004 SCSI, 0x1005 rng) for
    /// transitional.
    pub fn pci_device_id(&self, model: VirtioModel) -> u16 {
        match model {
            VirtioModel::Modern => 0x1040 + self.virtio_type(),
            VirtioModel::Transitional => match self {
                DeviceKind::VirtioNet { .. } => 0x1000,
                DeviceKind::VirtioBlk { .. } => 0x1001,
                DeviceKind::VirtioBalloon => 0x1002,
                DeviceKind::VirtioConsole => 0x1003,
                DeviceKind::VirtioScsi { .. } => 0x1004,
                DeviceKind::VirtioRng => 0x1005,
            },
        }
    }

    /// QEMU's modern-only driver for the device when the profile's class driver is not it
    /// (the disk class names virtio-blk; its virtio-scsi controller is this).
    pub fn qemu_driver_override(&self) -> Option<&'static str> {
        match self {
            DeviceKind::VirtioScsi { .. } => Some("virtio-scsi-pci-non-transitional"),
            _ => None,
        }
    }
}

impl MachineSpec {
    /// Every disk in spec order: virtio-blk devices and the disks of virtio-scsi controllers.
    pub fn disks(&self) -> Vec<SpecDisk<'_>> {
        let mut v = Vec::new();
        for d in &self.devices {
            match &d.kind {
                DeviceKind::VirtioBlk { file, format, readonly, .. } => v.push(SpecDisk { id: &d.id, file, format, readonly: *readonly }),
                DeviceKind::VirtioScsi { disks } => {
                    v.extend(disks.iter().map(|s| SpecDisk { id: &s.id, file: &s.file, format: &s.format, readonly: s.readonly }))
                }
                _ => {}
            }
        }
        v
    }
}

fn default_block_size() -> u32 {
    512
}

/// Where a NIC's frames go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum NetBackend {
    /// A libvirt network by name.
    Network { name: String },
    /// A host bridge by name.
    Bridge { name: String },
    /// A tap device by name.
    Tap { name: String },
    /// QEMU user networking / the runtime's null backend.
    User,
}

impl MachineSpec {
    /// Parses a spec from JSON, rejecting unknown fields and other versions.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let spec: MachineSpec = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if spec.spec_version != SPEC_VERSION {
            return Err(format!("spec_version {} is not {SPEC_VERSION}", spec.spec_version));
        }
        Ok(spec)
    }

    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
