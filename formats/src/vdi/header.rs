//! The VDI 1.1 header, bounded as qemu's vdi driver does.
use crate::disk::DiskError;
use std::path::Path;

pub const SIGNATURE: u32 = 0xbeda_107f;
pub const HEADER_LEN: usize = 0x200;
const VERSION_1_1: u32 = 0x0001_0001;
/// The only block size VirtualBox writes (and qemu reads).
pub const BLOCK_SIZE: u32 = 1 << 20;
/// Most blocks a block map may list (qemu's limit: 4 GiB of map).
const MAX_BLOCKS: u32 = u32::MAX / 4;

/// The fields of the header Ferry uses.
#[derive(Clone, Debug)]
pub struct Header {
    pub image_type: u32,
    pub offset_bmap: u32,
    pub offset_data: u32,
    pub disk_size: u64,
    pub blocks_in_image: u32,
    pub blocks_allocated: u32,
    pub uuid_image: [u8; 16],
}

pub fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn le64(b: &[u8], at: usize) -> u64 {
    (le32(b, at) as u64) | ((le32(b, at + 4) as u64) << 32)
}

/// Whether a file's first bytes are a VDI header.
pub fn probe(head: &[u8]) -> bool {
    head.len() >= 0x44 && le32(head, 0x40) == SIGNATURE
}

pub fn parse(path: &Path, b: &[u8; HEADER_LEN], file_len: u64) -> Result<Header, DiskError> {
    let bad = |field: &str, value: String, reason: String| Err(DiskError::invalid(path, field, value, reason));
    let signature = le32(b, 0x40);
    if signature != SIGNATURE {
        return bad("signature", format!("{signature:#010x}"), format!("expected {SIGNATURE:#010x}"));
    }
    let version = le32(b, 0x44);
    if version != VERSION_1_1 {
        return bad("version", format!("{}.{}", version >> 16, version & 0xffff), "only version 1.1 is supported".into());
    }
    let offset_bmap = le32(b, 0x154);
    let offset_data = le32(b, 0x158);
    if !offset_bmap.is_multiple_of(512) {
        return bad("offset_bmap", offset_bmap.to_string(), "not a multiple of 512".into());
    }
    if !offset_data.is_multiple_of(512) {
        return bad("offset_data", offset_data.to_string(), "not a multiple of 512".into());
    }
    let sector_size = le32(b, 0x168);
    if sector_size != 512 {
        return bad("sector_size", sector_size.to_string(), "only 512 is supported".into());
    }
    let block_size = le32(b, 0x178);
    if block_size != BLOCK_SIZE {
        return bad("block_size", block_size.to_string(), format!("only {BLOCK_SIZE} is supported"));
    }
    // VBoxManage convertfromraw writes sizes that are not whole sectors; qemu rounds up.
    let raw_size = le64(b, 0x170);
    let disk_size = raw_size.checked_next_multiple_of(512).unwrap_or(u64::MAX);
    let blocks_in_image = le32(b, 0x180);
    if blocks_in_image > MAX_BLOCKS {
        return bad("blocks_in_image", blocks_in_image.to_string(), format!("more than {MAX_BLOCKS}"));
    }
    if disk_size > blocks_in_image as u64 * BLOCK_SIZE as u64 {
        return bad("disk_size", raw_size.to_string(), format!("larger than its {blocks_in_image} blocks of {BLOCK_SIZE} bytes"));
    }
    if b[0x1a8..0x1b8].iter().any(|&x| x != 0) {
        return Err(DiskError::unsupported(path, "VDI differencing image (uuid_link is set): merge it in VirtualBox first"));
    }
    if b[0x1b8..0x1c8].iter().any(|&x| x != 0) {
        return Err(DiskError::unsupported(path, "VDI differencing image (uuid_parent is set): merge it in VirtualBox first"));
    }
    // The block map is read whole: it must lie inside the file before it sizes an allocation.
    if (offset_bmap as u64 + blocks_in_image as u64 * 4) > file_len {
        return bad(
            "offset_bmap",
            offset_bmap.to_string(),
            format!("a map of {blocks_in_image} blocks there runs past the end of the file ({file_len} bytes)"),
        );
    }
    let mut uuid_image = [0u8; 16];
    uuid_image.copy_from_slice(&b[0x188..0x198]);
    Ok(Header {
        image_type: le32(b, 0x4c),
        offset_bmap,
        offset_data,
        disk_size,
        blocks_in_image,
        blocks_allocated: le32(b, 0x184),
        uuid_image,
    })
}
