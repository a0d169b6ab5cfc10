//! md RAID1 with superblock 1.x (1.0 at the end, 1.1 at the start, 1.2 at 4 KiB): every
//! member holds the whole array, so the array is a [`Slice`] of its freshest member.
//! Other RAID levels are reported, not assembled.

use crate::bytes::{array, cstr, field, u32le, u64le, uuid_be};
use crate::device::{Device, Slice};
use ferry_formats::disk::DiskError;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One member's superblock.
#[derive(Clone, Debug)]
pub struct Member {
    pub device: Device,
    /// Array UUID as blkid prints it.
    pub uuid: String,
    /// Array name without the `host:` prefix.
    pub name: String,
    pub level: u32,
    pub events: u64,
    /// Data area in bytes from the member's start.
    pub data_offset: u64,
    pub data_size: u64,
}

/// Checks the superblock checksum (calc_sb_1_csum: 32-bit words summed, folded).
fn csum_ok(sb: &[u8], max_dev: usize) -> bool {
    let Some(body) = field(sb, 0, 256 + max_dev * 2) else { return false };
    let mut b = body.to_vec();
    if let Some(c) = b.get_mut(216..220) {
        c.fill(0);
    }
    let mut sum: u64 = b.chunks_exact(4).map(|w| u64::from(u32le(w, 0))).sum();
    if b.len() % 4 == 2 {
        sum += u64::from(crate::bytes::u16le(&b, b.len() - 2));
    }
    let c = ((sum & 0xffff_ffff) + (sum >> 32)) as u32;
    c == u32le(sb, 216)
}

/// Reads the 1.x superblock of `dev`, `Ok(None)` if there is none (or its checksum fails).
pub fn read_member(dev: &Device) -> Result<Option<Member>, DiskError> {
    let size = dev.size();
    let mut places = vec![4096u64, 0];
    if size >= 8192 {
        places.push((size - 8192) & !4095);
    }
    for at in places {
        let sb = dev.read_upto(at, 4096)?;
        if u32le(&sb, 0) != 0xa92b_4efc || u32le(&sb, 4) != 1 {
            continue;
        }
        let max_dev = u32le(&sb, 220) as usize;
        if max_dev > 1920 || !csum_ok(&sb, max_dev) {
            continue;
        }
        let (off, len) = (u64le(&sb, 128).saturating_mul(512), u64le(&sb, 136).saturating_mul(512));
        if off.checked_add(len).is_none_or(|end| end > size) {
            continue;
        }
        let full = cstr(&sb, 32, 32);
        let name = full.rsplit(':').next().unwrap_or_default().to_string();
        return Ok(Some(Member {
            device: dev.clone(),
            uuid: uuid_be(&array(&sb, 16)),
            name,
            level: u32le(&sb, 72),
            events: u64le(&sb, 200),
            data_offset: off,
            data_size: len,
        }));
    }
    Ok(None)
}

/// Assembles RAID1 arrays (`/dev/md/NAME`); other levels come back as warnings.
pub fn assemble(members: &[Member]) -> (Vec<Device>, Vec<String>) {
    let mut sets: BTreeMap<&str, Vec<&Member>> = BTreeMap::new();
    for m in members {
        sets.entry(&m.uuid).or_default().push(m);
    }
    let (mut devs, mut warnings) = (Vec::new(), Vec::new());
    for (uuid, ms) in sets {
        let Some(best) = ms.iter().max_by_key(|m| m.events) else { continue };
        let name = if best.name.is_empty() { format!("/dev/md/{uuid}") } else { format!("/dev/md/{}", best.name) };
        if best.level != 1 {
            warnings.push(format!("{name}: md RAID level {} is not supported (only RAID1 is read)", best.level));
            continue;
        }
        match Slice::new(best.device.dev.clone(), best.data_offset, best.data_size, &name) {
            Ok(s) => devs.push(Device::new(name, Arc::new(s))),
            Err(e) => warnings.push(e.to_string()),
        }
    }
    (devs, warnings)
}
