//! Key and value names: stored Latin-1 ("compressed", flag 0x20 / 0x1) or UTF-16LE;
//! compared case-insensitively by upcased UTF-16 units, as the kernel's binary search over
//! subkey lists does; hashed for "lh" lists (hash × 37 + upcased unit) and "lf" lists
//! (the first four units).

use std::cmp::Ordering;

/// Decodes a stored name.
pub(crate) fn decode(raw: &[u8], compressed: bool) -> String {
    if compressed {
        raw.iter().map(|&b| char::from(b)).collect()
    } else {
        let units = raw.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
        char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)).collect()
    }
}

/// Encodes a name: Latin-1 when every character fits (and the flag says so), else UTF-16LE.
pub(crate) fn encode(name: &str) -> (Vec<u8>, bool) {
    if name.chars().all(|c| (c as u32) < 0x100) {
        (name.chars().map(|c| c as u8).collect(), true)
    } else {
        (name.encode_utf16().flat_map(u16::to_le_bytes).collect(), false)
    }
}

/// Length of the name in UTF-16 bytes (what the "largest name" fields count).
pub(crate) fn utf16_len(name: &str) -> u32 {
    name.encode_utf16().count() as u32 * 2
}

fn upcase(u: u16) -> u16 {
    if u < 0x80 {
        return (u as u8).to_ascii_uppercase() as u16;
    }
    let Some(c) = char::from_u32(u as u32) else { return u };
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(x), None) if (x as u32) < 0x10000 => x as u32 as u16,
        _ => u,
    }
}

fn upper_units(name: &str) -> impl Iterator<Item = u16> + '_ {
    name.encode_utf16().map(upcase)
}

/// The upcased UTF-16 units of a name, for [`cmp_raw`].
pub(crate) fn upper(name: &str) -> Vec<u16> {
    upper_units(name).collect()
}

/// Compares a stored name with an upcased one, without decoding it to a `String`.
pub(crate) fn cmp_raw(raw: &[u8], compressed: bool, upper: &[u16]) -> Ordering {
    if compressed {
        raw.iter().map(|&b| upcase(b as u16)).cmp(upper.iter().copied())
    } else {
        raw.chunks_exact(2).map(|c| upcase(u16::from_le_bytes([c[0], c[1]]))).cmp(upper.iter().copied())
    }
}

/// The order of keys in a subkey list.
pub(crate) fn cmp(a: &str, b: &str) -> Ordering {
    upper_units(a).cmp(upper_units(b))
}

pub(crate) fn eq(a: &str, b: &str) -> bool {
    cmp(a, b) == Ordering::Equal
}

/// The "lh" hash.
pub(crate) fn lh_hash(name: &str) -> u32 {
    upper_units(name).fold(0u32, |h, u| h.wrapping_mul(37).wrapping_add(u as u32))
}

/// The "lf" hint: the first four characters (Latin-1 bytes; 0 for a wider unit).
pub(crate) fn lf_hint(name: &str) -> u32 {
    let mut b = [0u8; 4];
    for (i, u) in name.encode_utf16().take(4).enumerate() {
        b[i] = if u < 0x100 { u as u8 } else { 0 };
    }
    u32::from_le_bytes(b)
}
