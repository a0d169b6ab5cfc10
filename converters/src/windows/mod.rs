//! Host-side Windows conversion pieces: registry hives edited in place (`hive`), and NTFS
//! files written in place (`ntfs`).

pub mod hive;
pub mod ntfs;
