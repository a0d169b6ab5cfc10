//! The device layout a converted guest sees (its "guest ABI"): machine type, PCI addresses,
//! device identities, MACs, disk serials and SMBIOS UUID.
//!
//! [`MachineSpec`] is Ferry's own runtime spec (`ferry convert -o ferry` writes it as JSON,
//! `ferry run` boots it). The libvirt XML and the QEMU script are written from the same
//! `MachineSpec`, so all three place every device identically. The slots come from a
//! versioned [`Profile`] kept as data (`formats/machines/`), assigned by [`allocate`].

mod alloc;
pub mod chipset;
mod profile;
mod spec;

pub use alloc::{allocate, disk_serial, generated_mac, CdromSlot, Layout, OutputPlan};
pub use profile::{parse_addr, CdromPlan, ChipsetFunction, Expansion, Profile, SlotClass, DEFAULT_PROFILE};
pub use spec::{
    BlockDriver, DeviceKind, DirectBoot, Firmware, MachineSpec, NetBackend, PciAddr, ScsiDisk, SpecBridge, SpecDevice, SpecDisk, Topology,
    VirtioModel, SPEC_VERSION,
};

/// Why a layout cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("unknown machine profile {name:?} (known: {known})")]
    UnknownProfile { name: String, known: String },
    #[error("machine profile {name}: {reason}")]
    BadProfile { name: String, reason: String },
    #[error("{count} {class} devices do not fit machine profile {profile} (at most {max})")]
    TooMany { class: String, count: usize, max: usize, profile: String },
    #[error("layout: {0}")]
    Plan(String),
}
