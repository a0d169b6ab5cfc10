//! Host-side Windows conversion pieces: registry hives edited in place (`hive`).

pub mod hive;
