//! Host-side filesystem editing: ext2/3/4 and FAT, written through a [`Volume`] window of a
//! [`WritableDevice`](ferry_formats::disk::WritableDevice) (in conversion, the copy-on-write
//! overlay over the source disk).

mod error;
pub mod ext4;
pub mod fat;
mod volume;

pub use error::{FsError, PathProblem};
pub use volume::Volume;
