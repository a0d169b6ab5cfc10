//! UEFI Windows guests, on the EFI system partition, as virt-v2v does:
//! - the removable-media fallback loader (`\EFI\BOOT\BOOTX64.EFI`) made a copy of Windows
//!   Boot Manager, so firmware with no NVRAM boot entry for Windows (every new KVM guest's)
//!   still boots it;
//! - the BCD store (`\EFI\Microsoft\Boot\BCD`, a registry hive) loses the default OS
//!   loader's `graphicsmodedisabled` element (16000046): with it, Windows on OVMF's GOP
//!   display stops early.

use super::hive::{Hive, HiveError, Value};
use crate::fs::fat::Fat;
use crate::fs::FsError;

/// Windows Boot Manager on the ESP.
const BOOTMGFW: &str = "EFI/Microsoft/Boot/bootmgfw.efi";
/// The boot configuration data store.
pub const BCD: &str = "EFI/Microsoft/Boot/BCD";
/// Loaders larger than this are refused (bootmgfw.efi is ~2 MiB).
const MAX_LOADER: u64 = 64 << 20;
/// BCD stores larger than this are refused (real ones are tens of KiB).
const MAX_BCD: u64 = 16 << 20;
/// The Windows Boot Manager object and its default-object element (a GUID string).
const BOOTMGR_DEFAULT: &str = "Objects\\{9dea862c-5cdd-4e70-acc1-f32b344d4795}\\Elements\\23000003";
/// The library element `graphicsmodedisabled`.
const GRAPHICS_MODE_DISABLED: &str = "16000046";

/// The fallback loader's path for a guest architecture.
pub fn fallback_path(arch: &str) -> Option<&'static str> {
    match arch {
        "x86_64" => Some("EFI/BOOT/BOOTX64.EFI"),
        "i386" | "i686" | "x86" => Some("EFI/BOOT/BOOTIA32.EFI"),
        "aarch64" => Some("EFI/BOOT/BOOTAA64.EFI"),
        _ => None,
    }
}

/// On an ESP holding Windows Boot Manager, makes the fallback loader a copy of it (written
/// when missing or different); returns the path written, or None when there is nothing to do
/// (no Windows loader, or the fallback already equal to it).
pub fn ensure_fallback(fat: &Fat<'_>, arch: &str) -> Result<Option<&'static str>, FsError> {
    let Some(fallback) = fallback_path(arch) else { return Ok(None) };
    if fat.fs().root_dir().open_file(BOOTMGFW).is_err() {
        return Ok(None);
    }
    let loader = fat.read_file(BOOTMGFW, MAX_LOADER)?;
    if fat.fs().root_dir().open_file(fallback).is_ok() && fat.read_file(fallback, MAX_LOADER).is_ok_and(|f| f == loader) {
        return Ok(None);
    }
    fat.write_file(fallback, &loader)?;
    Ok(Some(fallback))
}

/// What [`fix_bcd`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum BcdEdit {
    /// No BCD store on this ESP, or its default loader has no `graphicsmodedisabled`.
    Unchanged,
    /// `graphicsmodedisabled` was removed from this loader object (a `{GUID}`).
    Removed(String),
}

/// Every way editing the BCD store fails.
#[derive(Debug, thiserror::Error)]
pub enum BcdError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error(transparent)]
    Hive(#[from] HiveError),
    #[error("{esp}: \\EFI\\Microsoft\\Boot\\BCD: the boot manager's default object is {value}, not a {{GUID}}")]
    Default { esp: String, value: String },
}

/// Removes `graphicsmodedisabled` from the default OS loader of the ESP's BCD store, when
/// both are there. `esp` names the partition in errors.
pub fn fix_bcd(fat: &Fat<'_>, esp: &str) -> Result<BcdEdit, BcdError> {
    if fat.fs().root_dir().open_file(BCD).is_err() {
        return Ok(BcdEdit::Unchanged);
    }
    let data = fat.read_file(BCD, MAX_BCD)?;
    let mut hive = Hive::open(&format!("{esp}: \\EFI\\Microsoft\\Boot\\BCD"), data)?;
    let Some(link) = hive.lookup(BOOTMGR_DEFAULT)? else { return Ok(BcdEdit::Unchanged) };
    let object = match hive.value(link, "Element")? {
        Some(Value::Sz(s)) => s,
        None => return Ok(BcdEdit::Unchanged),
        Some(other) => return Err(BcdError::Default { esp: esp.into(), value: format!("a value of registry type {}", other.encode().0) }),
    };
    let guid = object.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
    if !guid.is_some_and(|g| g.len() == 36 && g.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')) {
        return Err(BcdError::Default { esp: esp.into(), value: format!("\"{}\"", object.escape_default()) });
    }
    if !hive.delete_key(&format!("Objects\\{object}\\Elements\\{GRAPHICS_MODE_DISABLED}"))? {
        return Ok(BcdEdit::Unchanged);
    }
    fat.write_file(BCD, &hive.to_bytes())?;
    Ok(BcdEdit::Removed(object))
}
