//! UEFI guests: the removable-media fallback loader, as virt-v2v makes it but for every
//! distribution. The firmware's boot entries live in the source hypervisor's NVRAM, which does
//! not travel: a new KVM guest starts with an empty variable store, and OVMF then boots only
//! `\EFI\BOOT\BOOTX64.EFI`. A guest whose ESP lacks it (Debian, Ubuntu, RHEL and SUSE install
//! their loader under `\EFI\<vendor>\` and register it in NVRAM) would stop in the firmware.
//!
//! When the fallback is missing, the vendor directory's loaders are copied beside it:
//! - with shim (`shimx64.efi` + `grubx64.efi`): shim becomes `BOOTX64.EFI`, and GRUB (and
//!   MokManager, `mmx64.efi`, when present) are copied next to it, where shim looks for them;
//!   the signed GRUB still reads its menu from its own `\EFI\<vendor>\grub.cfg` (its built-in
//!   prefix), so menus stay single and future kernel updates keep working;
//! - GRUB 2 alone (`grubx64.efi`, as `grub-install --target=x86_64-efi` leaves it, whose image
//!   carries its `/boot/grub` prefix): it becomes `BOOTX64.EFI`;
//! - legacy GRUB (RHEL/CentOS 6: `grub.efi` + `grub.conf`): `BOOTX64.EFI` + `BOOTX64.conf`, the
//!   name legacy GRUB derives its menu's from.
//!
//! The vendor directory is the one named after the distribution (`debian`, `redhat`...), else
//! the only one holding a loader; with several and none named, nothing is guessed (a warning).
//! An ESP that already has a fallback is left as it is.

use super::draft::Draft;
use super::facts::{Firmware, GuestFacts};
use super::plan::{Change, ChangeKind};
use super::LinuxError;
use crate::guestfs::FileKind;

/// Where the conversion finds the ESP (the inspector's and detect's mount point).
const ESP_EFI: &str = "/boot/efi/EFI";
/// The removable-media directory and x86-64 loader name (UEFI spec 3.5.1.1).
const FALLBACK_DIR: &str = "BOOT";
const FALLBACK: &str = "BOOTX64.EFI";
/// Loaders larger than this are not copied (shim and GRUB are 1–3 MiB).
pub const MAX_LOADER: u64 = 64 << 20;

/// Vendor directory names by os-release `ID`, where they differ from it.
fn vendor_dirs(distro: &str) -> Vec<String> {
    let mut v = vec![distro.to_ascii_lowercase()];
    let extra: &[&str] = match distro {
        "rhel" => &["redhat"],
        "sles" | "sled" | "opensuse-leap" | "opensuse-tumbleweed" | "opensuse" => &["opensuse", "sles", "sle"],
        "ol" => &["redhat", "oracle"],
        "rocky" => &["rocky", "redhat"],
        "almalinux" => &["almalinux", "redhat"],
        "linuxmint" => &["ubuntu"],
        _ => &[],
    };
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

/// The loaders of one vendor directory, by kind.
enum Loader {
    Shim { shim: String, grub: String, mok: Option<String> },
    Grub2(String),
    Legacy { efi: String, conf: String },
}

/// The entry of `dir` named `name` case-insensitively (FAT), if it is a regular file.
fn file_in(d: &Draft<'_>, dir: &str, names: &[String], name: &str) -> Result<Option<String>, LinuxError> {
    let Some(found) = names.iter().find(|n| n.eq_ignore_ascii_case(name)) else { return Ok(None) };
    let path = format!("{dir}/{found}");
    Ok(match d.lstat(&path)? {
        Some(st) if st.kind == FileKind::File && st.size <= MAX_LOADER => Some(path),
        _ => None,
    })
}

fn loader_in(d: &Draft<'_>, dir: &str) -> Result<Option<Loader>, LinuxError> {
    let names = d.list_dir(dir)?;
    let shim = file_in(d, dir, &names, "shimx64.efi")?;
    let grub = file_in(d, dir, &names, "grubx64.efi")?;
    Ok(match (shim, grub) {
        (Some(shim), Some(grub)) => Some(Loader::Shim { shim, grub, mok: file_in(d, dir, &names, "mmx64.efi")? }),
        (None, Some(grub)) => Some(Loader::Grub2(grub)),
        _ => match (file_in(d, dir, &names, "grub.efi")?, file_in(d, dir, &names, "grub.conf")?) {
            (Some(efi), Some(conf)) => Some(Loader::Legacy { efi, conf }),
            _ => None,
        },
    })
}

/// Plans the fallback loader of a UEFI guest (nothing for BIOS guests).
pub fn plan(d: &mut Draft<'_>, facts: &GuestFacts) -> Result<(), LinuxError> {
    if facts.firmware != Firmware::Uefi || !d.fs().is_dir(ESP_EFI)? {
        return Ok(());
    }
    let entries = d.list_dir(ESP_EFI)?;
    let boot_dir = entries.iter().find(|n| n.eq_ignore_ascii_case(FALLBACK_DIR)).map(|n| format!("{ESP_EFI}/{n}"));
    if let Some(dir) = &boot_dir {
        let names = d.list_dir(dir)?;
        if names.iter().any(|n| n.eq_ignore_ascii_case(FALLBACK)) {
            return Ok(());
        }
    }
    let mut found: Vec<(String, Loader)> = Vec::new();
    for name in entries.iter().filter(|n| !n.eq_ignore_ascii_case(FALLBACK_DIR)) {
        let dir = format!("{ESP_EFI}/{name}");
        if d.fs().is_dir(&dir)? {
            if let Some(l) = loader_in(d, &dir)? {
                found.push((name.clone(), l));
            }
        }
    }
    let wanted = vendor_dirs(&facts.distro);
    let pick = match found.iter().position(|(n, _)| wanted.iter().any(|w| n.eq_ignore_ascii_case(w))) {
        Some(i) => Some(found.swap_remove(i)),
        None if found.len() == 1 => found.pop(),
        None => None,
    };
    let Some((vendor, loader)) = pick else {
        let have: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
        d.warn(if have.is_empty() {
            format!("UEFI: no \\EFI\\BOOT\\{FALLBACK} and no shim or GRUB loader under \\EFI on the ESP: the guest may stop in the firmware (no NVRAM boot entry on the new machine)")
        } else {
            format!("UEFI: no \\EFI\\BOOT\\{FALLBACK}, and several loader directories ({}) none named for {}: left alone, the guest may stop in the firmware", have.join(", "), facts.distro)
        });
        return Ok(());
    };
    let dir = boot_dir.unwrap_or_else(|| format!("{ESP_EFI}/{FALLBACK_DIR}"));
    let why = format!(
        "UEFI: the new machine's NVRAM has no boot entry for \\EFI\\{vendor}\\, so the firmware boots the removable-media fallback loader"
    );
    let mut copy = |from: String, to: String| d.other(Change { path: to, kind: ChangeKind::Copy { from }, reason: why.clone() });
    match loader {
        Loader::Shim { shim, grub, mok } => {
            copy(shim, format!("{dir}/{FALLBACK}"));
            copy(grub, format!("{dir}/grubx64.efi"));
            if let Some(mok) = mok {
                copy(mok, format!("{dir}/mmx64.efi"));
            }
        }
        Loader::Grub2(grub) => copy(grub, format!("{dir}/{FALLBACK}")),
        Loader::Legacy { efi, conf } => {
            copy(efi, format!("{dir}/{FALLBACK}"));
            copy(conf, format!("{dir}/BOOTX64.conf"));
        }
    }
    d.note(format!("UEFI: \\EFI\\BOOT\\{FALLBACK} made from \\EFI\\{vendor}\\'s loader (the NVRAM boot entries stay with the source hypervisor)"));
    Ok(())
}
