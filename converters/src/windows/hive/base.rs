//! The base block ("regf", the first 4 KiB): signature, sequence numbers, version, root
//! cell, hive bins data size and the XOR checksum of its first 508 bytes.

use super::error::HiveError;

pub(crate) const BASE_SIZE: usize = 4096;
const CHECKSUM_AT: usize = 508;

/// The fields of the base block Ferry reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Base {
    pub sequence: u32,
    pub minor: u32,
    pub root: u32,
    pub bins_size: u32,
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    u32::from_le_bytes(w)
}

pub(crate) fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// XOR of the first 127 little-endian dwords, with 0 and all-ones remapped as Windows does.
pub(crate) fn checksum(b: &[u8]) -> u32 {
    let x = (0..CHECKSUM_AT).step_by(4).fold(0u32, |x, at| x ^ u32_at(b, at));
    match x {
        0 => 1,
        u32::MAX => u32::MAX - 1,
        x => x,
    }
}

/// Reads and checks the base block of `data` (the whole hive file).
pub(crate) fn parse(file: &str, data: &[u8]) -> Result<Base, HiveError> {
    let bad = |field: &str, value: String, reason: &str| HiveError::Invalid {
        file: file.into(),
        field: field.into(),
        value,
        reason: reason.into(),
    };
    if data.len() < BASE_SIZE + 4096 {
        return Err(bad("file size", data.len().to_string(), "shorter than a base block and one hive bin"));
    }
    if &data[..4] != b"regf" {
        return Err(bad("signature", super::error::escape(&data[..4]), "not a registry hive (regf)"));
    }
    let (primary, secondary) = (u32_at(data, 4), u32_at(data, 8));
    if primary != secondary {
        return Err(HiveError::PendingLogs { file: file.into(), primary, secondary });
    }
    let sum = u32_at(data, CHECKSUM_AT);
    if sum != checksum(data) {
        return Err(bad("base block checksum", format!("{sum:#010x}"), &format!("computed {:#010x}", checksum(data))));
    }
    let major = u32_at(data, 20);
    let minor = u32_at(data, 24);
    if major != 1 || !(2..=6).contains(&minor) {
        return Err(bad("version", format!("{major}.{minor}"), "only regf 1.2 to 1.6 are known"));
    }
    let ty = u32_at(data, 28);
    if ty != 0 {
        return Err(bad("file type", ty.to_string(), "not a primary hive file"));
    }
    let format = u32_at(data, 32);
    if format != 1 {
        return Err(bad("file format", format.to_string(), "not direct memory load (1)"));
    }
    let bins_size = u32_at(data, 40);
    if bins_size == 0 || !bins_size.is_multiple_of(4096) || bins_size as usize > data.len() - BASE_SIZE {
        return Err(bad(
            "hive bins data size",
            bins_size.to_string(),
            &format!("not a multiple of 4096 within the {} byte file", data.len()),
        ));
    }
    Ok(Base { sequence: primary, minor, root: u32_at(data, 36), bins_size })
}

/// Stamps a new (equal) sequence pair, the write time, the bins size and the checksum.
pub(crate) fn finish(data: &mut [u8], sequence: u32, filetime: u64, bins_size: u32) {
    put_u32(data, 4, sequence);
    put_u32(data, 8, sequence);
    data[12..20].copy_from_slice(&filetime.to_le_bytes());
    put_u32(data, 40, bins_size);
    let sum = checksum(data);
    put_u32(data, CHECKSUM_AT, sum);
}

/// Now as a Windows FILETIME (100 ns since 1601).
pub(crate) fn filetime_now() -> u64 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() / 100)
        .unwrap_or(0);
    (unix as u64).saturating_add(116_444_736_000_000_000)
}
