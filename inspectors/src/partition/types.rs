//! Partition type codes and GUIDs Ferry recognises.

use serde::Serialize;

/// What a partition is for, from its type code or GUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartKind {
    Linux,
    LinuxLvm,
    LinuxSwap,
    LinuxRaid,
    /// EFI System Partition.
    Esp,
    /// GPT BIOS boot partition (grub's core image on BIOS+GPT).
    BiosBoot,
    /// Microsoft basic data (NTFS, FAT, exFAT).
    MsBasicData,
    MsReserved,
    WindowsRecovery,
    /// MBR extended partition (container of logical partitions).
    Extended,
    /// The MBR entry that protects a GPT disk.
    GptProtective,
    Other,
}

/// Kind of an MBR partition type byte.
pub fn mbr_kind(t: u8) -> PartKind {
    match t {
        0x83 => PartKind::Linux,
        0x8e => PartKind::LinuxLvm,
        0x82 => PartKind::LinuxSwap,
        0xfd => PartKind::LinuxRaid,
        0xef => PartKind::Esp,
        0x01 | 0x04 | 0x06 | 0x07 | 0x0b | 0x0c | 0x0e => PartKind::MsBasicData,
        0x27 => PartKind::WindowsRecovery,
        0x05 | 0x0f | 0x85 => PartKind::Extended,
        0xee => PartKind::GptProtective,
        _ => PartKind::Other,
    }
}

/// Kind of a GPT type GUID (upper-case text).
pub fn gpt_kind(guid: &str) -> PartKind {
    match guid {
        "0FC63DAF-8483-4772-8E79-3D69D8477DE4" // Linux filesystem data
        | "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709" // root x86-64
        | "44479540-F297-41B2-9AF7-D131D5F0458A" // root x86
        | "B921B045-1DF0-41C3-AF44-4C6F280D3FAE" // root aarch64
        | "933AC7E1-2EB4-4F13-B844-0E14E2AEF915" // home
        | "3B8F8425-20E0-4F3B-907F-1A25A76F98E8" // srv
        | "4D21B016-B534-45C2-A9FB-5C16E091FD2D" // var
        | "BC13C2FF-59E6-4262-A352-B275FD6F7172" => PartKind::Linux, // extended boot
        "E6D6D379-F507-44C2-A23C-238F2A3DF928" => PartKind::LinuxLvm,
        "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F" => PartKind::LinuxSwap,
        "A19D880F-05FC-4D3B-A006-743F0F84911E" => PartKind::LinuxRaid,
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" => PartKind::Esp,
        "21686148-6449-6E6F-744E-656564454649" => PartKind::BiosBoot,
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" => PartKind::MsBasicData,
        "E3C9E316-0B5C-4DB8-817D-F92DF00215AE" => PartKind::MsReserved,
        "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC" => PartKind::WindowsRecovery,
        _ => PartKind::Other,
    }
}
