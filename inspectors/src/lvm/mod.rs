//! LVM2: PV labels, text metadata, volume groups assembled across disks, and linear and
//! striped logical volumes exposed as block devices. Thin, cache, RAID, mirror and
//! snapshot LVs are refused with a reason.

mod label;
mod lv;
pub mod meta;

pub use label::{read_label, read_metadata, PvLabel};
pub use lv::{LvDevice, Segment, Stripe};

use crate::device::Device;
use ferry_formats::disk::DiskError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// LVM failures, one line naming the device, field and value.
#[derive(Debug, thiserror::Error)]
pub enum LvmError {
    #[error(transparent)]
    Disk(#[from] DiskError),
    #[error("{device}: invalid {field} {value}: {reason}")]
    Invalid { device: String, field: String, value: String, reason: String },
}

impl LvmError {
    fn invalid(device: &str, field: &str, value: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        LvmError::Invalid { device: device.into(), field: field.into(), value: value.to_string(), reason: reason.into() }
    }
}

/// LVM's CRC: CRC-32 (reflected 0xEDB88320) seeded with 0xf597a6cf, not inverted.
pub fn lvm_crc(buf: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(!0xf597_a6cf);
    h.update(buf);
    !h.finalize()
}

/// PV/VG/LV UUID text: 32 characters in LVM's 6-4-4-4-4-4-6 grouping.
pub fn format_lvm_uuid(id: &[u8]) -> String {
    let s = String::from_utf8_lossy(id);
    let mut out = String::new();
    let mut i = 0;
    for (n, g) in [6, 4, 4, 4, 4, 4, 6].iter().enumerate() {
        if n > 0 {
            out.push('-');
        }
        out.push_str(s.get(i..i + g).unwrap_or_default());
        i += g;
    }
    out
}

/// A physical volume found on a device.
#[derive(Clone, Debug)]
pub struct Pv {
    pub device: Device,
    pub label: PvLabel,
    /// Parsed metadata from its first readable metadata area, if any.
    pub metadata: Option<meta::Section>,
}

/// What inspection reports about one VG.
#[derive(Clone, Debug, Serialize)]
pub struct VgReport {
    pub name: String,
    pub uuid: String,
    pub extent_size: u64,
    pub pvs: Vec<String>,
    pub missing_pvs: Vec<String>,
    pub lvs: Vec<LvReport>,
}

/// One LV of a VG.
#[derive(Clone, Debug, Serialize)]
pub struct LvReport {
    pub name: String,
    pub uuid: String,
    pub size: u64,
    /// `linear`, `striped`, or the refused segment type.
    pub segtype: String,
    /// Why Ferry does not expose this LV, if it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// Reads the PV label and metadata on `dev`, `Ok(None)` if it is not a PV.
pub fn scan_pv(dev: &Device) -> Result<Option<Pv>, LvmError> {
    let Some(label) = read_label(dev)? else { return Ok(None) };
    let mut metadata = None;
    let mut last_err = None;
    for &mda in &label.mdas {
        match read_metadata(dev, mda).and_then(|t| {
            meta::parse(&t).map_err(|e| LvmError::invalid(&dev.name, "metadata text", e.line, e.reason))
        }) {
            Ok(m) => {
                metadata = Some(m);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    if metadata.is_none() {
        if let Some(e) = last_err {
            return Err(e);
        }
    }
    Ok(Some(Pv { device: dev.clone(), label, metadata }))
}

/// Assembles VGs from all PVs found; returns the reports and the LV devices
/// (`/dev/VG/LV`) that could be built.
pub fn assemble(pvs: &[Pv]) -> (Vec<VgReport>, Vec<Device>) {
    let (reports, lvs) = logical_volumes(pvs);
    let devices = lvs
        .into_iter()
        .map(|d| Device::new(d.name.to_string_lossy().into_owned(), Arc::new(d)))
        .collect();
    (reports, devices)
}

/// As [`assemble`], but the LVs as [`LvDevice`]s, whose segments say where every byte lives
/// on which PV (by [`Stripe::pv_name`]): the mapping a writer needs to build its own
/// (writable) view of an LV over the same PVs.
pub fn logical_volumes(pvs: &[Pv]) -> (Vec<VgReport>, Vec<LvDevice>) {
    // The newest metadata (highest seqno) per VG name.
    let mut vgs: BTreeMap<String, (i64, &meta::Section)> = BTreeMap::new();
    for pv in pvs {
        let Some(m) = &pv.metadata else { continue };
        for (name, vg) in m.sections() {
            let seq = vg.int("seqno").unwrap_or(0);
            if vgs.get(name).is_none_or(|(s, _)| seq > *s) {
                vgs.insert(name.to_string(), (seq, vg));
            }
        }
    }
    let mut reports = Vec::new();
    let mut devices = Vec::new();
    for (name, (_, vg)) in vgs {
        let (r, d) = assemble_vg(&name, vg, pvs);
        reports.push(r);
        devices.extend(d);
    }
    (reports, devices)
}

fn assemble_vg(name: &str, vg: &meta::Section, pvs: &[Pv]) -> (VgReport, Vec<LvDevice>) {
    let extent = (vg.int("extent_size").unwrap_or(0).clamp(0, 1 << 40) as u64) * 512;
    let mut rep = VgReport {
        name: name.into(),
        uuid: vg.str("id").unwrap_or_default().into(),
        extent_size: extent,
        pvs: Vec::new(),
        missing_pvs: Vec::new(),
        lvs: Vec::new(),
    };
    // pvN key -> (device, pe_start bytes)
    let mut map = BTreeMap::new();
    if let Some(pvsec) = vg.section("physical_volumes") {
        for (key, p) in pvsec.sections() {
            let id = p.str("id").unwrap_or_default();
            match pvs.iter().find(|pv| pv.label.uuid == id) {
                Some(pv) => {
                    rep.pvs.push(pv.device.name.clone());
                    let pe_start = (p.int("pe_start").unwrap_or(0).clamp(0, 1 << 50) as u64) * 512;
                    map.insert(key.to_string(), (pv.device.clone(), pe_start));
                }
                None => rep.missing_pvs.push(id.to_string()),
            }
        }
    }
    let mut devices = Vec::new();
    if let Some(lvs) = vg.section("logical_volumes") {
        for (lvname, lv) in lvs.sections() {
            if !lv.strs("status").contains(&"VISIBLE") {
                continue;
            }
            let dev_name = format!("/dev/{name}/{lvname}");
            let (segtype, built) = build_lv(&dev_name, lv, extent, &map);
            let size = built.as_ref().map_or(0, |d| d.size);
            let refused = built.as_ref().err().cloned();
            if let Ok(d) = built {
                devices.push(d);
            }
            rep.lvs.push(LvReport {
                name: lvname.into(),
                uuid: lv.str("id").unwrap_or_default().into(),
                size,
                segtype,
                refused,
            });
        }
    }
    (rep, devices)
}

type PvMap = BTreeMap<String, (Device, u64)>;

fn build_lv(name: &str, lv: &meta::Section, extent: u64, pvs: &PvMap) -> (String, Result<LvDevice, String>) {
    let mut segments = Vec::new();
    let mut kind = "linear".to_string();
    for (_, seg) in lv.sections() {
        let t = seg.str("type").unwrap_or("?");
        if t != "striped" {
            let why = format!("{name}: segment type \"{t}\" is not supported (only linear and striped LVs are read)");
            return (t.to_string(), Err(why));
        }
        let start = seg.int("start_extent").unwrap_or(-1);
        let count = seg.int("extent_count").unwrap_or(-1);
        let list = seg.list("stripes").unwrap_or_default();
        let n = list.len() / 2;
        if start < 0 || count <= 0 || n == 0 || !(count as u64).is_multiple_of(n as u64) {
            return (kind, Err(format!("{name}: invalid segment start {start} count {count} stripes {n}")));
        }
        if n > 1 {
            kind = "striped".into();
        }
        let stripe_size = (seg.int("stripe_size").unwrap_or(0).clamp(0, 1 << 40) as u64) * 512;
        if n > 1 && stripe_size == 0 {
            return (kind, Err(format!("{name}: striped segment without stripe_size")));
        }
        let mut stripes = Vec::new();
        for pair in list.chunks(2) {
            let (Some(meta::Value::Str(pv)), Some(meta::Value::Int(pe))) = (pair.first(), pair.get(1)) else {
                return (kind, Err(format!("{name}: malformed stripes list")));
            };
            let Some((dev, pe_start)) = pvs.get(pv) else {
                return (kind, Err(format!("{name}: physical volume {pv} is missing")));
            };
            let Some(offset) = ((*pe).max(0) as u64).checked_mul(extent).and_then(|o| o.checked_add(*pe_start)) else {
                return (kind, Err(format!("{name}: extent {pe} on {pv} is out of range")));
            };
            stripes.push(Stripe { pv: dev.dev.clone(), pv_name: dev.name.clone(), offset });
        }
        let (Some(length), Some(seg_start)) = ((count as u64).checked_mul(extent), (start as u64).checked_mul(extent))
        else {
            return (kind, Err(format!("{name}: segment at extent {start} is out of range")));
        };
        let per_stripe = length / n as u64;
        for s in &stripes {
            if s.offset.checked_add(per_stripe).is_none_or(|end| end > s.pv.size()) {
                return (kind, Err(format!("{name}: segment at extent {start} runs past the end of its PV")));
            }
        }
        segments.push(Segment { start: seg_start, length, stripe_size, stripes });
    }
    segments.sort_by_key(|s| s.start);
    let mut size = 0;
    for s in &segments {
        if s.start != size {
            return (kind, Err(format!("{name}: segments leave a gap at byte {size}")));
        }
        size = match size.checked_add(s.length) {
            Some(v) => v,
            None => return (kind, Err(format!("{name}: size overflows"))),
        };
    }
    if size == 0 {
        return (kind, Err(format!("{name}: no segments")));
    }
    (kind, Ok(LvDevice { name: PathBuf::from(name), size, segments }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;

    const META: &str = r#"vg0 {
    id = "vgid"
    seqno = 2
    extent_size = 8
    physical_volumes {
        pv0 { id = "AAAAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGGGG" pe_start = 8 pe_count = 4 }
    }
    logical_volumes {
        lin { id = "l1" status = ["READ", "VISIBLE"] segment_count = 2
            segment1 { start_extent = 0 extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv0", 2] }
            segment2 { start_extent = 1 extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv0", 0] }
        }
        pool { id = "p1" status = ["READ", "VISIBLE"] segment1 { start_extent = 0 extent_count = 1 type = "thin-pool" } }
        hidden { id = "h1" status = ["READ"] segment1 { start_extent = 0 extent_count = 1 type = "striped" stripes = ["pv0", 1] } }
    }
}
"#;

    #[test]
    fn linear_segments_map_and_thin_is_refused() {
        // 4 KiB data area at 4 KiB, extents of 4 KiB each filled with their number.
        let mut disk = vec![0u8; 4096 + 4 * 4096];
        for e in 0..4 {
            disk[4096 + e * 4096..4096 + (e + 1) * 4096].fill(e as u8 + 1);
        }
        let dev = Device::new("/dev/sdz", Arc::new(MemDevice(disk)));
        let pv = Pv {
            device: dev,
            label: PvLabel { uuid: "AAAAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGGGG".into(), device_size: 0, mdas: vec![] },
            metadata: Some(meta::parse(META.as_bytes()).unwrap()),
        };
        let (vgs, devs) = assemble(&[pv]);
        assert_eq!(vgs[0].lvs.len(), 2, "hidden LVs are not listed");
        let pool = vgs[0].lvs.iter().find(|l| l.name == "pool").unwrap();
        assert!(pool.refused.as_deref().unwrap().contains("\"thin-pool\" is not supported"));
        assert_eq!(devs.len(), 1);
        let lin = &devs[0];
        assert_eq!(lin.name, "/dev/vg0/lin");
        assert_eq!(lin.size(), 8192);
        // Extent 0 of the LV is PV extent 2 (value 3), extent 1 is PV extent 0 (value 1).
        assert_eq!(lin.read(4094, 4).unwrap(), [3, 3, 1, 1]);
        assert!(lin.read(8190, 4).is_err());
    }

    #[test]
    fn missing_pv_is_reported() {
        let (vgs, devs) = assemble(&[Pv {
            device: Device::new("/dev/sdz", Arc::new(MemDevice(vec![0; 4096]))),
            label: PvLabel { uuid: "other".into(), device_size: 0, mdas: vec![] },
            metadata: Some(meta::parse(META.as_bytes()).unwrap()),
        }]);
        assert!(devs.is_empty());
        assert_eq!(vgs[0].missing_pvs, ["AAAAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGGGG"]);
        let lin = vgs[0].lvs.iter().find(|l| l.name == "lin").unwrap();
        assert!(lin.refused.as_deref().unwrap().contains("pv0 is missing"));
    }

    #[test]
    fn lvm_crc_matches_lvm2() {
        // calc_crc(INITIAL_CRC, "") is the seed itself; one zero byte by the table.
        assert_eq!(lvm_crc(b""), 0xf597_a6cf);
        assert_ne!(lvm_crc(b"\0"), lvm_crc(b""));
    }
}
