//! Ferry's formats layer: disk images as random-access block devices (raw, VMDK, qcow2),
//! the conversion engine that copies any of them to qcow2 or raw, VM descriptions and the
//! device-layout profile.
//!
//! Nothing here depends on the other Ferry crates; everything else depends on this one.

pub mod iso9660;
pub mod convert;
pub mod disk;
pub mod layout;
pub mod libvirt;
pub mod model;
pub mod ovf;
pub mod qcow2;
pub mod vdi;
pub mod vhd;
pub mod vhdx;
pub mod vmdk;
pub mod vmx;
pub mod xen;

pub use disk::{BlockDevice, DiskError, Extent, ExtentKind};
