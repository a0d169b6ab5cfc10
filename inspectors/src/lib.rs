//! Guest inspection: partitions, volumes, filesystems, OS facts.
//!
//! Everything works on read-only [`ferry_formats::BlockDevice`]s: whole disks (raw, VMDK,
//! qcow2 through `ferry_formats::disk::open_image`), partitions ([`Slice`]s of them) and
//! LVM logical volumes assembled from physical volumes on any of the disks.
//! [`inspect()`] ties it together and returns an [`Inspection`] report.

mod bytes;
pub mod device;
pub mod fs;
pub mod initramfs;
pub mod inspect;
pub mod lvm;
pub mod md;
pub mod os;
pub mod partition;
pub mod report;

pub use device::{Device, MemDevice, Slice};
pub use inspect::{inspect, inspect_with_views, InspectError};
pub use report::Inspection;
