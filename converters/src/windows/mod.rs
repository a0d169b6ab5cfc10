//! Host-side Windows conversion pieces: registry hives edited in place (`hive`), joined
//! with the NTFS writer ([`crate::fs::ntfs`]) by [`edit_hive_file`].

pub mod hive;
mod hive_file;

pub use hive_file::{edit_hive_file, HiveFileError};
