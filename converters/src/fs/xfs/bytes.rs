//! Big-endian field access and the CRC32C every v5 XFS metadata block carries.
//!
//! The getters return 0 and the setters do nothing when a field lies outside the buffer; they
//! are only used on buffers whose size was validated (superblock sector, inode, block), so
//! this never hides a real value and corrupted input can never make them panic.

pub fn be16(b: &[u8], off: usize) -> u16 {
    b.get(off..off + 2).map_or(0, |s| u16::from_be_bytes([s[0], s[1]]))
}

pub fn be32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4).map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

pub fn be64(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8).map_or(0, |s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_be_bytes(a)
    })
}

pub fn byte(b: &[u8], off: usize) -> u8 {
    b.get(off).copied().unwrap_or(0)
}

pub fn set16(b: &mut [u8], off: usize, v: u16) {
    if let Some(s) = b.get_mut(off..off + 2) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

pub fn set32(b: &mut [u8], off: usize, v: u32) {
    if let Some(s) = b.get_mut(off..off + 4) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

pub fn set64(b: &mut [u8], off: usize, v: u64) {
    if let Some(s) = b.get_mut(off..off + 8) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

/// The CRC32C of `buf` with its 4-byte checksum field at `off` taken as zero (xfsprogs'
/// `xfs_start_cksum` + `xfs_end_cksum`), as it is stored: little-endian.
pub fn crc(buf: &[u8], off: usize) -> u32 {
    let (head, rest) = buf.split_at(off.min(buf.len()));
    let tail = rest.get(4..).unwrap_or(&[]);
    let c = crc32c::crc32c(head);
    let c = crc32c::crc32c_append(c, &[0u8; 4]);
    crc32c::crc32c_append(c, tail)
}

/// Whether the stored checksum at `off` matches the buffer.
pub fn crc_ok(buf: &[u8], off: usize) -> bool {
    buf.get(off..off + 4).is_some_and(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) == crc(buf, off))
}

/// Recomputes and stores the checksum at `off`.
pub fn set_crc(buf: &mut [u8], off: usize) {
    let c = crc(buf, off);
    if let Some(s) = buf.get_mut(off..off + 4) {
        s.copy_from_slice(&c.to_le_bytes());
    }
}

/// Printable form of on-disk bytes for error messages (non-printable bytes escaped).
pub fn escaped(b: &[u8]) -> String {
    b.iter().flat_map(|&c| std::ascii::escape_default(c)).map(char::from).collect()
}
