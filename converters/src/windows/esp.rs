//! UEFI Windows guests: the removable-media fallback loader (`\EFI\BOOT\BOOTX64.EFI`)
//! ensured on the EFI system partition as a copy of Windows Boot Manager, so firmware with
//! no NVRAM boot entry for Windows (every new KVM guest's) still boots it, as virt-v2v does.

use crate::fs::fat::Fat;
use crate::fs::FsError;

/// Windows Boot Manager on the ESP.
const BOOTMGFW: &str = "EFI/Microsoft/Boot/bootmgfw.efi";
/// Loaders larger than this are refused (bootmgfw.efi is ~2 MiB).
const MAX_LOADER: u64 = 64 << 20;

/// The fallback loader's path for a guest architecture.
pub fn fallback_path(arch: &str) -> Option<&'static str> {
    match arch {
        "x86_64" => Some("EFI/BOOT/BOOTX64.EFI"),
        "i386" | "i686" | "x86" => Some("EFI/BOOT/BOOTIA32.EFI"),
        "aarch64" => Some("EFI/BOOT/BOOTAA64.EFI"),
        _ => None,
    }
}

/// On an ESP holding Windows Boot Manager and no fallback loader, copies it there; returns
/// the path written, or None when there is nothing to do (no Windows loader, or a fallback
/// already present).
pub fn ensure_fallback(fat: &Fat<'_>, arch: &str) -> Result<Option<&'static str>, FsError> {
    let Some(fallback) = fallback_path(arch) else { return Ok(None) };
    let root = fat.fs().root_dir();
    if root.open_file(fallback).is_ok() || root.open_file(BOOTMGFW).is_err() {
        return Ok(None);
    }
    let loader = fat.read_file(BOOTMGFW, MAX_LOADER)?;
    fat.write_file(fallback, &loader)?;
    Ok(Some(fallback))
}
