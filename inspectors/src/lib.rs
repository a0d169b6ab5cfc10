//! Guest inspection: partitions, volumes, filesystems, OS facts.

mod bytes;
pub mod device;
pub mod fs;
pub mod lvm;
pub mod partition;

pub use device::{Device, Slice};
