//! Host-side filesystem editing: ext2/3/4, XFS, btrfs, FAT and NTFS, written through a [`Volume`] window
//! of a [`WritableDevice`](ferry_formats::disk::WritableDevice) (in conversion, the
//! copy-on-write overlay over the source disk). [`open`] is the one dispatch by type: it
//! returns the right writer for a filesystem type as inspection names it.
//!
//! ```no_run
//! use ferry_converters::fs::{self, Filesystem, Volume};
//! use ferry_formats::disk::{CowOverlay, RawImage};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let overlay = CowOverlay::new(RawImage::open("disk.raw".as_ref())?)?;
//! // The root filesystem in the partition at 1 MiB, 10 GiB long.
//! let vol = Volume::new(&overlay, 1 << 20, 10 << 30, "disk.raw")?;
//! let Filesystem::Ext(mut fs) = fs::open(vol, "ext4", "disk.raw partition 1")? else { return Ok(()) };
//! let fstab = fs.read_file("/etc/fstab", 1 << 20)?;
//! fs.write_file("/etc/fstab", &fstab, 0o644, 0, 0)?;
//! // Any error above: drop the overlay, the source was never touched.
//! # Ok(()) }
//! ```

pub mod btrfs;
mod error;
pub mod ext4;
pub mod fat;
pub mod ntfs;
mod volume;
pub mod xfs;

pub use error::{FsError, PathProblem};
pub use volume::Volume;

/// A guest filesystem opened for editing, whichever its type.
pub enum Filesystem<'a> {
    /// ext2, ext3 or ext4.
    Ext(ext4::Ext4<'a>),
    /// XFS v4 or v5.
    Xfs(xfs::Xfs<'a>),
    /// FAT12/16/32 (the EFI system partition).
    Fat(fat::Fat<'a>),
    /// NTFS 3.x (a Windows system volume).
    Ntfs(ntfs::Ntfs<'a>),
    /// btrfs (single device), viewed from one subvolume.
    Btrfs(btrfs::Btrfs<'a>),
}

/// The filesystem types [`open`] handles, by inspection's names.
pub fn supported(fstype: &str) -> bool {
    matches!(fstype, "ext2" | "ext3" | "ext4" | "xfs" | "vfat" | "ntfs" | "btrfs")
}

/// The types a Linux root, `/boot` or `/usr` can be converted on: the writer creates,
/// removes and grows files and makes symlinks. FAT is opened for the ESP only.
pub fn writable(fstype: &str) -> bool {
    matches!(fstype, "ext2" | "ext3" | "ext4" | "xfs" | "btrfs")
}

/// Opens the filesystem of type `fstype` (inspection's name: `ext4`, `xfs`, `vfat`, ...) in
/// `vol` with its writer; `name` prefixes errors.
pub fn open<'a>(vol: Volume<'a>, fstype: &str, name: &str) -> Result<Filesystem<'a>, FsError> {
    match fstype {
        "ext2" | "ext3" | "ext4" => Ok(Filesystem::Ext(ext4::Ext4::open(vol, name)?)),
        "xfs" => Ok(Filesystem::Xfs(xfs::Xfs::open(vol, name)?)),
        "vfat" => Ok(Filesystem::Fat(fat::Fat::open(vol, name)?)),
        "ntfs" => Ok(Filesystem::Ntfs(ntfs::Ntfs::open(vol, name)?)),
        "btrfs" => Ok(Filesystem::Btrfs(btrfs::Btrfs::open(vol, name)?)),
        "" => Err(FsError::Unsupported { fs: name.into(), what: "filesystem of an unknown type".into() }),
        other => Err(FsError::Unsupported { fs: name.into(), what: format!("filesystem type {other} (Ferry edits ext2/3/4, XFS, btrfs, FAT and NTFS)") }),
    }
}
