//! The internal log, read only to decide whether it is clean. A filesystem unmounted cleanly
//! ends its log with an unmount record (one operation, flagged `XLOG_UNMOUNT_TRANS`): nothing
//! left to replay.
//! Anything else (a crash, a guest that was running when copied) is refused, since the replay
//! at the next mount would undo or corrupt what the writer did.
//!
//! The head is found as the kernel does: every 512-byte log block starts with the cycle
//! number of the pass that wrote it, so the head is where the cycle drops (binary search).
//! The last record header (magic `0xFEEDBABE`) before the head must be the unmount record.

use super::bytes::{be32, be64, byte};
use super::Xfs;
use crate::fs::FsError;

const BB: u64 = 512;
const RECORD_MAGIC: u32 = 0xFEED_BABE;
/// `XLOG_UNMOUNT_TRANS` in an operation header's flags.
const UNMOUNT_TRANS: u8 = 0x20;
/// Basic blocks searched back from the head for the last record header (a record is at most
/// 256 KiB of data plus its headers).
const MAX_BACK: u64 = 1024;
/// Bytes of a log record header that each hold one 32 KiB slice's cycle data.
const HEADER_CYCLE_SIZE: u64 = 32 * 1024;

impl Xfs<'_> {
    fn log_bb(&self, start: u64, n: u64) -> Result<Vec<u8>, FsError> {
        let mut b = vec![0u8; BB as usize];
        self.vol.read(&mut b, start + n * BB, &self.name)?;
        Ok(b)
    }

    /// Refuses a log that needs recovery.
    pub(super) fn check_log(&self) -> Result<(), FsError> {
        let sb = &self.sb;
        if sb.logstart == 0 {
            return Err(FsError::Unsupported { fs: self.name.clone(), what: "XFS external log device".into() });
        }
        let start = self.fsb_byte(sb.logstart, "sb_logstart")?;
        let bbs = sb.logblocks.saturating_mul(sb.block) / BB;
        if bbs < 2 || start.saturating_add(bbs * BB) > self.vol.len() {
            return Err(self.invalid("XFS superblock logblocks", sb.logblocks, "the log does not fit in the filesystem"));
        }
        let cycle = |n: u64| -> Result<u32, FsError> {
            let b = self.log_bb(start, n)?;
            Ok(if be32(&b, 0) == RECORD_MAGIC { be32(&b, 4) } else { be32(&b, 0) })
        };
        let dirty = || FsError::LogNeedsRecovery { fs: self.name.clone() };
        let first = cycle(0)?;
        let last = cycle(bbs - 1)?;
        // The head: the first block still carrying the previous pass's cycle number.
        let head = if first == last {
            0
        } else {
            let (mut lo, mut hi) = (0u64, bbs - 1);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if cycle(mid)? == first {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            hi
        };
        // The last record header before the head.
        let mut found = None;
        for back in 1..=MAX_BACK.min(bbs) {
            let n = (head + bbs - back) % bbs;
            let b = self.log_bb(start, n)?;
            if be32(&b, 0) == RECORD_MAGIC {
                found = Some((n, b));
                break;
            }
        }
        let Some((rec, hdr)) = found else { return Err(dirty()) };
        let h_cycle = u64::from(be32(&hdr, 4));
        let h_len = u64::from(be32(&hdr, 12));
        let lsn = be64(&hdr, 16);
        let num_ops = be32(&hdr, 40);
        let h_size = u64::from(be32(&hdr, 320));
        let hdr_bbs = if be32(&hdr, 8) & 2 != 0 { h_size.div_ceil(HEADER_CYCLE_SIZE).max(1) } else { 1 };
        if lsn != (h_cycle << 32 | rec) || num_ops != 1 {
            return Err(dirty());
        }
        if (rec + hdr_bbs + h_len.div_ceil(BB)) % bbs != head {
            return Err(dirty());
        }
        let op = self.log_bb(start, (rec + hdr_bbs) % bbs)?;
        if byte(&op, 9) & UNMOUNT_TRANS == 0 {
            return Err(dirty());
        }
        Ok(())
    }
}
