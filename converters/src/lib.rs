//! Per-OS guest conversion steps, applied host-side.
pub mod fs;
