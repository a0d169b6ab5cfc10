//! The NTFS boot sector: sector, cluster, MFT record and index block sizes, where `$MFT`
//! and `$MFTMirr` start.

use super::bytes::*;
use crate::fs::{FsError, Volume};

#[derive(Clone, Copy, Debug)]
pub(super) struct Geometry {
    pub cluster: u64,
    pub clusters: u64,
    pub mft_lcn: u64,
    pub mirr_lcn: u64,
    pub record: usize,
    pub index_block: usize,
}

fn size_field(v: u8, cluster: u64) -> Option<u64> {
    let v = v as i8;
    if v > 0 {
        (v as u64).checked_mul(cluster)
    } else if (-31..=-9).contains(&v) {
        Some(1u64 << (-v))
    } else {
        None
    }
}

impl Geometry {
    pub fn read(vol: &Volume<'_>, name: &str) -> Result<Geometry, FsError> {
        let mut b = [0u8; 512];
        vol.read(&mut b, 0, name)?;
        let bad = |field: &str, value: String| FsError::Invalid { fs: name.into(), field: field.into(), value, reason: "not an NTFS boot sector Ferry can edit".into() };
        if &b[3..11] != b"NTFS    " {
            return Err(bad("boot sector OEM id", format!("\"{}\"", escape(&b[3..11]))));
        }
        let bps = u16_at(&b, 0x0b).unwrap_or(0) as u64;
        if !(256..=4096).contains(&bps) || !bps.is_power_of_two() {
            return Err(bad("bytes per sector", bps.to_string()));
        }
        let spc = b[0x0d];
        let spc = if spc <= 0x80 { spc as u64 } else { 1u64 << (256 - spc as u32).min(31) };
        let cluster = bps * spc;
        if spc == 0 || !spc.is_power_of_two() || cluster > 2 << 20 {
            return Err(bad("sectors per cluster", b[0x0d].to_string()));
        }
        let sectors = u64_at(&b, 0x28).unwrap_or(0);
        let clusters = sectors.saturating_mul(bps) / cluster;
        if clusters == 0 || clusters.saturating_mul(cluster) > vol.len() {
            return Err(bad("total sectors", format!("{sectors} ({} bytes in the partition)", vol.len())));
        }
        let rec = size_field(b[0x40], cluster).filter(|r| (512..=65536).contains(r) && r.is_power_of_two());
        let Some(record) = rec else { return Err(bad("clusters per MFT record", b[0x40].to_string())) };
        let ib = size_field(b[0x44], cluster).filter(|r| (512..=65536).contains(r) && r.is_power_of_two());
        let Some(index_block) = ib else { return Err(bad("clusters per index block", b[0x44].to_string())) };
        let mft_lcn = u64_at(&b, 0x30).unwrap_or(0);
        let mirr_lcn = u64_at(&b, 0x38).unwrap_or(0);
        if mft_lcn >= clusters || mirr_lcn >= clusters {
            return Err(bad("$MFT/$MFTMirr cluster", format!("{mft_lcn}/{mirr_lcn}")));
        }
        Ok(Geometry { cluster, clusters, mft_lcn, mirr_lcn, record: record as usize, index_block: index_block as usize })
    }
}
