//! Items of fs trees: inodes, directory entries, inode refs, file extents and their
//! decompression (zlib, lzo, zstd).

use crate::bytes::{field, u16le, u32le, u64le};
use std::io::Read;

pub const INODE_ITEM: u8 = 1;
pub const INODE_REF: u8 = 12;
pub const DIR_ITEM: u8 = 84;
pub const DIR_INDEX: u8 = 96;
pub const EXTENT_DATA: u8 = 108;
pub const ROOT_ITEM: u8 = 132;
pub const ROOT_BACKREF: u8 = 144;
pub const ROOT_REF: u8 = 156;
/// The first inode of every fs tree: its root directory.
pub const FIRST_FREE_OBJECTID: u64 = 256;
/// Largest uncompressed size of a compressed extent (`BTRFS_MAX_UNCOMPRESSED`).
pub const MAX_UNCOMPRESSED: u64 = 128 * 1024;

/// The fields of an inode item the reader uses.
#[derive(Clone, Copy, Debug)]
pub struct Inode {
    pub size: u64,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl Inode {
    pub fn parse(d: &[u8]) -> Result<Self, String> {
        if d.len() < 160 {
            return Err(format!("inode item of {} bytes, not 160", d.len()));
        }
        Ok(Inode { size: u64le(d, 16), nlink: u32le(d, 40), uid: u32le(d, 44), gid: u32le(d, 48), mode: u32le(d, 52) })
    }
}

/// A directory entry (DIR_ITEM / DIR_INDEX): the key it points to, its type, its name.
#[derive(Clone, Debug)]
pub struct DirEntry {
    pub location_id: u64,
    /// `INODE_ITEM` for a file or directory, `ROOT_ITEM` for a subvolume.
    pub location_type: u8,
    pub file_type: u8,
    pub name: Vec<u8>,
}

/// The entries packed in one DIR_ITEM or DIR_INDEX item.
pub fn dir_entries(d: &[u8]) -> Result<Vec<DirEntry>, String> {
    let mut out = Vec::new();
    let mut p = 0;
    while p < d.len() {
        let (data_len, name_len) = (usize::from(u16le(d, p + 25)), usize::from(u16le(d, p + 27)));
        let end = p + 30 + name_len + data_len;
        if end > d.len() {
            return Err(format!("dir item name_len {name_len} data_len {data_len} past the item's {} bytes", d.len()));
        }
        out.push(DirEntry {
            location_id: u64le(d, p),
            location_type: d[p + 8],
            file_type: d[p + 29],
            name: d[p + 30..p + 30 + name_len].to_vec(),
        });
        p = end;
    }
    Ok(out)
}

/// The (parent directory index, name) pairs of an INODE_REF item.
pub fn inode_refs(d: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut p = 0;
    while p < d.len() {
        let n = usize::from(u16le(d, p + 8));
        let name = field(d, p + 10, n).ok_or_else(|| format!("inode ref name_len {n} past the item's {} bytes", d.len()))?;
        out.push(name.to_vec());
        p += 10 + n;
    }
    Ok(out)
}

/// The btrfs name hash keying DIR_ITEMs: crc32c seeded with `~1`, without the final
/// inversion (`btrfs_name_hash`).
pub fn name_hash(name: &[u8]) -> u64 {
    u64::from(!crc32c::crc32c_append(1, name))
}

/// A file extent item.
#[derive(Clone, Debug)]
pub enum Extent {
    /// Data inside the item (maybe compressed), decompressing to `ram_bytes`.
    Inline { compression: u8, ram_bytes: u64, data: Vec<u8> },
    /// `num_bytes` file bytes; `disk_bytenr` 0 or `prealloc` read as zeros.
    Regular { compression: u8, prealloc: bool, disk_bytenr: u64, disk_num_bytes: u64, offset: u64, num_bytes: u64, ram_bytes: u64 },
}

impl Extent {
    pub fn parse(d: &[u8]) -> Result<Self, String> {
        if d.len() < 21 {
            return Err(format!("file extent item of {} bytes", d.len()));
        }
        let (ram_bytes, compression, encryption, ty) = (u64le(d, 8), d[16], d[17], d[20]);
        if compression > 3 {
            return Err(format!("file extent compression {compression} is unknown"));
        }
        if encryption != 0 || u16le(d, 18) != 0 {
            return Err(format!("file extent encryption {encryption} is not supported"));
        }
        match ty {
            0 => Ok(Extent::Inline { compression, ram_bytes, data: d[21..].to_vec() }),
            1 | 2 if d.len() >= 53 => Ok(Extent::Regular {
                compression,
                prealloc: ty == 2,
                disk_bytenr: u64le(d, 21),
                disk_num_bytes: u64le(d, 29),
                offset: u64le(d, 37),
                num_bytes: u64le(d, 45),
                ram_bytes,
            }),
            _ => Err(format!("file extent type {ty} in a {}-byte item is invalid", d.len())),
        }
    }
}

/// The name of compression type `c` (`BTRFS_COMPRESS_*`).
pub fn compression_name(c: u8) -> &'static str {
    match c {
        0 => "none",
        1 => "zlib",
        2 => "lzo",
        3 => "zstd",
        _ => "unknown",
    }
}

/// Decompresses `data` to at most `ram_bytes` bytes (fewer if the stream ends first).
/// `sectorsize` is the unit lzo segments are packed in.
pub fn decompress(compression: u8, data: &[u8], ram_bytes: u64, sectorsize: u32) -> Result<Vec<u8>, String> {
    if ram_bytes > MAX_UNCOMPRESSED.max(u64::from(sectorsize)) {
        return Err(format!("compressed extent ram_bytes {ram_bytes} exceeds {MAX_UNCOMPRESSED}"));
    }
    let cap = ram_bytes as usize;
    let mut out = Vec::with_capacity(cap);
    match compression {
        1 => {
            flate2::read::ZlibDecoder::new(data)
                .take(ram_bytes)
                .read_to_end(&mut out)
                .map_err(|e| format!("zlib data: {e}"))?;
        }
        3 => {
            let d = zstd::stream::read::Decoder::with_buffer(data).map_err(|e| format!("zstd data: {e}"))?;
            d.single_frame().take(ram_bytes).read_to_end(&mut out).map_err(|e| format!("zstd data: {e}"))?;
        }
        2 => lzo(data, cap, sectorsize as usize, &mut out)?,
        c => return Err(format!("compression {c} is unknown")),
    }
    Ok(out)
}

/// btrfs's lzo framing: a u32 total length, then segments (u32 length + lzo1x data),
/// a segment header never crossing a sector boundary.
fn lzo(data: &[u8], cap: usize, sector: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let total = u32le(data, 0) as usize;
    if total > data.len() || total < 4 {
        return Err(format!("lzo total length {total} for {} bytes of data", data.len()));
    }
    let worst = sector + sector / 16 + 64 + 3;
    let mut p = 4;
    while p < total && out.len() < cap {
        let left = sector - p % sector;
        if left < 4 {
            p += left;
            if p >= total {
                break;
            }
        }
        let n = u32le(data, p) as usize;
        p += 4;
        if n > worst || p + n > total {
            return Err(format!("lzo segment length {n} at byte {} is invalid", p - 4));
        }
        let seg = super::lzo::decompress(&data[p..p + n], sector).map_err(|e| format!("lzo segment at byte {p}: {e}"))?;
        out.extend_from_slice(&seg);
        // Each segment is one sector of output; a short one (btrfs-progs' last) is padded.
        out.resize(out.len().next_multiple_of(sector), 0);
        p += n;
    }
    out.truncate(cap);
    Ok(())
}
