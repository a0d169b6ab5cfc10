//! The allocation group headers: AGF (free space), AGI (inodes) and AGFL (the free list), in
//! sectors 1, 2 and 3 of every AG. Opening checks every header's magic, sequence number,
//! length, UUID and (v5) CRC, so nothing is written into a filesystem whose headers are bad.

use super::bytes::{be32, crc_ok, escaped};
use super::Xfs;
use crate::fs::FsError;

pub const AGF_CRC: usize = 216;
pub const AGI_CRC: usize = 312;
pub const AGFL_CRC: usize = 32;

impl Xfs<'_> {
    /// Byte offset of sector `n` of AG `ag`.
    pub(super) fn ag_sector(&self, ag: u64, n: u64) -> u64 {
        ag * self.sb.agblocks * self.sb.block + n * self.sb.sectsize
    }

    /// Reads and validates header `n` (1 AGF, 2 AGI, 3 AGFL) of AG `ag`.
    pub(super) fn ag_header(&self, ag: u64, n: u64) -> Result<Vec<u8>, FsError> {
        let (what, magic, crc_off, uuid_off) = match n {
            1 => ("AGF", b"XAGF", AGF_CRC, 64),
            2 => ("AGI", b"XAGI", AGI_CRC, 296),
            _ => ("AGFL", b"XAFL", AGFL_CRC, 8),
        };
        let mut raw = vec![0u8; self.sb.sectsize as usize];
        self.vol.read(&mut raw, self.ag_sector(ag, n), &self.name)?;
        let field = |f: &str| format!("AG {ag} {what} {f}");
        if n == 3 && !self.sb.v5 {
            return Ok(raw);
        }
        if raw.get(0..4) != Some(magic) {
            return Err(self.invalid(&field("magic"), escaped(raw.get(0..4).unwrap_or(&[])), "bad magic"));
        }
        let seq_off = if n == 3 { 4 } else { 8 };
        if u64::from(be32(&raw, seq_off)) != ag {
            return Err(self.invalid(&field("seqno"), be32(&raw, seq_off), "wrong AG number"));
        }
        if n != 3 && u64::from(be32(&raw, 12)) != self.sb.ag_len(ag) {
            return Err(self.invalid(&field("length"), be32(&raw, 12), format!("the AG has {} blocks", self.sb.ag_len(ag))));
        }
        if self.sb.v5 {
            if raw.get(uuid_off..uuid_off + 16) != Some(&self.sb.meta_uuid[..]) {
                return Err(self.invalid(&field("uuid"), escaped(raw.get(uuid_off..uuid_off + 16).unwrap_or(&[])), "not this filesystem's"));
            }
            if !crc_ok(&raw, crc_off) {
                return Err(self.invalid(&field("crc"), format!("{:#010x}", be32(&raw, crc_off)), "checksum mismatch"));
            }
        }
        Ok(raw)
    }

    /// Validates the AGF, AGI and AGFL of every AG.
    pub(super) fn check_ags(&self) -> Result<(), FsError> {
        for ag in 0..self.sb.agcount {
            for n in 1..=3 {
                self.ag_header(ag, n)?;
            }
        }
        Ok(())
    }
}
