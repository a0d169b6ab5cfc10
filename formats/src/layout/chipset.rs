//! The config header of each chipset function, kept as data in the machine profile
//! (`chipset[].config`): what QEMU presents for `-machine q35|pc -nodefaults`, measured with the
//! pcidump micro-guest. [`HeaderSpec`] is the JSON schema (hex strings, like the IDs);
//! [`HeaderSpec::decode`] checks it and yields a [`Header`] a VMM builds config space from.

use serde::{Deserialize, Serialize};

/// A chipset function's config header as written in the profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderSpec {
    /// Class, subclass and programming interface: 6 hex digits ("060100").
    pub class: String,
    /// Revision ID: 2 hex digits.
    pub revision: String,
    /// Header type byte: 2 hex digits ("80" = multi-function, type 0).
    pub header_type: String,
    /// Subsystem vendor and ID: "vvvv:dddd".
    pub subsystem: String,
    /// Interrupt pin: "A" to "D", absent for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupt_pin: Option<String>,
    /// Implemented BARs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bars: Vec<BarSpec>,
    /// Capability list, in chain order (the next pointers follow this order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<CapSpec>,
    /// Initial values of other registers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registers: Vec<RegSpec>,
    /// Device-specific ranges the guest may write freely.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writable: Vec<RangeSpec>,
    /// Expansion-ROM BAR size, hex (a power of two, 800..=1000000), absent for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rom: Option<String>,
}

/// One BAR.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BarSpec {
    /// BAR number 0..=5.
    pub index: u8,
    /// "io", "mem32", "mem64" or "mem64-prefetch".
    pub kind: String,
    /// Size in bytes, hex, a power of two.
    pub size: String,
}

/// One capability: ID, body (the bytes after ID and next pointer) and its writable bits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapSpec {
    /// Offset in config space, hex, dword aligned, 0x40 or above.
    pub at: String,
    /// Capability ID, 2 hex digits.
    pub id: String,
    /// Body bytes in config-space order, hex.
    pub body: String,
    /// Write mask of the first body bytes, hex (shorter than or as long as `body`).
    #[serde(default)]
    pub writable: String,
    /// What it is (documentation only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// An initial register value; its width (1, 2 or 4 bytes) is the number of hex digits / 2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegSpec {
    /// Offset, hex.
    pub at: String,
    /// Value, 2, 4 or 8 hex digits, as the guest reads it (little-endian in config space).
    pub value: String,
    /// What it is (documentation only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Config-space bytes `from..to` (hex, `to` exclusive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeSpec {
    pub from: String,
    pub to: String,
}

/// The kind of a BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    Io,
    Mem32,
    Mem32Prefetch,
    Mem64 { prefetch: bool },
}

/// A decoded BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    pub index: usize,
    pub kind: BarKind,
    pub size: u64,
}

/// A decoded capability.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cap {
    pub at: usize,
    pub id: u8,
    /// Offset of the next capability, 0 for the last.
    pub next: u8,
    pub body: Vec<u8>,
    pub wmask: Vec<u8>,
}

/// A decoded register value: little-endian bytes at `at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reg {
    pub at: usize,
    pub bytes: Vec<u8>,
}

/// A chipset header, checked and decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub vendor: u16,
    pub device: u16,
    /// Class code << 8 | revision (the dword at 0x08).
    pub class_rev: u32,
    pub header_type: u8,
    pub subsystem: (u16, u16),
    /// 0 = none, 1..=4 = INTA..INTD.
    pub interrupt_pin: u8,
    pub bars: Vec<Bar>,
    pub caps: Vec<Cap>,
    pub registers: Vec<Reg>,
    /// Fully writable byte ranges (`to` exclusive).
    pub writable: Vec<(usize, usize)>,
    /// Expansion-ROM size, if any.
    pub rom: Option<u32>,
}

/// Standard header bytes other fields own: registers may not set them.
const OWNED: &[(usize, usize, &str)] = &[
    (0x00, 0x04, "vendor/device"),
    (0x08, 0x0c, "class/revision"),
    (0x0e, 0x0f, "header_type"),
    (0x10, 0x28, "bars"),
    (0x2c, 0x30, "subsystem"),
    (0x34, 0x35, "capabilities"),
    (0x3d, 0x3e, "interrupt_pin"),
];

/// Parses exactly `digits` hex digits (any count when `digits` is 0, up to 16).
fn hex(field: &str, s: &str, digits: usize) -> Result<u64, String> {
    let ok = !s.is_empty() && s.len() <= 16 && (digits == 0 || s.len() == digits) && s.bytes().all(|b| b.is_ascii_hexdigit());
    let want = if digits == 0 { "hex".to_string() } else { format!("{digits} hex digits") };
    ok.then(|| u64::from_str_radix(s, 16).ok()).flatten().ok_or_else(|| format!("{field} {s:?}: expected {want}"))
}

fn hex_bytes(field: &str, s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) || s.len() > 2 * 0xc0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{field} {s:?}: expected an even number of hex digits (at most 192 bytes)"));
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()).ok_or_else(|| format!("{field} {s:?}: not hex"))).collect()
}

/// A config-space offset (0..=0xff, or 0x100 for an exclusive end when `end`).
fn offset(field: &str, s: &str, end: bool) -> Result<usize, String> {
    let v = hex(field, s, 0)?;
    let max = if end { 0x100 } else { 0xff };
    usize::try_from(v).ok().filter(|v| *v <= max).ok_or_else(|| format!("{field} {s:?}: outside config space 00..{max:x}"))
}

impl HeaderSpec {
    /// Checks the header and decodes it; the error is one line naming the field and value.
    pub fn decode(&self, vendor: &str, device: &str) -> Result<Header, String> {
        let class = hex("class", &self.class, 6)? as u32;
        let revision = hex("revision", &self.revision, 2)? as u32;
        let (sv, sd) = self.subsystem.split_once(':').ok_or_else(|| format!("subsystem {:?}: expected vvvv:dddd", self.subsystem))?;
        let interrupt_pin = match self.interrupt_pin.as_deref() {
            None => 0,
            Some(p @ ("A" | "B" | "C" | "D")) => p.as_bytes().first().map_or(0, |b| b - b'A' + 1),
            Some(other) => return Err(format!("interrupt_pin {other:?}: expected A, B, C or D")),
        };
        let mut h = Header {
            vendor: hex("vendor", vendor, 4)? as u16,
            device: hex("device", device, 4)? as u16,
            class_rev: (class << 8) | revision,
            header_type: hex("header_type", &self.header_type, 2)? as u8,
            subsystem: (hex("subsystem", sv, 4)? as u16, hex("subsystem", sd, 4)? as u16),
            interrupt_pin,
            bars: Vec::new(),
            caps: Vec::new(),
            registers: Vec::new(),
            writable: Vec::new(),
            rom: None,
        };
        if let Some(r) = &self.rom {
            let size = hex("rom", r, 0)?;
            if !size.is_power_of_two() || !(0x800..=0x100_0000).contains(&size) {
                return Err(format!("rom {r:?}: expected a power of two, 0x800..=0x1000000"));
            }
            h.rom = u32::try_from(size).ok();
        }
        let mut bar_used = [false; 6];
        for b in &self.bars {
            let kind = match b.kind.as_str() {
                "io" => BarKind::Io,
                "mem32" => BarKind::Mem32,
                "mem32-prefetch" => BarKind::Mem32Prefetch,
                "mem64" => BarKind::Mem64 { prefetch: false },
                "mem64-prefetch" => BarKind::Mem64 { prefetch: true },
                other => return Err(format!("bars[{}].kind {other:?}: expected io, mem32, mem32-prefetch, mem64 or mem64-prefetch", b.index)),
            };
            let size = hex("bars.size", &b.size, 0)?;
            let max = match kind {
                BarKind::Io => 0x1_0000,
                BarKind::Mem32 | BarKind::Mem32Prefetch => 0x8000_0000,
                BarKind::Mem64 { .. } => 1 << 40,
            };
            if !size.is_power_of_two() || !(16..=max).contains(&size) {
                return Err(format!("bars[{}].size {:?}: expected a power of two, 0x10..=0x{max:x}", b.index, b.size));
            }
            let index = usize::from(b.index);
            let slots = if matches!(kind, BarKind::Mem64 { .. }) { index..index + 2 } else { index..index + 1 };
            for i in slots {
                let used = bar_used.get_mut(i).ok_or_else(|| format!("bars.index {}: BARs are 0..=5 (a 64-bit BAR takes two)", b.index))?;
                if *used {
                    return Err(format!("bars.index {}: BAR {i} declared twice", b.index));
                }
                *used = true;
            }
            h.bars.push(Bar { index, kind, size });
        }
        let mut taken = [None::<&str>; 256];
        for (lo, hi, what) in OWNED {
            taken.iter_mut().take(*hi).skip(*lo).for_each(|t| *t = Some(what));
        }
        for (n, c) in self.capabilities.iter().enumerate() {
            let at = offset("capabilities.at", &c.at, false)?;
            let body = hex_bytes("capabilities.body", &c.body)?;
            let wmask = hex_bytes("capabilities.writable", &c.writable)?;
            if at < 0x40 || !at.is_multiple_of(4) || at + 2 + body.len() > 0x100 || wmask.len() > body.len() {
                return Err(format!(
                    "capabilities.at {:?}: must be dword aligned in 40..ff with its {} body bytes inside config space and writable no longer than body",
                    c.at,
                    body.len()
                ));
            }
            for t in taken.iter_mut().take(at + 2 + body.len()).skip(at) {
                if let Some(other) = t.replace("capabilities") {
                    return Err(format!("capabilities.at {:?}: overlaps {other}", c.at));
                }
            }
            let next = match self.capabilities.get(n + 1) {
                Some(c) => offset("capabilities.at", &c.at, false)? as u8,
                None => 0,
            };
            h.caps.push(Cap { at, id: hex("capabilities.id", &c.id, 2)? as u8, next, body, wmask });
        }
        for r in &self.registers {
            let at = offset("registers.at", &r.at, false)?;
            let width = match r.value.len() {
                2 | 4 | 8 => r.value.len() / 2,
                _ => return Err(format!("registers.value {:?}: expected 2, 4 or 8 hex digits", r.value)),
            };
            let v = hex("registers.value", &r.value, r.value.len())?;
            let bytes = (v as u32).to_le_bytes().get(..width).map(<[u8]>::to_vec).unwrap_or_default();
            if !at.is_multiple_of(width) || at + width > 0x100 {
                return Err(format!("registers.at {:?}: a {width}-byte register must be aligned and inside config space", r.at));
            }
            for t in taken.iter_mut().take(at + width).skip(at) {
                if let Some(other) = t.replace("registers") {
                    return Err(format!("registers.at {:?}: overlaps {other}", r.at));
                }
            }
            h.registers.push(Reg { at, bytes });
        }
        for w in &self.writable {
            let (from, to) = (offset("writable.from", &w.from, false)?, offset("writable.to", &w.to, true)?);
            if from < 0x40 || to <= from {
                return Err(format!("writable {:?}..{:?}: expected 40 <= from < to <= 100", w.from, w.to));
            }
            h.writable.push((from, to));
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> HeaderSpec {
        serde_json::from_str(json).expect("json")
    }

    #[test]
    fn decodes_caps_chain_registers_and_bars() {
        let h = spec(r#"{"class": "010601", "revision": "02", "header_type": "80", "subsystem": "1af4:1100",
            "interrupt_pin": "A", "bars": [{"index": 4, "kind": "io", "size": "20"}, {"index": 0, "kind": "mem64-prefetch", "size": "4000"}],
            "capabilities": [{"at": "80", "id": "05", "body": "8000", "writable": "01"}, {"at": "a8", "id": "12", "body": "1000"}],
            "registers": [{"at": "50", "value": "0010"}, {"at": "60", "value": "b0000001"}], "writable": [{"from": "84", "to": "90"}]}"#)
        .decode("8086", "2922")
        .expect("decode");
        assert_eq!((h.vendor, h.device, h.class_rev, h.header_type, h.interrupt_pin), (0x8086, 0x2922, 0x0106_0102, 0x80, 1));
        assert_eq!(h.caps[0].next, 0xa8);
        assert_eq!(h.caps[1].next, 0);
        assert_eq!(h.registers[1].bytes, vec![0x01, 0x00, 0x00, 0xb0]);
        assert_eq!(h.bars[1], Bar { index: 0, kind: BarKind::Mem64 { prefetch: true }, size: 0x4000 });
    }

    #[test]
    fn bad_headers_name_the_field_and_value() {
        let base = r#""class": "060000", "revision": "00", "header_type": "00", "subsystem": "1af4:1100""#;
        let cases = [
            (r#""interrupt_pin": "E""#, "interrupt_pin \"E\""),
            (r#""bars": [{"index": 5, "kind": "mem64", "size": "1000"}]"#, "bars.index 5"),
            (r#""bars": [{"index": 1, "kind": "io", "size": "30"}]"#, "bars[1].size \"30\""),
            (r#""capabilities": [{"at": "3c", "id": "05", "body": "00"}]"#, "capabilities.at \"3c\""),
            (r#""capabilities": [{"at": "fc", "id": "05", "body": "000000"}]"#, "capabilities.at \"fc\""),
            (r#""registers": [{"at": "0e", "value": "80"}]"#, "overlaps header_type"),
            (r#""registers": [{"at": "51", "value": "0010"}]"#, "registers.at \"51\""),
            (r#""registers": [{"at": "50", "value": "010"}]"#, "registers.value \"010\""),
            (r#""registers": [{"at": "1ff", "value": "01"}]"#, "registers.at \"1ff\""),
            (r#""writable": [{"from": "20", "to": "30"}]"#, "writable \"20\""),
        ];
        for (extra, want) in cases {
            let err = spec(&format!("{{{base}, {extra}}}")).decode("8086", "1237").expect_err(extra);
            assert!(err.contains(want) && !err.contains('\n'), "{extra}: {err}");
        }
        let err = spec(&format!("{{{base}}}")).decode("80x6", "1237").expect_err("vendor");
        assert!(err.contains("vendor \"80x6\""), "{err}");
    }
}

#[cfg(test)]
mod profile_tests {
    use crate::layout::Profile;

    #[test]
    fn a_bad_chipset_header_names_profile_function_field_and_value() {
        let text = include_str!("../../machines/q35-v1.json").replacen("\"at\": \"a8\"", "\"at\": \"a9\"", 1);
        let err = Profile::parse("q35-v1", &text).expect_err("misaligned capability").to_string();
        assert_eq!(
            err,
            "machine profile q35-v1: chipset ahci: capabilities.at \"a9\": must be dword aligned in 40..ff with its 6 body bytes inside config space and writable no longer than body"
        );
        let text = include_str!("../../machines/pc-v1.json").replacen("\"root_hotplug\": \"acpi-pcihp\"", "\"root_hotplug\": \"shpc\"", 1);
        let err = Profile::parse("pc-v1", &text).expect_err("root_hotplug").to_string();
        assert_eq!(err, "machine profile pc-v1: root_hotplug \"shpc\": expected none or acpi-pcihp");
        for name in Profile::names() {
            let p = Profile::builtin(name).expect("builtin profile");
            assert_eq!(p.chipset_headers().expect("headers").len(), p.chipset.len());
        }
    }
}
