//! Little-endian field access and the checksums ext4 uses.
//!
//! The getters return 0 and the setters do nothing when a field lies outside the buffer; they
//! are only used on buffers whose size was validated (superblock, inode, descriptor, block),
//! so this never hides a real value, and corrupted input can never make them panic.

pub fn le16(b: &[u8], off: usize) -> u16 {
    b.get(off..off + 2).map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

pub fn le32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4).map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

pub fn set16(b: &mut [u8], off: usize, v: u16) {
    if let Some(s) = b.get_mut(off..off + 2) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

pub fn set32(b: &mut [u8], off: usize, v: u32) {
    if let Some(s) = b.get_mut(off..off + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// A 64-bit value split in a low 32-bit field and a high field of `hi_bytes` (2 or 4) bytes;
/// the high part is only read when `has_hi`.
pub fn lohi(b: &[u8], lo: usize, hi: usize, hi_bytes: usize, has_hi: bool) -> u64 {
    let h = match (has_hi, hi_bytes) {
        (false, _) => 0,
        (true, 2) => u64::from(le16(b, hi)),
        (true, _) => u64::from(le32(b, hi)),
    };
    u64::from(le32(b, lo)) | (h << 32)
}

pub fn set_lohi(b: &mut [u8], lo: usize, hi: usize, hi_bytes: usize, has_hi: bool, v: u64) {
    set32(b, lo, v as u32);
    if has_hi {
        if hi_bytes == 2 {
            set16(b, hi, (v >> 32) as u16);
        } else {
            set32(b, hi, (v >> 32) as u32);
        }
    }
}

/// The kernel's `crc32c_le(seed, data)`: CRC32C without the final inversion.
pub fn crc32c_raw(seed: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!seed, data)
}

/// The kernel's `crc16(crc, data)` (polynomial 0x8005, reflected), used by `gdt_csum`.
pub fn crc16(mut crc: u16, data: &[u8]) -> u16 {
    for &byte in data {
        crc ^= u16::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_reference_values() {
        // CRC32C("123456789") = 0xE3069283 with the standard pre/post inversion.
        assert_eq!(!crc32c_raw(!0, b"123456789"), 0xE306_9283);
        // CRC-16/ARC("123456789") = 0xBB3D (initial 0, reflected 0x8005).
        assert_eq!(crc16(0, b"123456789"), 0xBB3D);
    }

    #[test]
    fn out_of_range_fields_are_inert() {
        let mut b = [0u8; 3];
        assert_eq!(le32(&b, 1), 0);
        set32(&mut b, 1, 7);
        assert_eq!(b, [0; 3]);
    }
}
