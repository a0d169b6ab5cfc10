//! Filesystem and volume signatures, as `blkid -p` finds them: type, UUID, label.

use crate::bytes::{array, cstr, field, u16be, u16le, u32le, u64le, uuid_be};
use crate::device::Device;
use ferry_formats::disk::DiskError;
use serde::Serialize;

/// Types Ferry recognises, named as `blkid` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FsType {
    Ext2,
    Ext3,
    Ext4,
    Xfs,
    Btrfs,
    Ntfs,
    Vfat,
    Swap,
    /// LUKS-encrypted volume (reported, not opened).
    CryptoLuks,
    /// LVM2 physical volume.
    Lvm2Member,
    /// md RAID member (superblock 1.x).
    LinuxRaidMember,
}

impl FsType {
    /// The `blkid` TYPE string.
    pub fn name(self) -> &'static str {
        match self {
            FsType::Ext2 => "ext2",
            FsType::Ext3 => "ext3",
            FsType::Ext4 => "ext4",
            FsType::Xfs => "xfs",
            FsType::Btrfs => "btrfs",
            FsType::Ntfs => "ntfs",
            FsType::Vfat => "vfat",
            FsType::Swap => "swap",
            FsType::CryptoLuks => "crypto_LUKS",
            FsType::Lvm2Member => "LVM2_member",
            FsType::LinuxRaidMember => "linux_raid_member",
        }
    }
}

/// What probing found on a device.
#[derive(Clone, Debug, Serialize)]
pub struct FsInfo {
    pub fstype: FsType,
    /// UUID as `blkid` prints it (FAT `XXXX-XXXX`, NTFS 16 hex digits).
    pub uuid: Option<String>,
    pub label: Option<String>,
    /// Version detail: `v4`/`v5` for XFS, `1`/`2` for LUKS, `FAT12/16/32` for vfat.
    pub version: Option<String>,
    /// Feature names (XFS: `crc`, `finobt`, `sparse`, `reflink`, ...).
    pub features: Vec<String>,
}

fn info(fstype: FsType, uuid: Option<String>, label: String, version: Option<String>) -> FsInfo {
    let label = Some(label).filter(|l| !l.is_empty());
    FsInfo { fstype, uuid: uuid.filter(|u| !u.is_empty()), label, version, features: Vec::new() }
}

/// Probes a device for a known signature; `None` if nothing is recognised.
pub fn probe(dev: &Device) -> Result<Option<FsInfo>, DiskError> {
    let head = dev.read_upto(0, 8192)?;
    if let Some(i) = luks(&head).or_else(|| xfs(&head)).or_else(|| ext(&head)).or_else(|| lvm(&head)) {
        return Ok(Some(i));
    }
    if let Some(i) = ntfs(&head).or_else(|| fat(&head)).or_else(|| swap(&head)) {
        return Ok(Some(i));
    }
    let btr = dev.read_upto(65536, 4096)?;
    if let Some(i) = btrfs(&btr) {
        return Ok(Some(i));
    }
    if let Some(i) = md(&head, 4096).or_else(|| md(&head, 0)) {
        return Ok(Some(i));
    }
    if dev.size() >= 12288 {
        let off = (dev.size() - 8192) & !4095;
        if let Some(i) = md(&dev.read_upto(off, 4096)?, 0) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

fn ext(b: &[u8]) -> Option<FsInfo> {
    let sb = field(b, 1024, 1024)?;
    if u16le(sb, 56) != 0xef53 {
        return None;
    }
    let (compat, incompat, ro) = (u32le(sb, 92), u32le(sb, 96), u32le(sb, 100));
    // What ext3 understands (blkid's EXT3_FEATURE_*_SUPP); anything more is ext4.
    let ext3_incompat = 0x0002 | 0x0004 | 0x0010;
    let ext3_ro = 0x0001 | 0x0002 | 0x0004;
    let t = if incompat & !ext3_incompat != 0 || ro & !ext3_ro != 0 {
        FsType::Ext4
    } else if compat & 0x4 != 0 {
        FsType::Ext3
    } else {
        FsType::Ext2
    };
    Some(info(t, Some(uuid_be(&array(sb, 104))), cstr(sb, 120, 16), None))
}

fn xfs(b: &[u8]) -> Option<FsInfo> {
    if field(b, 0, 4) != Some(b"XFSB") {
        return None;
    }
    let version = format!("v{}", u16be(b, 100) & 0xf);
    let mut i = info(FsType::Xfs, Some(uuid_be(&array(b, 32))), cstr(b, 108, 12), Some(version));
    i.features = super::xfs::features(b).into_iter().map(String::from).collect();
    Some(i)
}

fn btrfs(b: &[u8]) -> Option<FsInfo> {
    if field(b, 64, 8) != Some(b"_BHRfS_M") {
        return None;
    }
    Some(info(FsType::Btrfs, Some(uuid_be(&array(b, 32))), cstr(b, 0x12b, 256), None))
}

fn ntfs(b: &[u8]) -> Option<FsInfo> {
    if field(b, 3, 8) != Some(b"NTFS    ") {
        return None;
    }
    // The label lives in the $Volume file; `NtfsFs::label` reads it.
    Some(info(FsType::Ntfs, Some(format!("{:016X}", u64le(b, 0x48))), String::new(), None))
}

fn fat(b: &[u8]) -> Option<FsInfo> {
    if u16le(b, 510) != 0xaa55 {
        return None;
    }
    let bps = u16le(b, 11);
    if !matches!(bps, 512 | 1024 | 2048 | 4096) || b.get(13).is_none_or(|&s| s == 0 || !s.is_power_of_two()) {
        return None;
    }
    let (serial_off, label_off, version) = if field(b, 82, 5) == Some(b"FAT32") {
        (67, 71, "FAT32")
    } else if field(b, 54, 3) == Some(b"FAT") {
        (39, 43, if field(b, 54, 5) == Some(b"FAT12") { "FAT12" } else { "FAT16" })
    } else {
        return None;
    };
    let serial = u32le(b, serial_off);
    let mut label = cstr(b, label_off, 11);
    if label == "NO NAME" {
        label.clear();
    }
    let uuid = format!("{:04X}-{:04X}", serial >> 16, serial & 0xffff);
    Some(info(FsType::Vfat, Some(uuid), label, Some(version.into())))
}

fn swap(b: &[u8]) -> Option<FsInfo> {
    // The signature sits at the end of the first page; 4 KiB pages here.
    let magic = field(b, 4096 - 10, 10)?;
    if magic != b"SWAPSPACE2" && magic != b"SWAP-SPACE" {
        return None;
    }
    Some(info(FsType::Swap, Some(uuid_be(&array(b, 1024 + 12))), cstr(b, 1024 + 28, 16), None))
}

fn luks(b: &[u8]) -> Option<FsInfo> {
    if field(b, 0, 6) != Some(b"LUKS\xba\xbe") {
        return None;
    }
    let version = u16be(b, 6);
    let label = if version == 2 { cstr(b, 24, 48) } else { String::new() };
    Some(info(FsType::CryptoLuks, Some(cstr(b, 168, 40)), label, Some(version.to_string())))
}

fn lvm(b: &[u8]) -> Option<FsInfo> {
    (0..4).find_map(|s| {
        let l = field(b, s * 512, 512)?;
        if field(l, 0, 8) != Some(b"LABELONE") || field(l, 24, 8) != Some(b"LVM2 001") {
            return None;
        }
        let off = u32le(l, 20) as usize;
        let id = field(l, off, 32)?;
        Some(info(FsType::Lvm2Member, Some(crate::lvm::format_lvm_uuid(id)), String::new(), None))
    })
}

fn md(b: &[u8], off: usize) -> Option<FsInfo> {
    let sb = field(b, off, 256)?;
    if u32le(sb, 0) != 0xa92b_4efc || u32le(sb, 4) != 1 {
        return None;
    }
    Some(info(FsType::LinuxRaidMember, Some(uuid_be(&array(sb, 16))), cstr(sb, 32, 32), Some("1.x".into())))
}
