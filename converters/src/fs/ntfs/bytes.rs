//! Little-endian field access for NTFS structures: bounds-checked reads (input-controlled
//! offsets) and writes into buffers whose layout Ferry has already validated or built.

pub(super) fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o.checked_add(2)?)?.try_into().ok()?))
}

pub(super) fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o.checked_add(4)?)?.try_into().ok()?))
}

pub(super) fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o.checked_add(8)?)?.try_into().ok()?))
}

pub(super) fn put16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}

pub(super) fn put32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}

pub(super) fn put64(b: &mut [u8], o: usize, v: u64) {
    b[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

pub(super) fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// Bytes as they appear in an error message: printable ASCII kept, the rest escaped.
pub(super) fn escape(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

/// A UTF-16 name for messages, unpaired surrogates escaped.
pub(super) fn name_str(n: &[u16]) -> String {
    char::decode_utf16(n.iter().copied())
        .map(|c| c.map(String::from).unwrap_or_else(|e| format!("\\u{{{:04x}}}", e.unpaired_surrogate())))
        .collect()
}
