//! The on-disk format of the `--in-place` redo journal, parsed from any bytes (this file
//! stands alone: the fuzz target `in_place_journal` compiles it by itself). Layout: a 4 KiB
//! header (magic, version, writer's PID), the data records, a JSON index, and a 64-byte
//! trailer (magic, index position and length, SHA-256 of everything before it). Without a
//! valid trailer whose checksum matches, the journal was never committed.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

pub const MAGIC: &[u8; 8] = b"FERRYIPJ";
pub const TRAILER_MAGIC: &[u8; 8] = b"FERRYIPC";
pub const VERSION: u32 = 1;
pub const HEADER: u64 = 4096;
pub const TRAILER: u64 = 64;
/// An index larger than this is refused (it would describe millions of ranges).
pub const MAX_INDEX: u64 = 256 << 20;
/// Bytes read at once while checking the checksum.
pub const CHUNK: u64 = 4 << 20;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetIndex {
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    pub len_before: u64,
    pub len_after: u64,
    /// `[target offset, length, journal position]`, in target order, non-overlapping.
    pub ranges: Vec<[u64; 3]>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FileIndex {
    pub path: PathBuf,
    pub executable: bool,
    pub jpos: u64,
    pub len: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Index {
    pub targets: Vec<TargetIndex>,
    pub files: Vec<FileIndex>,
}

/// What a journal holds.
#[derive(Debug)]
pub enum Found {
    /// Committed: it must be applied.
    Complete(Index),
    /// Never committed, written by `pid` (0: unknown): the targets were not touched.
    Incomplete { pid: u32 },
}

/// The header block of a journal written by `pid`.
pub fn header(pid: u32) -> Vec<u8> {
    let mut head = vec![0u8; HEADER as usize];
    head[..8].copy_from_slice(MAGIC);
    head[8..12].copy_from_slice(&VERSION.to_le_bytes());
    head[12..16].copy_from_slice(&pid.to_le_bytes());
    head
}

/// The trailer that commits an index of `index_len` bytes at `index_pos`.
pub fn trailer(index_pos: u64, index_len: u64, digest: &[u8]) -> [u8; TRAILER as usize] {
    let mut tr = [0u8; TRAILER as usize];
    tr[..8].copy_from_slice(TRAILER_MAGIC);
    tr[8..16].copy_from_slice(&index_pos.to_le_bytes());
    tr[16..24].copy_from_slice(&index_len.to_le_bytes());
    let n = digest.len().min(32);
    tr[24..24 + n].copy_from_slice(&digest[..n]);
    tr
}

/// Reads a journal of `len` bytes through `read` (positioned, exact reads) and verifies it:
/// header, trailer, checksum, index, and every range inside the data area. An error is one
/// line without the file's name.
pub fn parse(len: u64, read: &mut dyn FnMut(&mut [u8], u64) -> std::io::Result<()>) -> Result<Found, String> {
    let mut head = [0u8; 16];
    if len < HEADER || read(&mut head, 0).is_err() || &head[..8] != MAGIC {
        // Torn before its header reached the disk: nothing was applied.
        return Ok(Found::Incomplete { pid: 0 });
    }
    let word4 = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let version = word4(8);
    if version != VERSION {
        return Err(format!("in-place journal version {version} is not supported (this ferry writes {VERSION})"));
    }
    let pid = word4(12);
    let incomplete = Ok(Found::Incomplete { pid });
    if len < HEADER + TRAILER {
        return incomplete;
    }
    let mut tr = [0u8; TRAILER as usize];
    read(&mut tr, len - TRAILER).map_err(|e| format!("read: {e}"))?;
    let word = |i: usize| u64::from_le_bytes(tr[i..i + 8].try_into().unwrap_or([0; 8]));
    let (index_pos, index_len) = (word(8), word(16));
    if &tr[..8] != TRAILER_MAGIC || index_pos < HEADER || index_len > MAX_INDEX || index_pos.checked_add(index_len) != Some(len - TRAILER) {
        return incomplete;
    }
    // The checksum covers everything before the trailer.
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK.min(index_pos + index_len) as usize];
    let mut pos = 0;
    while pos < index_pos + index_len {
        let n = (index_pos + index_len - pos).min(CHUNK) as usize;
        read(&mut buf[..n], pos).map_err(|e| format!("read: {e}"))?;
        hash.update(&buf[..n]);
        pos += n as u64;
    }
    if hash.finalize().as_slice() != &tr[24..56] {
        return incomplete;
    }
    let mut text = vec![0u8; index_len as usize];
    read(&mut text, index_pos).map_err(|e| format!("read index: {e}"))?;
    let index: Index = serde_json::from_slice(&text).map_err(|e| format!("index: {e}"))?;
    for t in &index.targets {
        if t.ranges.iter().any(|&[_, l, j]| j < HEADER || j.checked_add(l).is_none_or(|e| e > index_pos)) {
            return Err(format!("a range of {:?} lies outside the journal's data", t.path.display().to_string()));
        }
    }
    if index.files.iter().any(|f| f.jpos < HEADER || f.jpos.checked_add(f.len).is_none_or(|e| e > index_pos)) {
        return Err("a description file lies outside the journal's data".into());
    }
    Ok(Found::Complete(index))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(index: &Index, data: &[u8]) -> Vec<u8> {
        let mut j = header(7);
        j.extend_from_slice(data);
        let text = serde_json::to_vec(index).unwrap();
        let pos = j.len() as u64;
        j.extend_from_slice(&text);
        let digest = Sha256::digest(&j);
        j.extend_from_slice(&trailer(pos, text.len() as u64, &digest));
        j
    }

    fn parse_bytes(b: &[u8]) -> Result<Found, String> {
        parse(b.len() as u64, &mut |buf, off| {
            let s = b.get(off as usize..off as usize + buf.len()).ok_or_else(|| std::io::Error::other("past the end"))?;
            buf.copy_from_slice(s);
            Ok(())
        })
    }

    #[test]
    fn committed_torn_and_corrupt_journals() {
        let index = Index {
            targets: vec![TargetIndex { path: "/t".into(), dev: 1, ino: 2, len_before: 10, len_after: 20, ranges: vec![[0, 4, HEADER]] }],
            files: vec![],
        };
        let j = journal(&index, b"abcd");
        assert!(matches!(parse_bytes(&j), Ok(Found::Complete(i)) if i.targets[0].ranges == [[0, 4, HEADER]]));
        // Torn anywhere before the trailer's last byte: not committed, nothing to apply.
        for cut in [0, 100, HEADER as usize, j.len() - 1] {
            assert!(matches!(parse_bytes(&j[..cut]), Ok(Found::Incomplete { .. })), "cut at {cut}");
        }
        // A flipped data byte fails the checksum.
        let mut bad = j.clone();
        bad[HEADER as usize] ^= 1;
        assert!(matches!(parse_bytes(&bad), Ok(Found::Incomplete { pid: 7 })));
        // A committed range outside the data area is refused.
        let index = Index { targets: vec![TargetIndex { ranges: vec![[0, 1 << 40, HEADER]], ..index.targets[0].clone() }], files: vec![] };
        let e = parse_bytes(&journal(&index, b"abcd")).unwrap_err();
        assert!(e.contains("outside the journal's data") && !e.contains('\n'), "{e}");
    }
}
