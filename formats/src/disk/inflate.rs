use super::DiskError;
use flate2::{Decompress, FlushDecompress, Status};
use std::path::Path;

/// Inflates into `out`; returns the bytes produced and whether more output followed a
/// full `out` (the stream inflates past the buffer).
fn inflate_checked(data: &[u8], out: &mut [u8], zlib_header: bool) -> Result<(usize, bool), String> {
    let mut d = Decompress::new(zlib_header);
    match d.decompress(data, out, FlushDecompress::Finish) {
        Ok(Status::StreamEnd) => Ok((d.total_out() as usize, false)),
        Ok(_) if d.total_out() as usize == out.len() => {
            let rest = data.get(d.total_in() as usize..).unwrap_or_default();
            let mut more = [0u8; 1];
            let before = d.total_out();
            let _ = d.decompress(rest, &mut more, FlushDecompress::Finish);
            Ok((out.len(), d.total_out() > before))
        }
        Ok(_) => Err("truncated deflate stream".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn inflate(data: &[u8], out: &mut [u8], zlib_header: bool) -> Result<usize, String> {
    inflate_checked(data, out, zlib_header).map(|(n, _)| n)
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
        inflate_checked(data, out, true).or_else(|_| inflate_checked(data, out, false))
    } else {
        inflate_checked(data, out, false)
    };
    match result {
        Ok((_, true)) => Err(DiskError::invalid(
            path,
            "compressed grain at sector",
            lba,
            format!("inflates past the grain's {} bytes", out.len()),
        )),
        Ok((n, false)) => {
            out[n..].fill(0);
            Ok(())
        }
        Err(e) => Err(DiskError::invalid(path, "compressed grain at sector", lba, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn grain_must_not_inflate_past_its_size() {
        let p = Path::new("d.vmdk");
        let mut out = vec![0u8; 4096];
        inflate_grain(p, 0, &zlib(&[7u8; 4096]), &mut out).unwrap();
        assert_eq!(out, vec![7u8; 4096]);
        inflate_grain(p, 0, &zlib(&[7u8; 1000]), &mut out).unwrap();
        let e = inflate_grain(p, 128, &zlib(&[7u8; 4097]), &mut out).unwrap_err().to_string();
        assert_eq!(e, "d.vmdk: invalid compressed grain at sector 128: inflates past the grain's 4096 bytes");
    }
}
