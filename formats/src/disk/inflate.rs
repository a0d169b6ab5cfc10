use super::DiskError;
use flate2::{Decompress, FlushDecompress, Status};
use std::path::Path;

fn inflate(data: &[u8], out: &mut [u8], zlib_header: bool) -> Result<usize, String> {
    let mut d = Decompress::new(zlib_header);
    match d.decompress(data, out, FlushDecompress::Finish) {
        Ok(Status::StreamEnd) => Ok(d.total_out() as usize),
        Ok(_) if d.total_out() as usize == out.len() => Ok(out.len()),
        Ok(_) => Err("truncated deflate stream".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Inflates a zlib-wrapped (RFC 1950) stream into `out`; returns the bytes produced.
pub fn inflate_zlib(data: &[u8], out: &mut [u8]) -> Result<usize, String> {
    inflate(data, out, true)
}

/// Inflates a raw deflate (RFC 1951) stream into `out`; returns the bytes produced.
pub fn inflate_deflate(data: &[u8], out: &mut [u8]) -> Result<usize, String> {
    inflate(data, out, false)
}

/// Inflates a compressed VMDK grain, which real files store zlib-wrapped (RFC 1950) although
/// the spec says raw deflate (RFC 1951): both are accepted. The grain must fill `out`
/// exactly, except that `out` may be longer when the grain is the disk's partial last one;
/// the remainder is zeroed.
pub fn inflate_grain(path: &Path, lba: u64, data: &[u8], out: &mut [u8]) -> Result<(), DiskError> {
    let looks_zlib = data.len() >= 2
        && data[0] & 0x0f == 8
        && (u16::from(data[0]) << 8 | u16::from(data[1])) % 31 == 0;
    let result = if looks_zlib {
        inflate_zlib(data, out).or_else(|_| inflate_deflate(data, out))
    } else {
        inflate_deflate(data, out)
    };
    match result {
        Ok(n) => {
            out[n..].fill(0);
            Ok(())
        }
        Err(e) => Err(DiskError::invalid(path, "compressed grain at sector", lba, e)),
    }
}
