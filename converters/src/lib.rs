//! Per-OS guest conversion steps, applied host-side.
