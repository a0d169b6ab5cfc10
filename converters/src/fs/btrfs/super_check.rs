//! What the writer checks in the primary superblock before handing the filesystem to
//! `btrfs-transaction`: magic, one device, no log tree to replay, known feature flags and
//! checksum type, 16 KiB nodes.

use super::inode::u64_at;
use super::Volume;
use crate::fs::FsError;
use btrfs_disk::superblock::ChecksumType;

const SUPER_AT: u64 = 64 << 10;
/// The only node size written.
const TESTED_NODESIZE: u32 = 16 << 10;

/// incompat flags the writer handles, and every flag's name.
const INCOMPAT_OK: u64 = 1 | 1 << 1 | 1 << 3 | 1 << 4 | 1 << 5 | 1 << 6 | 1 << 8 | 1 << 9;
const INCOMPAT_NAMES: [&str; 17] = ["mixed_backref", "default_subvol", "mixed_groups", "compress_lzo", "compress_zstd", "big_metadata", "extended_iref", "raid56", "skinny_metadata", "no_holes", "metadata_uuid", "raid1c34", "zoned", "extent_tree_v2", "raid_stripe_tree", "bit15", "simple_quota"];
/// compat_ro: free_space_tree, free_space_tree_valid, block_group_tree (verity refused).
const COMPAT_RO_OK: u64 = 1 | 1 << 1 | 1 << 3;
const COMPAT_RO_NAMES: [&str; 4] = ["free_space_tree", "free_space_tree_valid", "verity", "block_group_tree"];

fn names(bits: u64, table: &[&str]) -> String {
    (0..64).filter(|i| bits & (1 << i) != 0).map(|i| table.get(i as usize).map_or_else(|| format!("bit{i}"), |n| n.to_string())).collect::<Vec<_>>().join(", ")
}

/// The filesystem's checksum type, or why it is not written.
pub fn check(vol: &Volume, name: &str) -> Result<ChecksumType, FsError> {
    let mut sb = [0u8; 4096];
    vol.read(&mut sb, SUPER_AT, name)?;
    let unsupported = |what: String| FsError::Unsupported { fs: name.into(), what };
    if &sb[64..72] != b"_BHRfS_M" {
        return Err(FsError::Invalid { fs: name.into(), field: "btrfs superblock magic".into(), value: format!("{:02x?}", &sb[64..72]), reason: "not _BHRfS_M".into() });
    }
    let devices = u64_at(&sb, 136);
    if devices != 1 {
        return Err(unsupported(format!("btrfs on {devices} devices (num_devices {devices}; Ferry writes single-device btrfs)")));
    }
    if u64_at(&sb, 96) != 0 {
        return Err(FsError::NeedsRecovery { fs: name.into() });
    }
    let incompat = u64_at(&sb, 188);
    if incompat & !INCOMPAT_OK != 0 {
        return Err(unsupported(format!("btrfs incompat features {}", names(incompat & !INCOMPAT_OK, &INCOMPAT_NAMES))));
    }
    let compat_ro = u64_at(&sb, 180);
    if compat_ro & !COMPAT_RO_OK != 0 {
        return Err(unsupported(format!("btrfs compat_ro features {}", names(compat_ro & !COMPAT_RO_OK, &COMPAT_RO_NAMES))));
    }
    let (sectorsize, nodesize) = (u32::from_le_bytes([sb[144], sb[145], sb[146], sb[147]]), u32::from_le_bytes([sb[148], sb[149], sb[150], sb[151]]));
    if !(4096..=65536).contains(&sectorsize) || !sectorsize.is_power_of_two() || !(sectorsize..=65536).contains(&nodesize) || !nodesize.is_power_of_two() {
        return Err(FsError::Invalid { fs: name.into(), field: "btrfs sectorsize/nodesize".into(), value: format!("{sectorsize}/{nodesize}"), reason: "not powers of two in 4096..=65536".into() });
    }
    if nodesize != TESTED_NODESIZE {
        return Err(unsupported(format!("btrfs nodesize {nodesize} (the writer is proven on {TESTED_NODESIZE}-byte nodes, mkfs.btrfs's default; with 4 KiB nodes btrfs-transaction 0.13 loses items in trees that split and merge)")));
    }
    match ChecksumType::from_raw(u16::from_le_bytes([sb[196], sb[197]])) {
        ChecksumType::Unknown(c) => Err(unsupported(format!("btrfs checksum type {c}"))),
        c => Ok(c),
    }
}
