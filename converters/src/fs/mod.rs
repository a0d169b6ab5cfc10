//! Host-side filesystem editing: ext2/3/4 and FAT, written through a [`Volume`] window of a
//! [`WritableDevice`](ferry_formats::disk::WritableDevice) (in conversion, the copy-on-write
//! overlay over the source disk).
//!
//! ```no_run
//! use ferry_converters::fs::{ext4::Ext4, Volume};
//! use ferry_formats::disk::{CowOverlay, RawImage};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let overlay = CowOverlay::new(RawImage::open("disk.raw".as_ref())?)?;
//! // The root filesystem in the partition at 1 MiB, 10 GiB long.
//! let vol = Volume::new(&overlay, 1 << 20, 10 << 30, "disk.raw")?;
//! let mut fs = Ext4::open(vol, "disk.raw partition 1")?;
//! let fstab = fs.read_file("/etc/fstab", 1 << 20)?;
//! fs.write_file("/etc/fstab", &fstab, 0o644, 0, 0)?;
//! // Any error above: drop the overlay, the source was never touched.
//! # Ok(()) }
//! ```

mod error;
pub mod ext4;
pub mod fat;
mod volume;

pub use error::{FsError, PathProblem};
pub use volume::Volume;
