//! The primary superblock (sector 0 of AG 0): geometry, version and feature bits. Every
//! feature this code does not know is refused by name, because a writer that ignores one
//! would corrupt what it protects.

use super::bytes::{be16, be32, be64, byte, crc_ok, escaped};
use crate::fs::FsError;
use ferry_inspectors::fs::XFS_INCOMPAT_NAMES as IN_NAMES;

/// The smallest sector, where the superblock's sector size is read from.
pub const SB_LEN: usize = 512;
/// Offset of `sb_sectsize`.
pub const SB_SECTSIZE: usize = 102;
/// Offset of the v5 superblock checksum.
pub const SB_CRC: usize = 224;

// v4 `sb_versionnum` bits.
const V_NUMBITS: u16 = 0x000f;
const V_ATTR: u16 = 0x0010;
const V_NLINK: u16 = 0x0020;
const V_QUOTA: u16 = 0x0040;
const V_ALIGN: u16 = 0x0080;
const V_DALIGN: u16 = 0x0100;
const V_SHARED: u16 = 0x0200;
const V_LOGV2: u16 = 0x0400;
const V_SECTOR: u16 = 0x0800;
const V_EXTFLG: u16 = 0x1000;
const V_DIRV2: u16 = 0x2000;
const V_BORG: u16 = 0x4000;
const V_MOREBITS: u16 = 0x8000;

// `sb_features2` bits.
const F2_LAZYSBCOUNT: u32 = 0x02;
const F2_ATTR2: u32 = 0x08;
const F2_PARENT: u32 = 0x10;
const F2_PROJID32: u32 = 0x80;
const F2_CRC: u32 = 0x100;
const F2_FTYPE: u32 = 0x200;

// v5 read-only-compatible features.
pub const RO_FINOBT: u32 = 1 << 0;
pub const RO_RMAPBT: u32 = 1 << 1;
pub const RO_REFLINK: u32 = 1 << 2;
pub const RO_INOBTCNT: u32 = 1 << 3;

// v5 incompatible features.
pub const IN_FTYPE: u32 = 1 << 0;
pub const IN_SPINODES: u32 = 1 << 1;
pub const IN_META_UUID: u32 = 1 << 2;
pub const IN_BIGTIME: u32 = 1 << 3;
pub const IN_NEEDSREPAIR: u32 = 1 << 4;
pub const IN_NREXT64: u32 = 1 << 5;
pub const IN_EXCHRANGE: u32 = 1 << 6;

/// Incompatible features this code reads and writes under.
const IN_KNOWN: u32 = IN_FTYPE | IN_SPINODES | IN_META_UUID | IN_BIGTIME | IN_NREXT64 | IN_EXCHRANGE;

/// What the superblock says, validated.
#[derive(Clone, Debug)]
pub struct Superblock {
    pub raw: Vec<u8>,
    pub block: u64,
    pub sectsize: u64,
    pub dblocks: u64,
    pub agblocks: u64,
    pub agcount: u64,
    pub agblklog: u32,
    pub inodesize: u64,
    pub inopblog: u32,
    pub dirblklog: u32,
    pub rootino: u64,
    pub logstart: u64,
    pub logblocks: u64,
    /// Version 5 (metadata CRCs, self-describing blocks).
    pub v5: bool,
    /// Directory entries carry the file type.
    pub ftype: bool,
    pub ro_compat: u32,
    pub incompat: u32,
    /// The UUID stamped into v5 metadata blocks (`sb_meta_uuid` with meta_uuid, else `sb_uuid`).
    pub meta_uuid: [u8; 16],
    versionnum: u16,
    features2: u32,
}

fn bits_named(bits: u32, names: &[(u32, &'static str)], out: &mut Vec<&'static str>) {
    for (b, n) in names {
        if bits & b != 0 {
            out.push(n);
        }
    }
}

impl Superblock {
    /// Validates the superblock sector `raw` (at least [`SB_LEN`] bytes, and the whole sector
    /// on v5) of a filesystem of `len` bytes.
    pub fn parse(raw: Vec<u8>, len: u64, fs: &str) -> Result<Self, FsError> {
        let bad = |field: &str, value: String, reason: &str| FsError::Invalid {
            fs: fs.to_string(),
            field: format!("XFS superblock {field}"),
            value,
            reason: reason.to_string(),
        };
        if raw.get(0..4) != Some(b"XFSB") {
            return Err(bad("magic", escaped(raw.get(0..4).unwrap_or(&[])), "not an XFS filesystem"));
        }
        let versionnum = be16(&raw, 100);
        let version = versionnum & V_NUMBITS;
        if !(4..=5).contains(&version) {
            return Err(bad("version", version.to_string(), "only XFS v4 and v5 are supported"));
        }
        let v5 = version == 5;
        let blocklog = u32::from(byte(&raw, 120));
        let block = u64::from(be32(&raw, 4));
        if !(9..=16).contains(&blocklog) || block != 1 << blocklog {
            return Err(bad("blocksize", block.to_string(), "not a power of two from 512 to 65536"));
        }
        let sectsize = u64::from(be16(&raw, 102));
        if !sectsize.is_power_of_two() || !(512..=32768).contains(&sectsize) || sectsize > block {
            return Err(bad("sectsize", sectsize.to_string(), "not a power of two from 512 to the block size"));
        }
        let inodesize = u64::from(be16(&raw, 104));
        let inodelog = u32::from(byte(&raw, 122));
        if !(256..=2048).contains(&inodesize) || inodelog > 11 || inodesize != 1 << inodelog || (v5 && inodesize < 512) {
            return Err(bad("inodesize", inodesize.to_string(), "not a power of two from 256 (512 on v5) to 2048"));
        }
        let inopblog = u32::from(byte(&raw, 123));
        if inodesize > block || inopblog != blocklog - inodelog {
            return Err(bad("inopblog", inopblog.to_string(), "does not match the block and inode sizes"));
        }
        let agblocks = u64::from(be32(&raw, 84));
        let agblklog = u32::from(byte(&raw, 124));
        if agblocks < 64 || agblklog > 31 || agblocks > 1u64 << agblklog || agblocks <= 1u64 << agblklog >> 1 {
            return Err(bad("agblocks", agblocks.to_string(), &format!("does not fit agblklog {agblklog}")));
        }
        let agcount = u64::from(be32(&raw, 88));
        let dblocks = be64(&raw, 8);
        let min = agcount.saturating_sub(1).saturating_mul(agblocks);
        if agcount == 0 || dblocks <= min || dblocks > agcount.saturating_mul(agblocks) {
            return Err(bad("dblocks", dblocks.to_string(), &format!("does not match {agcount} AGs of {agblocks} blocks")));
        }
        if dblocks.saturating_mul(block) > len {
            return Err(bad(
                "dblocks",
                dblocks.to_string(),
                &format!("{} bytes of blocks do not fit in the {len}-byte volume", dblocks.saturating_mul(block)),
            ));
        }
        let dirblklog = u32::from(byte(&raw, 192));
        if dirblklog + blocklog > 16 {
            return Err(bad("dirblklog", dirblklog.to_string(), "directory blocks larger than 64 KiB"));
        }
        if be64(&raw, 16) != 0 {
            return Err(FsError::Unsupported { fs: fs.into(), what: "XFS realtime subvolume".into() });
        }
        if byte(&raw, 126) != 0 {
            return Err(bad("inprogress", byte(&raw, 126).to_string(), "mkfs.xfs did not finish"));
        }
        let features2 = be32(&raw, 200);
        let (ro_compat, incompat) = if v5 { (be32(&raw, 212), be32(&raw, 216)) } else { (0, 0) };
        let mut meta_uuid = [0u8; 16];
        let src = if incompat & IN_META_UUID != 0 { 248 } else { 32 };
        meta_uuid.copy_from_slice(raw.get(src..src + 16).unwrap_or(&[0; 16]));
        let sb = Superblock {
            block,
            sectsize,
            dblocks,
            agblocks,
            agcount,
            agblklog,
            inodesize,
            inopblog,
            dirblklog,
            rootino: be64(&raw, 56),
            logstart: be64(&raw, 48),
            logblocks: u64::from(be32(&raw, 96)),
            v5,
            ftype: v5 || features2 & F2_FTYPE != 0,
            ro_compat,
            incompat,
            meta_uuid,
            versionnum,
            features2,
            raw,
        };
        sb.check_features(fs)?;
        if v5 && (sb.raw.len() as u64) < sectsize {
            return Err(bad("sectsize", sectsize.to_string(), "larger than the sector read"));
        }
        if v5 && !crc_ok(sb.raw.get(..sectsize as usize).unwrap_or(&[]), SB_CRC) {
            return Err(bad("crc", format!("{:#010x}", be32(&sb.raw, SB_CRC)), "checksum mismatch"));
        }
        Ok(sb)
    }

    fn check_features(&self, fs: &str) -> Result<(), FsError> {
        let refuse = |what: String| Err(FsError::Unsupported { fs: fs.into(), what });
        if self.v5 {
            let compat = be32(&self.raw, 208);
            if compat != 0 {
                return refuse(format!("XFS compat features {compat:#x}"));
            }
            let unknown_ro = self.ro_compat & !(RO_FINOBT | RO_RMAPBT | RO_REFLINK | RO_INOBTCNT);
            if unknown_ro != 0 {
                return refuse(format!("XFS ro_compat features {unknown_ro:#x}"));
            }
            if self.incompat & IN_NEEDSREPAIR != 0 {
                return refuse("XFS feature needsrepair: run xfs_repair on the guest first".into());
            }
            let not_written = self.incompat & !IN_KNOWN;
            if not_written != 0 {
                let mut names = Vec::new();
                bits_named(not_written, &IN_NAMES, &mut names);
                let unnamed = not_written & !IN_NAMES.iter().fold(0, |a, (b, _)| a | b);
                let mut what = names.join(", ");
                if unnamed != 0 {
                    what.push_str(&format!("{}unknown bits {unnamed:#x}", if what.is_empty() { "" } else { ", " }));
                }
                return refuse(format!("XFS incompat features {what}"));
            }
            let log_incompat = be32(&self.raw, 220);
            if log_incompat != 0 {
                return refuse(format!("XFS log_incompat features {log_incompat:#x} (the log holds new-format items)"));
            }
            if self.features2 & F2_CRC == 0 {
                return refuse("XFS v5 superblock without the crc bit in features2".into());
            }
        } else {
            let known = V_NUMBITS | V_ATTR | V_NLINK | V_QUOTA | V_ALIGN | V_DALIGN | V_SHARED | V_LOGV2
                | V_SECTOR | V_EXTFLG | V_DIRV2 | V_BORG | V_MOREBITS;
            if self.versionnum & !known != 0 {
                return refuse(format!("XFS v4 version bits {:#x}", self.versionnum & !known));
            }
            if self.versionnum & V_DIRV2 == 0 {
                return refuse("XFS v4 version 1 directories".into());
            }
            if self.versionnum & V_BORG != 0 {
                return refuse("XFS feature ascii-ci (case-insensitive names)".into());
            }
            if self.versionnum & V_SHARED != 0 {
                return refuse("XFS feature shared (sb_shared_vn)".into());
            }
        }
        let f2_known = F2_LAZYSBCOUNT | F2_ATTR2 | F2_PROJID32 | F2_CRC | F2_FTYPE;
        if self.features2 & F2_PARENT != 0 || self.features2 & !f2_known != 0 {
            return refuse(format!("XFS features2 bits {:#x}", self.features2 & !f2_known));
        }
        Ok(())
    }

    /// The feature names the superblock sets (inspection's names).
    /// Whether attribute forks may start anywhere in the inode (`attr2`: every v5
    /// filesystem, v4 with the features2 bit).
    pub fn attr2(&self) -> bool {
        self.v5 || self.features2 & F2_ATTR2 != 0
    }

    pub fn features(&self) -> Vec<&'static str> {
        ferry_inspectors::fs::xfs_features(&self.raw)
    }

    /// Blocks in AG `ag` (the last one may be short).
    pub fn ag_len(&self, ag: u64) -> u64 {
        if ag + 1 == self.agcount {
            self.dblocks - ag * self.agblocks
        } else {
            self.agblocks
        }
    }

    /// Inode chunks are aligned to `sb_inoalignmt` blocks.
    pub fn aligned_inodes(&self) -> bool {
        self.v5 || self.versionnum & V_ALIGN != 0
    }

    /// Directory block size in bytes.
    pub fn dirblock(&self) -> u64 {
        self.block << self.dirblklog
    }
}
