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

fn leaf(s: &Store, off: u32, out: &mut Vec<u32>) -> Result<(), HiveError> {
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
    out.extend((0..n).map(|i| u32_at(c, 4 + i * step)));
    Ok(())
}

/// The key node offsets of a subkey list, in stored order.
pub(crate) fn read(s: &Store, off: u32) -> Result<Vec<u32>, HiveError> {
    let mut out = Vec::new();
    let c = s.cell(off)?;
    if c.len() >= 4 && &c[..2] == b"ri" {
        let n = u16::from_le_bytes([c[2], c[3]]) as usize;
        if 4 + n * 4 > c.len() {
            return Err(s.bad(&format!("index root count at {off:#x}"), n.to_string(), "runs past its cell"));
        }
        for i in 0..n {
            leaf(s, u32_at(c, 4 + i * 4), &mut out)?;
        }
    } else if c.len() >= 4 {
        leaf(s, off, &mut out)?;
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

fn write_leaf(s: &mut Store, minor: u32, keys: &[(String, u32)]) -> Result<u32, HiveError> {
    let (sig, step): (&[u8; 2], usize) = match minor {
        0..=2 => (b"li", 4),
        3 | 4 => (b"lf", 8),
        _ => (b"lh", 8),
    };
    let off = s.alloc(4 + keys.len() * step)?;
    let c = s.cell_mut(off)?;
    c[..2].copy_from_slice(sig);
    c[2..4].copy_from_slice(&(keys.len() as u16).to_le_bytes());
    for (i, (n, k)) in keys.iter().enumerate() {
        put_u32(c, 4 + i * step, *k);
        match sig {
            b"lf" => put_u32(c, 8 + i * step, name::lf_hint(n)),
            b"lh" => put_u32(c, 8 + i * step, name::lh_hash(n)),
            _ => {}
        }
    }
    Ok(off)
}

/// Writes a list for `keys` (already sorted); `None` for no keys.
pub(crate) fn write(s: &mut Store, minor: u32, keys: &[(String, u32)]) -> Result<Option<u32>, HiveError> {
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
