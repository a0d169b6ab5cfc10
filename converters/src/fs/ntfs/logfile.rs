//! `$LogFile`: a volume whose journal still has active clients and is not marked clean
//! (Windows powered off or crashed without a clean shutdown, a snapshot of a running
//! guest) is refused, as ntfs-3g refuses it: Windows would replay the journal over Ferry's
//! edits. An empty journal (never used, or emptied by ntfs-3g) is clean. Only the two
//! restart pages are read; their restart areas lie in the first sector, before any fixup.

use super::bytes::*;
use super::record::AT_DATA;
use super::Ntfs;
use crate::fs::FsError;

const NO_CLIENT: u16 = 0xffff;
const VOLUME_IS_CLEAN: u16 = 0x0002;

/// What one restart page says.
struct Restart {
    lsn: u64,
    clean: bool,
}

impl<'a> Ntfs<'a> {
    fn restart_page(&self, runs: &[super::runs::Run], pos: u64) -> Result<Option<(Restart, u64)>, FsError> {
        let mut b = [0u8; 512];
        self.read_runs(runs, pos, &mut b)?;
        let magic = &b[..4];
        if magic != b"RSTR" && magic != b"CHKD" {
            return Ok(None);
        }
        let page = u32_at(&b, 0x10).unwrap_or(0) as u64;
        let ra = u16_at(&b, 0x18).unwrap_or(0) as usize;
        if !(512..=65536).contains(&page) || !page.is_power_of_two() || !ra.is_multiple_of(8) || ra + 0x10 > 510 {
            return Err(self.bad("$LogFile restart page", format!("at {pos}: page size {page}, restart area at {ra}"), "inconsistent"));
        }
        let lsn = if magic == b"CHKD" { u64_at(&b, 8) } else { u64_at(&b, ra) }.unwrap_or(0);
        let in_use = u16_at(&b, ra + 0xc).unwrap_or(NO_CLIENT);
        let flags = u16_at(&b, ra + 0xe).unwrap_or(0);
        let clean = magic == b"CHKD" || in_use == NO_CLIENT || flags & VOLUME_IS_CLEAN != 0;
        Ok(Some((Restart { lsn, clean }, page)))
    }

    /// Refuses a journal with pending transactions.
    pub(super) fn check_logfile(&self) -> Result<(), FsError> {
        let rec = self.read_record(2)?;
        let Some(a) = rec.find(AT_DATA, &[]).filter(|a| a.nonres) else {
            return Err(self.bad("$LogFile", "record 2", "no non-resident $DATA"));
        };
        let (runs, s) = self.attr_runs(&rec, &a)?;
        let size = s.init.min(64 << 20);
        // The first restart page sits at 0 or at a power of two (its page size).
        let mut pos = 0u64;
        let mut found = None;
        while pos + 512 <= size {
            if let Some((r, page)) = self.restart_page(&runs, pos)? {
                found = Some((r, pos, page));
                break;
            }
            pos = if pos == 0 { 512 } else { pos << 1 };
        }
        let Some((first, at, page)) = found else { return Ok(()) };
        let mut current = first;
        if at == 0 && page + 512 <= size {
            if let Some((second, _)) = self.restart_page(&runs, page)? {
                if second.lsn > current.lsn {
                    current = second;
                }
            }
        }
        if !current.clean {
            return Err(FsError::Unclean {
                fs: self.name.clone(),
                reason: "the NTFS journal ($LogFile) has pending transactions (Windows was not shut down cleanly): start Windows and shut it down fully (no hibernation, Fast Startup off)".into(),
            });
        }
        Ok(())
    }
}
