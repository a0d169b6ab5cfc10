//! Compressed-cluster codecs: zlib (raw deflate with a 4 KiB window, as qemu writes it) and
//! zstd frames. Contexts are kept per thread so clusters can be handled from rayon workers.
use super::header::CompressionType;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::cell::RefCell;
use zstd::stream::raw::{InBuffer, Operation, OutBuffer};

thread_local! {
    static DEFLATE: RefCell<Option<(u32, Compress)>> = const { RefCell::new(None) };
    static INFLATE: RefCell<Option<Decompress>> = const { RefCell::new(None) };
    static ZSTD_D: RefCell<Option<zstd::stream::raw::Decoder<'static>>> = const { RefCell::new(None) };
    static ZSTD_C: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
}

/// Inflates one compressed cluster into `out`, which it must fill exactly. `data` may carry
/// trailing bytes past the end of the stream (the descriptor counts whole sectors).
pub fn decompress(kind: CompressionType, data: &[u8], out: &mut [u8]) -> Result<(), String> {
    match kind {
        CompressionType::Zlib => INFLATE.with(|cell| {
            let mut slot = cell.borrow_mut();
            let d = slot.get_or_insert_with(|| Decompress::new(false));
            d.reset(false);
            match d.decompress(data, out, FlushDecompress::Finish) {
                Ok(_) if d.total_out() as usize == out.len() => Ok(()),
                Ok(Status::StreamEnd) => Err(format!("deflate stream ends after {} bytes", d.total_out())),
                Ok(_) => Err("truncated deflate stream".into()),
                Err(e) => Err(e.to_string()),
            }
        }),
        CompressionType::Zstd => ZSTD_D.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(zstd::stream::raw::Decoder::new().map_err(|e| e.to_string())?);
            }
            let Some(d) = slot.as_mut() else { return Err("no zstd context".into()) };
            d.reinit().map_err(|e| e.to_string())?;
            let mut input = InBuffer::around(data);
            let mut output = OutBuffer::around(out);
            loop {
                let before = (input.pos(), output.pos());
                let hint = d.run(&mut input, &mut output).map_err(|e| e.to_string())?;
                if output.pos() == output.capacity() {
                    return Ok(());
                }
                if hint == 0 || before == (input.pos(), output.pos()) {
                    return Err(format!("zstd frame ends after {} bytes", output.pos()));
                }
            }
        }),
    }
}

/// Compresses one cluster into `out`. Returns the compressed length, or `None` when the
/// result would not be smaller than the cluster (the caller stores it plain).
pub fn compress(kind: CompressionType, level: u32, data: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    out.clear();
    let limit = data.len().saturating_sub(1);
    out.resize(limit, 0);
    match kind {
        CompressionType::Zlib => DEFLATE.with(|cell| {
            let mut slot = cell.borrow_mut();
            let c = match &mut *slot {
                Some((l, c)) if *l == level => c,
                _ => &mut slot.insert((level, Compress::new_with_window_bits(Compression::new(level), false, 12))).1,
            };
            c.reset();
            match c.compress(data, out, FlushCompress::Finish) {
                Ok(Status::StreamEnd) => Some(c.total_out() as usize),
                _ => None,
            }
        }),
        CompressionType::Zstd => ZSTD_C.with(|cell| {
            let mut slot = cell.borrow_mut();
            let level = level as i32;
            let fresh = !matches!(&*slot, Some((l, _)) if *l == level);
            if fresh {
                *slot = Some((level, zstd::bulk::Compressor::new(level).ok()?));
            }
            let (_, c) = slot.as_mut()?;
            c.compress_to_buffer(data, out.as_mut_slice()).ok()
        }),
    }
    .inspect(|&n| out.truncate(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_both_codecs() {
        let data: Vec<u8> = (0..65536u32).map(|i| (i / 7 % 13) as u8).collect();
        for kind in [CompressionType::Zlib, CompressionType::Zstd] {
            let mut c = Vec::new();
            let n = compress(kind, 3, &data, &mut c).unwrap();
            assert!(n < data.len() / 4);
            c.extend_from_slice(&[0xaa; 300]); // trailing sector garbage is ignored
            let mut out = vec![0u8; data.len()];
            decompress(kind, &c, &mut out).unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn incompressible_is_refused() {
        let mut x = 0x1234_5678u32;
        let data: Vec<u8> = (0..65536)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let mut c = Vec::new();
        assert_eq!(compress(CompressionType::Zlib, 6, &data, &mut c), None);
        assert_eq!(compress(CompressionType::Zstd, 3, &data, &mut c), None);
    }
}
