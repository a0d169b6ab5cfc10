//! Host-side Windows conversion pieces: registry hives edited in place (`hive`), and NTFS
//! files written in place (`ntfs`), the two joined by [`edit_hive_file`].

pub mod hive;
mod hive_file;
pub mod ntfs;

pub use hive_file::{edit_hive_file, HiveFileError};
