//! The neutral VM model every reader produces and every writer consumes: what the source
//! hypervisor said about the guest, with nothing KVM-specific decided yet.

mod datastore;
mod error;
mod print;
pub mod xml;

pub use datastore::{split_datastore_path, Datastores};
pub use error::{one_line, read_limited, shown, ConfigError};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One guest as described by its source hypervisor.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VmModel {
    pub name: String,
    /// Where the description came from: "vmware", "xen", "kvm", "ova"...
    pub hypervisor: String,
    /// The hypervisor's VM UUID (`vc.uuid`, libvirt `<uuid>`, xl `uuid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// The BIOS (SMBIOS type 1) UUID the guest sees (`uuid.bios`, libvirt `<hwuuid>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bios_uuid: Option<String>,
    /// VM generation ID as a UUID string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genid: Option<String>,
    pub memory_bytes: u64,
    /// vCPUs online at boot.
    pub vcpus: u32,
    /// The most vCPUs the guest may have (Xen `maxvcpus`), when more than `vcpus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_vcpus: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<CpuTopology>,
    pub firmware: Firmware,
    #[serde(default)]
    pub secure_boot: bool,
    /// Hard disks in source order (controller type, controller, unit).
    pub disks: Vec<Disk>,
    /// CD-ROM and floppy drives.
    pub removables: Vec<Removable>,
    pub nics: Vec<Nic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sound: Option<String>,
    /// The source's guest OS identifier (`guestOS`, `vmw:osType`, libosinfo id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_hint: Option<String>,
    /// Xen paravirtual boot details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pv: Option<PvBoot>,
    /// Every file the disks read (extents, parents, backing files) must resolve inside this
    /// directory (a directory OVA); None: files outside the source's directory are allowed
    /// and reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confine: Option<PathBuf>,
    /// Things the reader tolerated (duplicate keys, garbled manifest lines...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuTopology {
    pub sockets: u32,
    pub cores: u32,
    pub threads: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    #[default]
    Bios,
    Uefi,
}

/// Xen PV/PVH boot: direct kernel or a bootloader like pygrub.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PvBoot {
    /// "pv" or "pvh".
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramdisk: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootloader: Option<String>,
}

/// The bus a disk or removable hangs off in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bus {
    Ide,
    Scsi,
    Sata,
    Nvme,
    Virtio,
    Xen,
    Fdc,
    Usb,
}

impl Bus {
    pub fn name(self) -> &'static str {
        match self {
            Bus::Ide => "ide",
            Bus::Scsi => "scsi",
            Bus::Sata => "sata",
            Bus::Nvme => "nvme",
            Bus::Virtio => "virtio",
            Bus::Xen => "xen",
            Bus::Fdc => "fdc",
            Bus::Usb => "usb",
        }
    }
}

/// Where a source disk's bytes are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DiskSource {
    /// A plain file on the host.
    File { path: PathBuf },
    /// A host block device (Xen `phy:`).
    Block { path: PathBuf },
    /// A member stored uncompressed inside an archive (tar, stored zip entry): read in
    /// place at `offset`, `length` bytes, no copy.
    InPlace { archive: PathBuf, member: String, offset: u64, length: u64 },
    /// A GNU sparse member of an uncompressed tar: `[logical offset, archive offset, length]`
    /// data segments, zeros elsewhere, `size` bytes in all.
    SparseInPlace { archive: PathBuf, member: String, size: u64, segments: Vec<[u64; 3]> },
    /// A member of a compressed archive: only readable front to back, by decompressing the
    /// archive. For tar containers `offset` is where the member's bytes start in the
    /// decompressed tar stream; for zip it is 0 (the entry is found by name).
    Streamed { archive: PathBuf, container: Container, member: String, offset: u64, length: u64 },
    /// One file stored as consecutive chunks (`href.000000000`, `href.000000001`...).
    Chunked { chunks: Vec<DiskSource> },
    /// The bytes of `inner` are gzip-compressed (OVF `ovf:compression="gzip"`).
    Gzip { inner: Box<DiskSource> },
    /// A location that could not be resolved on this host (e.g. `[datastore] path` without a
    /// datastore map, or network storage such as Xen's `rbd:pool/image`).
    Unresolved { reference: String },
    /// A blank disk the import creates (an OVF Disk without `fileRef`): `size` zero bytes.
    Blank { size: u64 },
}

/// How a compressed archive is wrapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Container {
    TarGz,
    TarXz,
    Zip,
}

/// A hard disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    pub source: DiskSource,
    /// Image format if the source says ("vmdk", "raw", "qcow2"); None = probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    pub bus: Bus,
    /// Controller model ("pvscsi", "lsilogic", "ahci"...), if the source says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_model: Option<String>,
    /// Controller index and unit (target) on it.
    pub controller: u32,
    pub unit: u32,
    /// The source's device name ("xvda", "sda", "hda"), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_dev: Option<String>,
    #[serde(default)]
    pub readonly: bool,
    /// Virtual size in bytes, if the description states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemovableKind {
    Cdrom,
    Floppy,
}

/// A CD-ROM or floppy drive (media is never converted, only the drive is kept).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removable {
    pub kind: RemovableKind,
    pub bus: Bus,
    pub controller: u32,
    pub unit: u32,
    /// The image inserted in the source, if any (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<String>,
}

/// What a NIC is connected to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetKind {
    Network,
    Bridge,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nic {
    /// Lowercase `xx:xx:xx:xx:xx:xx`; None when the source has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Source model ("vmxnet3", "e1000", "rtl8139"...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub kind: NetKind,
    pub network: String,
}

/// Canonical lowercase UUID `8-4-4-4-12` from any spelling with spaces, dashes or braces
/// (VMware writes `42 25 6e c1 ... 63-3d d1 ...`). None if it is not 32 hex digits.
pub fn normalize_uuid(s: &str) -> Option<String> {
    let hex: String = s.chars().filter(|c| !matches!(c, ' ' | '-' | '{' | '}' | '\t')).collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let h = hex.to_ascii_lowercase();
    Some(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

/// Canonical lowercase MAC `xx:xx:xx:xx:xx:xx` (also accepts `-` separators). None if invalid.
pub fn normalize_mac(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.trim().split([':', '-']).collect();
    if parts.len() != 6 || !parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit())) {
        return None;
    }
    Some(parts.join(":").to_ascii_lowercase())
}

/// Warnings a reader keeps; the rest are counted in one last warning.
pub const MAX_WARNINGS: usize = 30;

impl VmModel {
    /// Keeps the first [`MAX_WARNINGS`] warnings and summarises the rest in one.
    pub fn cap_warnings(&mut self) {
        if self.warnings.len() > MAX_WARNINGS {
            let more = self.warnings.len() - MAX_WARNINGS;
            self.warnings.truncate(MAX_WARNINGS);
            self.warnings.push(format!("{more} more warnings not shown"));
        }
    }

    /// The model as pretty JSON (stable: fields in declaration order).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_spellings() {
        assert_eq!(
            normalize_uuid("42 25 6e c1 e0 66 93 64-3d d1 36 a0 b7 52 63 dd").as_deref(),
            Some("42256ec1-e066-9364-3dd1-36a0b75263dd")
        );
        assert_eq!(normalize_uuid("{42256EC1-E066-9364-3DD1-36A0B75263DD}").as_deref(), Some("42256ec1-e066-9364-3dd1-36a0b75263dd"));
        assert_eq!(normalize_uuid("42 25"), None);
        assert_eq!(normalize_uuid("zz256ec1-e066-9364-3dd1-36a0b75263dd"), None);
    }

    #[test]
    fn mac_spellings() {
        assert_eq!(normalize_mac("00:50:56:AB:12:34").as_deref(), Some("00:50:56:ab:12:34"));
        assert_eq!(normalize_mac("00-50-56-ab-12-34").as_deref(), Some("00:50:56:ab:12:34"));
        assert_eq!(normalize_mac("00:50:56:ab:12"), None);
        assert_eq!(normalize_mac("00:50:56:ab:12:3g"), None);
    }
}
