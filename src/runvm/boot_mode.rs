//! `--boot firmware|direct|auto`: how `ferry run` and `ferry validate` start a spec, the
//! firmware files a firmware boot needs, and the checks that say why a boot cannot work
//! before it is tried.
use anyhow::bail;
use ferry_formats::layout::{DirectBoot, Firmware, MachineSpec};
use ferry_inspectors::Device;
use std::path::{Path, PathBuf};

/// How to boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BootMode {
    /// Direct when the spec's kernel is a host file; else firmware where the engine has it
    /// and its files exist, else the guest's own kernel, read from its disk.
    Auto,
    /// The guest firmware (SeaBIOS or OVMF), then the guest's own boot loader.
    Firmware,
    /// The kernel, initrd and command line recorded in the spec's `boot`.
    Direct,
}

/// SeaBIOS as Debian's `seabios` (and QEMU's own copy) install it.
const SEABIOS: &[&str] = &["/usr/share/seabios/bios-256k.bin", "/usr/share/qemu/bios-256k.bin"];
/// OVMF without SMM (Debian's `ovmf`): code and the variable store template.
const OVMF: &[(&str, &str)] = &[
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
    ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
];

/// The firmware a firmware boot of `spec` loads: `--firmware` or the distribution's file.
pub fn firmware_file(spec: &MachineSpec, given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        if !p.is_file() {
            bail!("firmware file not found: {} (--firmware)", p.display());
        }
        return Ok(p.to_path_buf());
    }
    match spec.firmware {
        Firmware::Bios => SEABIOS.iter().map(PathBuf::from).find(|p| p.is_file()).ok_or_else(|| {
            anyhow::anyhow!("firmware file not found: install seabios or pass --firmware (looked for {})", SEABIOS.join(", "))
        }),
        Firmware::Uefi => OVMF.iter().map(|(c, _)| PathBuf::from(c)).find(|p| p.is_file()).ok_or_else(|| {
            let names: Vec<&str> = OVMF.iter().map(|(c, _)| *c).collect();
            anyhow::anyhow!("firmware file not found: install ovmf or pass --firmware (looked for {})", names.join(", "))
        }),
    }
}

/// The OVMF variable-store template next to an OVMF code file.
pub fn ovmf_vars_template(code: &Path) -> Option<PathBuf> {
    OVMF.iter().find(|(c, _)| Path::new(c) == code).map(|(_, v)| PathBuf::from(v)).filter(|p| p.is_file()).or_else(|| {
        let name = code.file_name()?.to_string_lossy().into_owned();
        // Only a name saying CODE has a VARS sibling (else the code would be its own template).
        Some(code.with_file_name(name.replace("CODE", "VARS"))).filter(|p| name.contains("CODE") && p.is_file())
    })
}

/// Picks direct or firmware for `spec`; `firmware_ok` says whether the engine can boot
/// firmware and its files exist.
pub fn resolve(spec: &MachineSpec, mode: BootMode, firmware_ok: bool) -> anyhow::Result<BootMode> {
    Ok(match (mode, &spec.boot) {
        (BootMode::Direct, None) => bail!(
            "--boot direct: the spec records no kernel to boot (convert the guest again with `ferry convert -o ferry`, which records the kernel it chose)"
        ),
        (BootMode::Direct, Some(_)) => BootMode::Direct,
        (BootMode::Firmware, _) => BootMode::Firmware,
        (BootMode::Auto, Some(DirectBoot { guest_root: None, .. })) => BootMode::Direct,
        (BootMode::Auto, Some(_)) if !firmware_ok => BootMode::Direct,
        (BootMode::Auto, _) => BootMode::Firmware,
    })
}

/// Why firmware cannot boot the first disk: no boot code in its MBR (BIOS) or no EFI
/// system partition with a boot loader (UEFI). `None` when a boot loader is there.
pub fn missing_boot_loader(spec: &MachineSpec, disks: &[Device]) -> Option<String> {
    let Some(disk) = disks.first() else { return Some("the spec has no boot disk".into()) };
    let mut mbr = [0u8; 512];
    if let Err(e) = disk.dev.read_at(&mut mbr, 0) {
        return Some(format!("the boot disk cannot be read: {e}"));
    }
    let signed = mbr[510] == 0x55 && mbr[511] == 0xaa;
    match spec.firmware {
        Firmware::Bios => {
            // Boot code: the first 440 bytes (before the disk signature) not all zero.
            if !signed || mbr[..440].iter().all(|b| *b == 0) {
                return Some("the boot disk has no boot loader in its MBR (no boot code or no 0x55aa signature)".into());
            }
            None
        }
        Firmware::Uefi => {
            if esp_has_loader(disk) {
                None
            } else {
                Some("the boot disk has no boot loader in its ESP (no EFI system partition holding an EFI/*/*.efi)".into())
            }
        }
    }
}

/// Whether an EFI system partition of `disk` holds a boot loader (`/EFI/<dir>/<name>.efi`).
fn esp_has_loader(disk: &Device) -> bool {
    use ferry_inspectors::fs::{FatFs, FileKind, FileSystem};
    use ferry_inspectors::partition::{partition_device, PartKind, PartitionTable};
    let Ok(Some(table)) = PartitionTable::read(disk) else { return false };
    table.partitions.iter().filter(|p| p.kind == PartKind::Esp).any(|p| {
        let Ok(dev) = partition_device(disk, p) else { return false };
        let Ok(fat) = FatFs::open(&dev) else { return false };
        let dirs = fat.read_dir("/EFI").unwrap_or_default();
        dirs.iter().filter(|(_, k)| *k == FileKind::Dir).any(|(d, _)| {
            fat.read_dir(&format!("/EFI/{d}"))
                .unwrap_or_default()
                .iter()
                .any(|(n, k)| *k == FileKind::File && n.to_ascii_lowercase().ends_with(".efi"))
        })
    })
}
