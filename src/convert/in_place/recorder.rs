//! A target image seen through its journal: reads come from the image file (opened
//! read-only) with the journaled writes laid over it; writes are appended to the journal and
//! never reach the image. `Qcow2Rw` runs on it unchanged, so its data clusters, L2 and
//! refcount updates all become journal records, applied later in one go.

use super::journal::JournalWriter;
use ferry_formats::qcow2::HostFile;
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

/// A journaled range of the target: `[start, end)` of the target file, whose bytes are at
/// `jpos` in the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub end: u64,
    pub jpos: u64,
}

struct State {
    /// Non-overlapping pieces by start; a later write replaces what it covers.
    pieces: BTreeMap<u64, Piece>,
    len: u64,
}

/// One target file under a journal (clones share it).
#[derive(Clone)]
pub struct Recorder {
    base: Arc<File>,
    base_len: u64,
    journal: Arc<JournalWriter>,
    state: Arc<Mutex<State>>,
}

impl Recorder {
    pub fn new(base: File, journal: Arc<JournalWriter>) -> io::Result<Self> {
        let base_len = base.metadata()?.len();
        let state = Arc::new(Mutex::new(State { pieces: BTreeMap::new(), len: base_len }));
        Ok(Recorder { base: Arc::new(base), base_len, journal, state })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Each update is completed under the lock before it is released.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The final pieces, in target order, and the file's final length.
    pub fn finish(&self) -> (Vec<(u64, Piece)>, u64, u64) {
        let st = self.lock();
        (st.pieces.iter().map(|(&s, &p)| (s, p)).collect(), self.base_len, st.len)
    }
}

/// Lays `[start, start+len) → jpos` over `pieces`, cutting the pieces it overlaps.
pub fn insert(pieces: &mut BTreeMap<u64, Piece>, start: u64, len: u64, jpos: u64) {
    let end = start + len;
    let first = pieces.range(..start).next_back().filter(|(_, p)| p.end > start).map(|(&s, _)| s).unwrap_or(start);
    let hit: Vec<(u64, Piece)> = pieces.range(first..end).map(|(&s, &p)| (s, p)).collect();
    for (s, p) in hit {
        pieces.remove(&s);
        if s < start {
            pieces.insert(s, Piece { end: start, jpos: p.jpos });
        }
        if p.end > end {
            pieces.insert(end, Piece { end: p.end, jpos: p.jpos + (end - s) });
        }
    }
    if len > 0 {
        pieces.insert(start, Piece { end, jpos });
    }
}

impl HostFile for Recorder {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset + buf.len() as u64;
        // The image as it was (zeros past its end)...
        let from_base = self.base_len.saturating_sub(offset).min(buf.len() as u64) as usize;
        if from_base > 0 {
            FileExt::read_exact_at(&*self.base, &mut buf[..from_base], offset)?;
        }
        buf[from_base..].fill(0);
        // ...under what the journal holds.
        let st = self.lock();
        let first = st.pieces.range(..offset).next_back().filter(|(_, p)| p.end > offset).map(|(&s, _)| s).unwrap_or(offset);
        for (&s, p) in st.pieces.range(first..end) {
            let lo = s.max(offset);
            let hi = p.end.min(end);
            let dst = &mut buf[(lo - offset) as usize..(hi - offset) as usize];
            self.journal.read_at(dst, p.jpos + (lo - s))?;
        }
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut st = self.lock();
        let jpos = self.journal.append(buf)?;
        insert(&mut st.pieces, offset, buf.len() as u64, jpos);
        st.len = st.len.max(offset + buf.len() as u64);
        Ok(())
    }

    fn file_len(&self) -> io::Result<u64> {
        Ok(self.lock().len)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut st = self.lock();
        // Qcow2Rw only grows its file; a shrink is refused rather than journaled.
        if len < st.len {
            return Err(io::Error::other("shrinking a journaled image"));
        }
        st.len = len;
        Ok(())
    }

    fn sync_all(&self) -> io::Result<()> {
        // The journal is fsynced when it is committed.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_writes_cut_earlier_pieces() {
        let mut m = BTreeMap::new();
        insert(&mut m, 100, 100, 1000); // [100,200) -> 1000
        insert(&mut m, 150, 10, 5000); // [150,160) -> 5000
        insert(&mut m, 90, 20, 6000); // [90,110) -> 6000
        insert(&mut m, 195, 10, 7000); // [195,205) -> 7000
        let v: Vec<_> = m.iter().map(|(&s, p)| (s, p.end, p.jpos)).collect();
        assert_eq!(v, [(90, 110, 6000), (110, 150, 1010), (150, 160, 5000), (160, 195, 1060), (195, 205, 7000)]);
        insert(&mut m, 0, 1000, 9000);
        assert_eq!(m.len(), 1);
    }
}
