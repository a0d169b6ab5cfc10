//! Filesystems: signature probing (type, UUID, label) and read-only file access for the
//! ones inspection needs to look inside (ext2/3/4, XFS, btrfs, FAT, NTFS).

mod btrfs;
mod ext;
mod ext_raw;
mod ext_sb;
mod fat;
mod ntfs;
mod probe;
mod reader;
mod xfs;

pub use btrfs::{decompress as btrfs_decompress, snapper_number, BtrfsFs, BtrfsStat, BtrfsReport, CsumType as BtrfsCsum, Subvolume};
pub use ext::ExtFs;
pub use fat::FatFs;
pub use ntfs::NtfsFs;
pub use probe::{probe, FsInfo, FsType};
pub use xfs::{features as xfs_features, XfsFs, INCOMPAT_NAMES as XFS_INCOMPAT_NAMES};

use crate::device::Device;
use ferry_formats::disk::DiskError;

/// Why reading a filesystem failed. One line naming the device, the path and the cause.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error(transparent)]
    Disk(#[from] DiskError),
    #[error("{device}: {fstype}: {path}: {reason}")]
    Read { device: String, fstype: &'static str, path: String, reason: String },
    #[error("{device}: {path}: file of {size} bytes is larger than the {limit}-byte limit")]
    TooLarge { device: String, path: String, size: u64, limit: u64 },
}

/// Type of a directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Other,
}

impl FileKind {
    /// The kind the `S_IFMT` bits of a Unix inode's `mode` give (ext and XFS inodes).
    pub fn from_mode(mode: u16) -> Self {
        match mode & 0xf000 {
            0x8000 => FileKind::File,
            0x4000 => FileKind::Dir,
            0xa000 => FileKind::Symlink,
            _ => FileKind::Other,
        }
    }

    /// The kind a directory entry's file-type byte gives: ext's `EXT4_FT_*` and XFS's
    /// `XFS_DIR3_FT_*` number them alike (1 regular file, 2 directory, 7 symlink).
    pub fn from_dirent_type(t: u8) -> Self {
        match t {
            1 => FileKind::File,
            2 => FileKind::Dir,
            7 => FileKind::Symlink,
            _ => FileKind::Other,
        }
    }
}

/// What `metadata` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub kind: FileKind,
    pub size: u64,
}

/// Read-only access to the files of one filesystem. Paths are absolute, `/`-separated and
/// contain no symlinks except possibly the last component, which is not followed (the
/// guest view in `os::vfs` resolves links across mounts).
pub trait FileSystem {
    /// The device this filesystem is on (for error messages).
    fn device(&self) -> &str;
    /// Metadata of the entry at `path`, `None` if it does not exist.
    fn metadata(&self, path: &str) -> Result<Option<Meta>, FsError>;
    /// Names and kinds in the directory `path`, without `.` and `..`.
    fn read_dir(&self, path: &str) -> Result<Vec<(String, FileKind)>, FsError>;
    /// Target of the symlink at `path`.
    fn read_link(&self, path: &str) -> Result<String, FsError>;
    /// Up to `max` bytes from the start of the file at `path`.
    fn read_head(&self, path: &str, max: u64) -> Result<Vec<u8>, FsError>;
    /// Whole file, refused if larger than `limit`.
    fn read_file(&self, path: &str, limit: u64) -> Result<Vec<u8>, FsError> {
        let meta = self.metadata(path)?;
        let size = meta.map_or(0, |m| m.size);
        if size > limit {
            return Err(FsError::TooLarge { device: self.device().into(), path: path.into(), size, limit });
        }
        self.read_head(path, limit)
    }
    /// Whether names compare case-insensitively (FAT, NTFS).
    fn case_insensitive(&self) -> bool {
        false
    }
    /// Whether the volume's own dirty flag is set (NTFS `$Volume`); `None` where the
    /// filesystem has no such flag or Ferry does not read it.
    fn volume_dirty(&self) -> Result<Option<bool>, FsError> {
        Ok(None)
    }
}

/// Opens a probed filesystem for reading, if Ferry can read files on that type.
pub fn open(dev: &Device, info: &FsInfo) -> Result<Option<Box<dyn FileSystem>>, FsError> {
    Ok(match info.fstype {
        FsType::Ext2 | FsType::Ext3 | FsType::Ext4 => Some(Box::new(ExtFs::open(dev)?)),
        FsType::Vfat => Some(Box::new(FatFs::open(dev)?)),
        FsType::Ntfs => Some(Box::new(NtfsFs::open(dev)?)),
        FsType::Xfs => Some(Box::new(XfsFs::open(dev)?)),
        FsType::Btrfs => Some(Box::new(BtrfsFs::open(dev)?)),
        _ => None,
    })
}

/// Whether [`open`] reads files on the type `blkid` names `fstype` (keep the two in step).
pub fn readable(fstype: &str) -> bool {
    matches!(fstype, "ext2" | "ext3" | "ext4" | "vfat" | "ntfs" | "xfs" | "btrfs")
}

/// Splits an absolute path into its non-empty components.
pub(crate) fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}
