//! Validation of an ext2/3/4 superblock before anything sizes memory or reads from it:
//! every field the `ext4` crate or `ext_raw` uses is bounded here, so bad metadata is a
//! one-line error instead of a divide by zero, an index out of bounds or an allocation
//! that aborts the process (which `catch_unwind` cannot stop).
use crate::bytes::{u16le, u32le};

/// Most block groups accepted (4 Mi groups: 512 TiB at 4 KiB blocks); bounds the crate's
/// group table (16 bytes a group).
pub const MAX_GROUPS: u64 = 1 << 22;
const INCOMPAT_64BIT: u32 = 0x80;

/// The geometry a checked superblock promises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked {
    pub block_size: u64,
    pub blocks: u64,
    pub groups: u64,
}

/// Checks the 1024-byte superblock `sb` of a filesystem on a device of `dev_size` bytes.
/// The error names the field and its value.
pub fn check(sb: &[u8], dev_size: u64) -> Result<Checked, String> {
    if sb.len() < 1024 {
        return Err(format!("superblock of {} bytes", sb.len()));
    }
    let bad = |field: &str, value: u64, why: &str| Err(format!("invalid superblock: {field} {value}: {why}"));
    let magic = u16le(sb, 56);
    if magic != 0xef53 {
        return bad("s_magic", magic.into(), "not an ext2/3/4 superblock (expected 61267)");
    }
    let log = u32le(sb, 24);
    if log > 6 {
        return bad("s_log_block_size", log.into(), "block size above 64 KiB");
    }
    let bs = 1024u64 << log;
    let bpg = u64::from(u32le(sb, 32));
    if bpg == 0 || bpg > 8 * bs || bpg % 8 != 0 {
        return bad("s_blocks_per_group", bpg, "must be a non-zero multiple of 8, at most 8 per bitmap byte");
    }
    let ipg = u64::from(u32le(sb, 40));
    if ipg == 0 || ipg > 8 * bs {
        return bad("s_inodes_per_group", ipg, "must be 1 to 8 per bitmap byte");
    }
    let first = u64::from(u32le(sb, 20));
    if first > 1 || (first == 1 && bs != 1024) {
        return bad("s_first_data_block", first, "must be 1 for 1 KiB blocks, else 0");
    }
    let incompat = u32le(sb, 96);
    let wide = incompat & INCOMPAT_64BIT != 0;
    let hi = if wide { u64::from(u32le(sb, 0x150)) } else { 0 };
    let blocks = u64::from(u32le(sb, 4)) | hi << 32;
    let dev_blocks = dev_size / bs;
    if blocks <= first || blocks > dev_blocks {
        return bad("s_blocks_count", blocks, &format!("the device holds {dev_blocks} blocks of {bs} bytes"));
    }
    let groups = (blocks - first).div_ceil(bpg);
    if groups > MAX_GROUPS {
        return bad("block group count", groups, &format!("more than {MAX_GROUPS}"));
    }
    let inodes = u64::from(u32le(sb, 0));
    if inodes < 2 || inodes > groups * ipg {
        return bad("s_inodes_count", inodes, &format!("{groups} groups of {ipg} inodes"));
    }
    if u32le(sb, 76) != 0 {
        let isz = u64::from(u16le(sb, 88));
        if !isz.is_power_of_two() || !(128..=bs).contains(&isz) {
            return bad("s_inode_size", isz, "must be a power of two from 128 to the block size");
        }
    }
    let desc = if wide {
        let d = u64::from(u16le(sb, 254));
        if !d.is_power_of_two() || !(32..=1024).contains(&d) {
            return bad("s_desc_size", d, "must be a power of two from 32 to 1024");
        }
        d
    } else {
        32
    };
    let gdt_end = (first + 1) * bs + groups * desc;
    if gdt_end > dev_size {
        return bad("group descriptor table end", gdt_end, &format!("past the device's {dev_size} bytes"));
    }
    Ok(Checked { block_size: bs, blocks, groups })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plausible 4 KiB-block superblock of a 64 MiB filesystem.
    fn sb() -> Vec<u8> {
        let mut s = vec![0u8; 1024];
        let mut put = |at: usize, v: u32| s[at..at + 4].copy_from_slice(&v.to_le_bytes());
        put(0, 16384);
        put(4, 16384);
        put(24, 2);
        put(32, 32768);
        put(40, 16384);
        put(76, 1);
        s[56..58].copy_from_slice(&0xef53u16.to_le_bytes());
        s[88..90].copy_from_slice(&256u16.to_le_bytes());
        s
    }

    fn with(at: usize, v: u32) -> Vec<u8> {
        let mut s = sb();
        s[at..at + 4].copy_from_slice(&v.to_le_bytes());
        s
    }

    #[test]
    fn accepts_a_real_shape() {
        assert_eq!(check(&sb(), 64 << 20), Ok(Checked { block_size: 4096, blocks: 16384, groups: 1 }));
    }

    #[test]
    fn refuses_each_bad_field() {
        let dev = 64 << 20;
        let e = check(&with(20, 0xffff_fff0), dev).unwrap_err();
        assert!(e.contains("s_first_data_block 4294967280"), "{e}");
        let e = check(&with(32, 0), dev).unwrap_err();
        assert!(e.contains("s_blocks_per_group 0"), "{e}");
        let e = check(&with(4, u32::MAX), dev).unwrap_err();
        assert!(e.contains("s_blocks_count 4294967295"), "{e}");
        let mut wide = with(96, INCOMPAT_64BIT);
        wide[254..256].copy_from_slice(&64u16.to_le_bytes());
        wide[0x150..0x154].copy_from_slice(&u32::MAX.to_le_bytes());
        wide[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = check(&wide, dev).unwrap_err();
        assert!(e.contains("s_blocks_count 18446744073709551615"), "{e}");
        let e = check(&with(40, 0), dev).unwrap_err();
        assert!(e.contains("s_inodes_per_group 0"), "{e}");
        let e = check(&with(0, 1 << 30), dev).unwrap_err();
        assert!(e.contains("s_inodes_count"), "{e}");
        let e = check(&with(24, 9), dev).unwrap_err();
        assert!(e.contains("s_log_block_size 9"), "{e}");
        let e = check(&sb(), 1 << 20).unwrap_err();
        assert!(e.contains("the device holds 256 blocks"), "{e}");
    }
}
