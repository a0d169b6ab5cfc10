//! The compressors the kernel accepts for initramfs segments, detected by magic.

use std::io::{Read, Write};

use super::InitramfsError;

/// A segment's compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip (`1f 8b`).
    Gzip,
    /// xz (`fd 37 7a 58 5a 00`); written with CRC32 checks, as the kernel's decoder wants.
    Xz,
    /// Legacy `.lzma` (`5d 00 00`).
    Lzma,
    /// zstd (`28 b5 2f fd`).
    Zstd,
    /// lz4 legacy format (`02 21 4c 18`), the one the kernel decodes.
    Lz4Legacy,
}

/// Formats the kernel may accept that this module does not decode.
const UNSUPPORTED: [(&[u8], &str); 3] = [
    (b"BZh", "bzip2 compression"),
    (&[0x89, b'L', b'Z', b'O'], "lzo compression"),
    (
        &[0x04, 0x22, 0x4d, 0x18],
        "lz4 frame format (the kernel only decodes lz4 legacy)",
    ),
];

/// Memory the xz/lzma decoders may use: a stream whose header asks for a larger dictionary is
/// refused instead of allocated (`xz -9` needs 65 MiB).
const LZMA_MEMLIMIT: u64 = 256 << 20;
const LZ4_LEGACY_MAGIC: u32 = 0x184C_2102;
const LZ4_CHUNK: usize = 8 << 20;

impl Compression {
    /// Detects the compression of the data starting at `data[0]`.
    pub fn detect(name: &str, data: &[u8]) -> Result<Compression, InitramfsError> {
        let c = if data.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else if data.starts_with(&[0x5d, 0, 0]) {
            Compression::Lzma
        } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if data.starts_with(&LZ4_LEGACY_MAGIC.to_le_bytes()) {
            Compression::Lz4Legacy
        } else {
            if let Some((_, what)) = UNSUPPORTED.iter().find(|(m, _)| data.starts_with(m)) {
                return Err(InitramfsError::Unsupported {
                    path: name.to_string(),
                    what: what.to_string(),
                });
            }
            let head: String = data.iter().take(4).map(|b| format!("{b:02x}")).collect();
            return Err(InitramfsError::invalid(
                name,
                "segment magic",
                head,
                "neither cpio nor a known compression",
            ));
        };
        Ok(c)
    }

    /// The name the tools use.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Lzma => "lzma",
            Compression::Zstd => "zstd",
            Compression::Lz4Legacy => "lz4",
        }
    }

    /// Decompresses the one stream at the start of `input`, at most `limit` bytes of output.
    /// Returns the data and the number of input bytes the stream used.
    pub fn decompress(
        self,
        name: &str,
        input: &[u8],
        limit: u64,
    ) -> Result<(Vec<u8>, usize), InitramfsError> {
        let codec = |source| InitramfsError::Codec {
            path: name.to_string(),
            what: format!("{} decompression", self.name()),
            source,
        };
        let mut out = Vec::new();
        let rest: &[u8] = match self {
            Compression::Gzip => {
                let mut r = flate2::bufread::GzDecoder::new(input).take(limit + 1);
                r.read_to_end(&mut out).map_err(codec)?;
                r.into_inner().into_inner()
            }
            Compression::Xz | Compression::Lzma => {
                let stream = if self == Compression::Xz {
                    liblzma::stream::Stream::new_stream_decoder(LZMA_MEMLIMIT, 0)
                } else {
                    liblzma::stream::Stream::new_lzma_decoder(LZMA_MEMLIMIT)
                }
                .map_err(|e| codec(e.into()))?;
                let mut r = liblzma::bufread::XzDecoder::new_stream(input, stream).take(limit + 1);
                r.read_to_end(&mut out).map_err(codec)?;
                r.into_inner().into_inner()
            }
            Compression::Zstd => {
                let d = zstd::stream::read::Decoder::with_buffer(input)
                    .map_err(codec)?
                    .single_frame();
                let mut r = d.take(limit + 1);
                r.read_to_end(&mut out).map_err(codec)?;
                r.into_inner().finish()
            }
            Compression::Lz4Legacy => return lz4_legacy_decompress(name, input, limit),
        };
        check_limit(name, &out, limit)?;
        let used = input.len() - rest.len();
        Ok((out, used))
    }

    /// Compresses `data` as one stream the kernel can decode.
    pub fn compress(self, data: &[u8]) -> Result<Vec<u8>, InitramfsError> {
        let codec = |source| InitramfsError::Codec {
            path: "initramfs".into(),
            what: format!("{} compression", self.name()),
            source,
        };
        match self {
            Compression::Gzip => {
                let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
                w.write_all(data).map_err(codec)?;
                w.finish().map_err(codec)
            }
            Compression::Xz | Compression::Lzma => {
                let stream = if self == Compression::Xz {
                    liblzma::stream::Stream::new_easy_encoder(6, liblzma::stream::Check::Crc32)
                } else {
                    liblzma::stream::LzmaOptions::new_preset(6)
                        .and_then(|o| liblzma::stream::Stream::new_lzma_encoder(&o))
                }
                .map_err(|e| codec(e.into()))?;
                let mut w = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
                w.write_all(data).map_err(codec)?;
                w.finish().map_err(codec)
            }
            Compression::Zstd => zstd::stream::encode_all(data, 3).map_err(codec),
            Compression::Lz4Legacy => {
                let mut out = LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
                for chunk in data.chunks(LZ4_CHUNK) {
                    let block = lz4_flex::block::compress(chunk);
                    out.extend_from_slice(&(block.len() as u32).to_le_bytes());
                    out.extend_from_slice(&block);
                }
                Ok(out)
            }
        }
    }
}

/// lz4 legacy: magic, then blocks (`u32` LE size + block) of at most 8 MiB output each, up to
/// the end of the input, a zero size (padding) or a repeated magic (a concatenated stream).
fn lz4_legacy_decompress(
    name: &str,
    input: &[u8],
    limit: u64,
) -> Result<(Vec<u8>, usize), InitramfsError> {
    let mut out = Vec::new();
    let mut pos = 4;
    let max_block = LZ4_CHUNK + LZ4_CHUNK / 255 + 16;
    while let Some(size) = input.get(pos..pos + 4) {
        let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]);
        if size == 0 {
            break;
        }
        if size == LZ4_LEGACY_MAGIC {
            pos += 4;
            continue;
        }
        let size = size as usize;
        let block = input
            .get(pos + 4..)
            .and_then(|r| r.get(..size))
            .filter(|_| size <= max_block)
            .ok_or_else(|| {
                InitramfsError::invalid(
                    name,
                    "lz4 block size",
                    format!("{size} at offset {pos}"),
                    "past the end or over 8 MiB",
                )
            })?;
        let start = out.len();
        check_limit(name, &out, limit)?;
        out.resize(start + LZ4_CHUNK, 0);
        let n = lz4_flex::block::decompress_into(block, &mut out[start..]).map_err(|e| {
            InitramfsError::invalid(name, "lz4 block", format!("at offset {pos}"), e.to_string())
        })?;
        out.truncate(start + n);
        pos += 4 + size;
    }
    check_limit(name, &out, limit)?;
    Ok((out, pos.min(input.len())))
}

/// Refuses decompressed output longer than `limit` bytes.
fn check_limit(name: &str, out: &[u8], limit: u64) -> Result<(), InitramfsError> {
    if out.len() as u64 > limit {
        return Err(InitramfsError::invalid(
            name,
            "decompressed size",
            format!("> {limit}"),
            "over the limit",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_lzma_dictionary_is_refused_not_allocated() {
        // a legacy .lzma header asking for a 2 GiB dictionary (found by the initramfs fuzzer)
        let mut data = vec![0x5d, 0, 0, 0, 0x85];
        data.extend_from_slice(&[0xff; 8]);
        data.extend_from_slice(&[0; 64]);
        assert!(Compression::Lzma.decompress("t", &data, 1 << 30).is_err());
    }

    #[test]
    fn each_codec_roundtrips_and_reports_its_length() {
        let data: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in [
            Compression::Gzip,
            Compression::Xz,
            Compression::Lzma,
            Compression::Zstd,
            Compression::Lz4Legacy,
        ] {
            let mut packed = c.compress(&data).unwrap();
            let len = packed.len();
            if c != Compression::Lz4Legacy {
                packed.extend_from_slice(b"\x00\x00\x00\x00070701trailing");
            }
            assert_eq!(Compression::detect("t", &packed).unwrap(), c);
            let (out, used) = c.decompress("t", &packed, 1 << 30).unwrap();
            assert_eq!(out, data, "{c:?}");
            assert_eq!(used, len, "{c:?}");
            let over = c.decompress("t", &packed, 1000).unwrap_err().to_string();
            assert_eq!(over, "t: invalid decompressed size > 1000: over the limit", "{c:?}");
            for cut in [1, 7, len / 2] {
                let _ = c.decompress("t", &packed[..cut], 1 << 30);
            }
        }
    }
}
