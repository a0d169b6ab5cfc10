//! The USN change journal (`$Extend\$UsnJrnl`): Ferry writes no journal records for its
//! changes, so it resets the journal the way Windows lets a journal be replaced: its `$Max`
//! stream (maximum size, allocation delta, journal id, lowest valid USN) gets a new journal
//! id, and the lowest valid USN moves to the end of the `$J` stream. A reader that kept its
//! place (the search indexer, backup and replication agents) finds another journal id and
//! rescans the volume instead of trusting a journal that missed Ferry's changes; the records
//! already in `$J` are left where they are, below the lowest valid USN.

use super::bytes::*;
use super::ops::now;
use super::record::AT_DATA;
use super::Ntfs;
use crate::fs::FsError;

const JOURNAL: &str = "/$Extend/$UsnJrnl";
/// `$Max`: MaximumSize, AllocationDelta, UsnJournalID, LowestValidUsn (u64 each).
const MAX_LEN: usize = 32;
const ID_AT: usize = 16;
const LOWEST_AT: usize = 24;

/// What [`Ntfs::reset_usn_journal`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsnReset {
    /// The volume has no change journal (it was never enabled, or was deleted).
    NoJournal,
    /// The journal got `new_id` (it had `old_id`); its lowest valid USN is now `lowest_valid`
    /// (None: `$J`'s header is in another MFT record, and the old value stays).
    Reset { old_id: u64, new_id: u64, lowest_valid: Option<u64> },
}

fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

impl Ntfs<'_> {
    /// Resets the change journal (see the module documentation). A `$Max` stream that is
    /// missing from the journal's base record, non-resident or shorter than 32 bytes is
    /// refused in one line, and nothing is written.
    pub fn reset_usn_journal(&mut self) -> Result<UsnReset, FsError> {
        let Some(fref) = self.resolve(JOURNAL)? else { return Ok(UsnReset::NoJournal) };
        let mut rec = self.read_ref(fref)?;
        let what = format!("{JOURNAL}:$Max (record {})", rec.num);
        let Some(max) = rec.find(AT_DATA, &utf16("$Max")) else {
            return Err(self.bad("$UsnJrnl:$Max", what, "not in the journal's base record"));
        };
        if max.nonres || rec.value(&max).len() < MAX_LEN {
            return Err(self.bad("$UsnJrnl:$Max", what, format!("{} of {} bytes, not the resident 32-byte journal header", if max.nonres { "non-resident" } else { "resident" }, rec.value(&max).len())));
        }
        // The next USN Windows would give is `$J`'s size (its records are addressed by offset).
        let lowest_valid = rec.find(AT_DATA, &utf16("$J")).map(|j| if j.nonres { u64_at(rec.raw(&j), 0x30).unwrap_or(0) } else { rec.value(&j).len() as u64 });
        let v = rec.value_mut(&max);
        let old_id = u64_at(v, ID_AT).unwrap_or(0);
        // Windows makes journal ids from the system time; a clock behind the old id still
        // gives a different one.
        let new_id = now().max(old_id.wrapping_add(1));
        put64(v, ID_AT, new_id);
        if let Some(l) = lowest_valid {
            put64(v, LOWEST_AT, l);
        }
        self.write_record(&rec)?;
        Ok(UsnReset::Reset { old_id, new_id, lowest_valid })
    }
}
