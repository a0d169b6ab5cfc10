//! PV labels (`LABELONE` / `LVM2 001` in one of the first four sectors) and the metadata
//! area header that points at the current text metadata in its circular buffer.

use super::LvmError;
use crate::bytes::{field, u32le, u64le};
use crate::device::Device;

const MDA_MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
/// Largest metadata text read (LVM's own default metadata area is 1 MiB).
const MAX_TEXT: u64 = 16 << 20;

/// A physical volume's label.
#[derive(Clone, Debug)]
pub struct PvLabel {
    /// PV UUID with dashes, as in the metadata's `id`.
    pub uuid: String,
    pub device_size: u64,
    /// Metadata areas: (offset, size) in bytes from the start of the PV.
    pub mdas: Vec<(u64, u64)>,
}

/// Reads the label of `dev`; `Ok(None)` when there is none.
pub fn read_label(dev: &Device) -> Result<Option<PvLabel>, LvmError> {
    let head = dev.read_upto(0, 2048)?;
    for s in 0..4 {
        let Some(l) = field(&head, s * 512, 512) else { continue };
        if field(l, 0, 8) != Some(b"LABELONE") || field(l, 24, 8) != Some(b"LVM2 001") {
            continue;
        }
        let stored = u32le(l, 16);
        let crc = super::lvm_crc(field(l, 20, 512 - 20).unwrap_or_default());
        if stored != crc {
            return Err(LvmError::invalid(&dev.name, "label CRC", format!("{stored:#x}"), format!("computed {crc:#x}")));
        }
        let off = u32le(l, 20) as usize;
        let uuid = field(l, off, 32)
            .ok_or_else(|| LvmError::invalid(&dev.name, "pv_header offset", off, "outside the label sector"))?;
        let mut p = off + 40;
        let mut mdas = Vec::new();
        // Data areas first, then metadata areas, each list ended by a zero pair.
        for list in 0..2 {
            for _ in 0..16 {
                let (o, sz) = (u64le(l, p), u64le(l, p + 8));
                p += 16;
                if o == 0 && sz == 0 || p > 512 {
                    break;
                }
                if list == 1 {
                    mdas.push((o, sz));
                }
            }
        }
        return Ok(Some(PvLabel { uuid: super::format_lvm_uuid(uuid), device_size: u64le(l, off + 32), mdas }));
    }
    Ok(None)
}

/// The newest metadata text of one metadata area.
pub fn read_metadata(dev: &Device, mda: (u64, u64)) -> Result<Vec<u8>, LvmError> {
    let (start, size) = mda;
    let name = &dev.name;
    let h = dev.read(start, 512)?;
    if field(&h, 4, 16) != Some(MDA_MAGIC) {
        return Err(LvmError::invalid(name, "metadata area magic", format!("at {start}"), "not an LVM2 mda header"));
    }
    let crc = super::lvm_crc(field(&h, 4, 508).unwrap_or_default());
    if crc != u32le(&h, 0) {
        return Err(LvmError::invalid(name, "mda header CRC", format!("{:#x}", u32le(&h, 0)), format!("computed {crc:#x}")));
    }
    let (off, len, sum) = (u64le(&h, 40), u64le(&h, 48), u32le(&h, 56));
    if len == 0 || len > MAX_TEXT || len > size || off >= size || off < 512 {
        return Err(LvmError::invalid(name, "metadata location", format!("{off}+{len}"), "outside the metadata area"));
    }
    // The text may wrap from the end of the area back to just after its header.
    let at = |rel: u64| {
        start.checked_add(rel).ok_or_else(|| LvmError::invalid(name, "metadata area offset", start, "overflows"))
    };
    let first = len.min(size - off);
    let mut text = dev.read(at(off)?, first as usize)?;
    if first < len {
        text.extend(dev.read(at(512)?, (len - first) as usize)?);
    }
    let crc = super::lvm_crc(&text);
    if crc != sum {
        return Err(LvmError::invalid(name, "metadata text CRC", format!("{sum:#x}"), format!("computed {crc:#x}")));
    }
    Ok(text)
}
