//! Subkey lists: "li" (offsets), "lf" (offset + first four characters), "lh" (offset +
//! name hash), and "ri" (an index of leaves, for long lists). Read in any form; written as
//! lh (regf 1.5+), lf (1.3, 1.4) or li (1.2), split into an ri of leaves of at most
//! [`LEAF_MAX`] entries, sorted by upcased name.

use super::base::{put_u32, u32_at};
use super::bins::Store;
use super::error::{escape, HiveError};
use super::name;

/// Entries per leaf before a list is split under an "ri".
pub(crate) const LEAF_MAX: usize = 512;

/// The leaf signature written for a hive of minor version `minor`.
pub(crate) fn kind(minor: u32) -> &'static [u8; 2] {
    match minor {
        0..=2 => b"li",
        3 | 4 => b"lf",
        _ => b"lh",
    }
}

/// One list entry: the key node and, when the leaf is of the kind written for this hive,
/// its stored hash or hint (reused on rewrite instead of decoding the name again).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub off: u32,
    pub hint: Option<u32>,
}

fn leaf(s: &Store, off: u32, minor: u32, out: &mut Vec<Entry>) -> Result<(), HiveError> {
    let c = s.cell(off)?;
    let sig = c.get(..2).unwrap_or(c);
    let step = match sig {
        b"li" => 4,
        b"lf" | b"lh" => 8,
        _ => return Err(s.bad(&format!("subkey list signature at {off:#x}"), escape(sig), "expected li, lf, lh or ri")),
    };
    let n = u16::from_le_bytes([c[2], c[3]]) as usize;
    if 4 + n * step > c.len() {
        return Err(s.bad(&format!("subkey list count at {off:#x}"), n.to_string(), "runs past its cell"));
    }
    let reuse = sig == kind(minor) && step == 8;
    out.extend((0..n).map(|i| Entry {
        off: u32_at(c, 4 + i * step),
        hint: reuse.then(|| u32_at(c, 8 + i * step)),
    }));
    Ok(())
}

/// The key node offsets of a subkey list, in stored order.
pub(crate) fn read(s: &Store, off: u32) -> Result<Vec<u32>, HiveError> {
    Ok(entries(s, off, 0)?.into_iter().map(|e| e.off).collect())
}

/// The entries of a subkey list, in stored order, with hints valid for `minor`'s kind.
pub(crate) fn entries(s: &Store, off: u32, minor: u32) -> Result<Vec<Entry>, HiveError> {
    let mut out = Vec::new();
    let c = s.cell(off)?;
    if c.len() >= 4 && &c[..2] == b"ri" {
        let n = u16::from_le_bytes([c[2], c[3]]) as usize;
        if 4 + n * 4 > c.len() {
            return Err(s.bad(&format!("index root count at {off:#x}"), n.to_string(), "runs past its cell"));
        }
        for i in 0..n {
            leaf(s, u32_at(c, 4 + i * 4), minor, &mut out)?;
        }
    } else if c.len() >= 4 {
        leaf(s, off, minor, &mut out)?;
    } else {
        return Err(s.bad(&format!("subkey list at {off:#x}"), c.len().to_string(), "cell too small"));
    }
    Ok(out)
}

/// Frees a subkey list (and the leaves of an "ri").
pub(crate) fn free(s: &mut Store, off: u32) -> Result<(), HiveError> {
    let c = s.cell(off)?;
    if c.len() >= 4 && &c[..2] == b"ri" {
        let n = (u16::from_le_bytes([c[2], c[3]]) as usize).min((c.len() - 4) / 4);
        let leaves: Vec<u32> = (0..n).map(|i| u32_at(c, 4 + i * 4)).collect();
        for l in leaves {
            s.free(l)?;
        }
    }
    s.free(off)
}

fn write_leaf(s: &mut Store, minor: u32, keys: &[(u32, u32)]) -> Result<u32, HiveError> {
    let sig = kind(minor);
    let step = if sig == b"li" { 4 } else { 8 };
    let off = s.alloc(4 + keys.len() * step)?;
    let c = s.cell_mut(off)?;
    c[..2].copy_from_slice(sig);
    c[2..4].copy_from_slice(&(keys.len() as u16).to_le_bytes());
    for (i, (k, hint)) in keys.iter().enumerate() {
        put_u32(c, 4 + i * step, *k);
        if step == 8 {
            put_u32(c, 8 + i * step, *hint);
        }
    }
    Ok(off)
}

/// The hash or hint of `key_name` in a leaf of `minor`'s kind.
pub(crate) fn hint(minor: u32, key_name: &str) -> u32 {
    match kind(minor) {
        b"lf" => name::lf_hint(key_name),
        b"lh" => name::lh_hash(key_name),
        _ => 0,
    }
}

/// Writes a list for `keys` (node offset, hint; already sorted); `None` for no keys.
pub(crate) fn write(s: &mut Store, minor: u32, keys: &[(u32, u32)]) -> Result<Option<u32>, HiveError> {
    if keys.is_empty() {
        return Ok(None);
    }
    if keys.len() <= LEAF_MAX {
        return write_leaf(s, minor, keys).map(Some);
    }
    let mut leaves = Vec::new();
    for chunk in keys.chunks(LEAF_MAX) {
        leaves.push(write_leaf(s, minor, chunk)?);
    }
    let off = s.alloc(4 + leaves.len() * 4)?;
    let c = s.cell_mut(off)?;
    c[..2].copy_from_slice(b"ri");
    c[2..4].copy_from_slice(&(leaves.len() as u16).to_le_bytes());
    for (i, l) in leaves.iter().enumerate() {
        put_u32(c, 4 + i * 4, *l);
    }
    Ok(Some(off))
}
