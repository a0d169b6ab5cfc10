//! Bounds-checked little-endian field readers: input-controlled offsets never panic.

/// `len` bytes at `off`, or `None` when the slice is too short.
pub(crate) fn field(b: &[u8], off: usize, len: usize) -> Option<&[u8]> {
    b.get(off..off.checked_add(len)?)
}

pub(crate) fn u16le(b: &[u8], off: usize) -> u16 {
    field(b, off, 2).map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

pub(crate) fn u32le(b: &[u8], off: usize) -> u32 {
    field(b, off, 4).map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

pub(crate) fn u64le(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = field(b, off, 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// A fixed-size array copied out of `b` (zeros where `b` is short).
pub(crate) fn array<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    if let Some(s) = field(b, off, N) {
        a.copy_from_slice(s);
    }
    a
}

/// A NUL-padded byte string as text (stops at the first NUL, lossy UTF-8, trimmed).
pub(crate) fn cstr(b: &[u8], off: usize, len: usize) -> String {
    let s = field(b, off, len).unwrap_or_default();
    let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
    String::from_utf8_lossy(&s[..end]).trim_end().to_string()
}

/// UUID text in the usual 8-4-4-4-12 form from 16 bytes in on-disk (big-endian) order.
pub(crate) fn uuid_be(u: &[u8; 16]) -> String {
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

/// A GUID in Microsoft's mixed-endian layout (GPT, LDM) as upper-case text.
pub(crate) fn guid_mixed(g: &[u8; 16]) -> String {
    format!(
        "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{}",
        u32::from_le_bytes([g[0], g[1], g[2], g[3]]),
        u16::from_le_bytes([g[4], g[5]]),
        u16::from_le_bytes([g[6], g[7]]),
        g[8],
        g[9],
        g[10..16].iter().map(|b| format!("{b:02X}")).collect::<String>()
    )
}

/// UTF-16LE bytes (NUL-terminated or padded) as text.
pub(crate) fn utf16le(b: &[u8]) -> String {
    let units: Vec<u16> =
        b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|&u| u != 0).collect();
    String::from_utf16_lossy(&units)
}


pub(crate) fn u16be(b: &[u8], off: usize) -> u16 {
    field(b, off, 2).map_or(0, |s| u16::from_be_bytes([s[0], s[1]]))
}

pub(crate) fn u32be(b: &[u8], off: usize) -> u32 {
    field(b, off, 4).map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

pub(crate) fn u64be(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = field(b, off, 8) {
        a.copy_from_slice(s);
    }
    u64::from_be_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_reads_zero() {
        assert_eq!(u32le(&[1, 2], 0), 0);
        assert_eq!(u16le(&[1, 2], 0), 0x0201);
        assert_eq!(u64le(&[], usize::MAX), 0);
        assert_eq!(cstr(b"abc\0def", 0, 7), "abc");
    }

    #[test]
    fn guid_text() {
        // The EFI System Partition type GUID as stored on disk.
        let esp = [
            0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b,
        ];
        assert_eq!(guid_mixed(&esp), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
        assert_eq!(uuid_be(&[0u8; 16]), "00000000-0000-0000-0000-000000000000");
    }
}
