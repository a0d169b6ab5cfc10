//! The device layout a converted guest sees (its "guest ABI"): machine type, PCI addresses,
//! device identities, MACs, disk serials and SMBIOS UUID.
//!
//! [`MachineSpec`] is Ferry's own runtime spec (`ferry convert -o ferry` writes it as JSON,
//! `ferry run` boots it). The libvirt XML and the QEMU script are written from the same
//! `MachineSpec`, so all three place every device identically.

mod spec;

pub use spec::{
    DeviceKind, DirectBoot, Firmware, MachineSpec, NetBackend, PciAddr, SpecDevice, Topology,
    SPEC_VERSION,
};
