//! Whether a Windows volume is safe to edit: the NTFS dirty flag, a hibernation image in
//! `hiberfil.sys` (its header starts "hibr"/"HIBR", as ntfs-3g checks), and Fast Startup
//! (`Session Manager\Power\HiberbootEnabled`), which leaves the volume hibernated on
//! shutdown.

use super::GuestFs;
use serde::Serialize;

/// What virt-v2v refuses a Windows guest for.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct WindowsState {
    /// `$Volume` has the dirty flag (chkdsk pending, or not shut down cleanly).
    pub dirty: bool,
    /// `hiberfil.sys` holds a hibernation image.
    pub hibernated: bool,
    /// Fast Startup is on (HiberbootEnabled = 1).
    pub fast_startup: bool,
}

/// Reads the volume flag and `hiberfil.sys`; warnings for what could not be read.
pub(crate) fn read(g: &GuestFs, fast_startup: bool, warnings: &mut Vec<String>) -> WindowsState {
    let dirty = match g.root_fs().map(|fs| fs.volume_dirty()) {
        Some(Ok(d)) => d.unwrap_or(false),
        Some(Err(e)) => {
            warnings.push(e.to_string());
            false
        }
        None => false,
    };
    let hibernated = match g.find_nocase("/", "hiberfil.sys") {
        Some(p) => match g.head(&p, 4) {
            Some(head) => head.eq_ignore_ascii_case(b"hibr"),
            None => {
                warnings.push(format!("{p}: unreadable, hibernation state unknown"));
                false
            }
        },
        None => false,
    };
    WindowsState { dirty, hibernated, fast_startup }
}
