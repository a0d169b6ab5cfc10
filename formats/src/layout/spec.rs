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
    pub vcpus: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<Topology>,
    pub firmware: Firmware,
    /// Direct kernel boot; without it the guest boots through its firmware and bootloader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<DirectBoot>,
    pub devices: Vec<SpecDevice>,
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
    #[serde(flatten)]
    pub kind: DeviceKind,
}

/// What a device is. Virtio devices are always modern (non-transitional).
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
}

impl DeviceKind {
    /// The profile slot class the device belongs to (`classes[].class`).
    pub fn class(&self) -> &'static str {
        match self {
            DeviceKind::VirtioBlk { .. } => "disk",
            DeviceKind::VirtioNet { .. } => "nic",
            DeviceKind::VirtioConsole => "console",
            DeviceKind::VirtioRng => "rng",
            DeviceKind::VirtioBalloon => "balloon",
        }
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
