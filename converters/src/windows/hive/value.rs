//! Values: "vk" records, their data (inline in the record up to 4 bytes, one cell, or a
//! "db" big-data record of 16344-byte segments on regf 1.4+), and the typed [`Value`].

use super::base::{put_u32, u32_at};
use super::bins::Store;
use super::error::{escape, HiveError};
use super::key::NONE;
use super::name;

pub(crate) const REG_SZ: u32 = 1;
pub(crate) const REG_EXPAND_SZ: u32 = 2;
pub(crate) const REG_BINARY: u32 = 3;
pub(crate) const REG_DWORD: u32 = 4;
pub(crate) const REG_MULTI_SZ: u32 = 7;
pub(crate) const REG_QWORD: u32 = 11;

const INLINE: u32 = 0x8000_0000;
const SEGMENT: usize = 16344;
const FLAG_COMP_NAME: u16 = 0x0001;
const NAME: usize = 20;

/// A registry value's type and data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Sz(String),
    ExpandSz(String),
    MultiSz(Vec<String>),
    Dword(u32),
    Qword(u64),
    Binary(Vec<u8>),
    /// Any other type, or data that does not decode as its type says.
    Raw { ty: u32, data: Vec<u8> },
}

fn utf16z(s: &str) -> impl Iterator<Item = u8> + '_ {
    s.encode_utf16().chain([0]).flat_map(u16::to_le_bytes)
}

fn from_utf16(b: &[u8]) -> Option<String> {
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let units: Vec<u16> = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    String::from_utf16(&units).ok()
}

impl Value {
    /// The type and bytes stored (strings UTF-16LE, NUL-terminated).
    pub fn encode(&self) -> (u32, Vec<u8>) {
        match self {
            Value::Sz(s) => (REG_SZ, utf16z(s).collect()),
            Value::ExpandSz(s) => (REG_EXPAND_SZ, utf16z(s).collect()),
            Value::MultiSz(v) => (REG_MULTI_SZ, v.iter().flat_map(|s| utf16z(s)).chain([0, 0]).collect()),
            Value::Dword(d) => (REG_DWORD, d.to_le_bytes().to_vec()),
            Value::Qword(q) => (REG_QWORD, q.to_le_bytes().to_vec()),
            Value::Binary(b) => (REG_BINARY, b.clone()),
            Value::Raw { ty, data } => (*ty, data.clone()),
        }
    }

    /// The typed value for stored bytes; `Raw` when they do not decode exactly.
    pub fn decode(ty: u32, data: Vec<u8>) -> Value {
        let strip = |b: &[u8]| from_utf16(b.strip_suffix(&[0, 0]).unwrap_or(b));
        let typed = match ty {
            REG_SZ => strip(&data).filter(|s| !s.contains('\0')).map(Value::Sz),
            REG_EXPAND_SZ => strip(&data).filter(|s| !s.contains('\0')).map(Value::ExpandSz),
            REG_MULTI_SZ if data == [0, 0] => Some(Value::MultiSz(Vec::new())),
            REG_MULTI_SZ => data
                .strip_suffix(&[0, 0, 0, 0])
                .and_then(from_utf16)
                .map(|s| Value::MultiSz(s.split('\0').map(String::from).collect())),
            REG_DWORD => <[u8; 4]>::try_from(data.as_slice()).ok().map(|b| Value::Dword(u32::from_le_bytes(b))),
            REG_QWORD => <[u8; 8]>::try_from(data.as_slice()).ok().map(|b| Value::Qword(u64::from_le_bytes(b))),
            REG_BINARY => Some(Value::Binary(data.clone())),
            _ => None,
        };
        typed.unwrap_or(Value::Raw { ty, data })
    }
}

/// A value record's fields.
#[derive(Clone, Debug)]
pub(crate) struct Vk {
    pub name: String,
    pub size: u32,
    pub data: u32,
    pub ty: u32,
}

/// Reads the value record at `off`.
pub(crate) fn read(s: &Store, off: u32) -> Result<Vk, HiveError> {
    let c = s.cell(off)?;
    if c.len() < NAME || &c[..2] != b"vk" {
        let sig = c.get(..2).unwrap_or(c);
        return Err(s.bad(&format!("value signature at {off:#x}"), escape(sig), "expected vk"));
    }
    let len = u16::from_le_bytes([c[2], c[3]]) as usize;
    let flags = u16::from_le_bytes([c[16], c[17]]);
    let raw = c.get(NAME..NAME + len).ok_or_else(|| {
        s.bad(&format!("value name length at {off:#x}"), len.to_string(), "runs past its cell")
    })?;
    Ok(Vk { name: name::decode(raw, flags & FLAG_COMP_NAME != 0), size: u32_at(c, 4), data: u32_at(c, 8), ty: u32_at(c, 12) })
}

/// The big-data segment offsets of a "db" record, or `None` if `off` is not one.
fn big_segments(s: &Store, off: u32) -> Result<Option<Vec<u32>>, HiveError> {
    let c = s.cell(off)?;
    if c.len() < 8 || &c[..2] != b"db" {
        return Ok(None);
    }
    let n = u16::from_le_bytes([c[2], c[3]]) as usize;
    let list = s.cell(u32_at(c, 4))?;
    if n * 4 > list.len() {
        return Err(s.bad(&format!("big data segment count at {off:#x}"), n.to_string(), "runs past its list"));
    }
    Ok(Some((0..n).map(|i| u32_at(list, i * 4)).collect()))
}

/// The data of a value record.
pub(crate) fn data(s: &Store, minor: u32, vk: &Vk) -> Result<Vec<u8>, HiveError> {
    if vk.size & INLINE != 0 {
        let n = (vk.size & !INLINE) as usize;
        if n > 4 {
            return Err(s.bad(&format!("inline data size of value {}", name_for(vk)), n.to_string(), "more than 4 bytes"));
        }
        return Ok(vk.data.to_le_bytes()[..n].to_vec());
    }
    let n = vk.size as usize;
    if n == 0 {
        return Ok(Vec::new());
    }
    if n > SEGMENT && minor >= 4 {
        if let Some(segs) = big_segments(s, vk.data)? {
            let mut out = Vec::with_capacity(n.min(segs.len() * SEGMENT));
            for seg in segs {
                let c = s.cell(seg)?;
                let take = (n - out.len()).min(SEGMENT).min(c.len());
                out.extend_from_slice(&c[..take]);
                if out.len() == n {
                    return Ok(out);
                }
            }
            return Err(s.bad(&format!("big data size of value {}", name_for(vk)), n.to_string(), "more than its segments hold"));
        }
    }
    let c = s.cell(vk.data)?;
    c.get(..n).map(<[u8]>::to_vec).ok_or_else(|| {
        s.bad(&format!("data size of value {}", name_for(vk)), n.to_string(), "runs past its cell")
    })
}

fn name_for(vk: &Vk) -> String {
    if vk.name.is_empty() { "(default)".into() } else { super::error::escape_str(&vk.name) }
}

/// Stores `bytes` as value data; returns the (size, offset) pair for the record.
pub(crate) fn store_data(s: &mut Store, minor: u32, bytes: &[u8]) -> Result<(u32, u32), HiveError> {
    if bytes.len() <= 4 {
        let mut w = [0u8; 4];
        w[..bytes.len()].copy_from_slice(bytes);
        return Ok((bytes.len() as u32 | INLINE, u32::from_le_bytes(w)));
    }
    if bytes.len() as u64 >= INLINE as u64 {
        return Err(HiveError::TooLarge { file: s.file.clone(), limit: INLINE as u64 });
    }
    if bytes.len() <= SEGMENT || minor < 4 {
        let off = s.alloc(bytes.len())?;
        s.cell_mut(off)?[..bytes.len()].copy_from_slice(bytes);
        return Ok((bytes.len() as u32, off));
    }
    let mut segs = Vec::new();
    for chunk in bytes.chunks(SEGMENT) {
        // A segment cell keeps 4 bytes spare after its data, as Windows' 16344-byte
        // segments in 16352-byte cells do (hivex reads cell size - 8 bytes per segment).
        let off = s.alloc(chunk.len() + 4)?;
        s.cell_mut(off)?[..chunk.len()].copy_from_slice(chunk);
        segs.push(off);
    }
    if segs.len() > u16::MAX as usize {
        return Err(HiveError::TooLarge { file: s.file.clone(), limit: (u16::MAX as usize * SEGMENT) as u64 });
    }
    let list = s.alloc(segs.len() * 4)?;
    let c = s.cell_mut(list)?;
    for (i, o) in segs.iter().enumerate() {
        put_u32(c, i * 4, *o);
    }
    let db = s.alloc(8)?;
    let c = s.cell_mut(db)?;
    c[..2].copy_from_slice(b"db");
    c[2..4].copy_from_slice(&(segs.len() as u16).to_le_bytes());
    put_u32(c, 4, list);
    Ok((bytes.len() as u32, db))
}

/// Frees the data cells of a value record (nothing for inline data).
pub(crate) fn free_data(s: &mut Store, minor: u32, vk: &Vk) -> Result<(), HiveError> {
    if vk.size & INLINE != 0 || vk.size == 0 || vk.data == NONE {
        return Ok(());
    }
    if vk.size as usize > SEGMENT && minor >= 4 {
        if let Some(segs) = big_segments(s, vk.data)? {
            let list = u32_at(s.cell(vk.data)?, 4);
            for seg in segs {
                s.free(seg)?;
            }
            s.free(list)?;
        }
    }
    s.free(vk.data)
}

/// A new value record.
pub(crate) fn build(value_name: &str, ty: u32, size: u32, data: u32) -> Vec<u8> {
    let (raw, comp) = name::encode(value_name);
    let mut c = vec![0u8; NAME + raw.len()];
    c[..2].copy_from_slice(b"vk");
    c[2..4].copy_from_slice(&(raw.len() as u16).to_le_bytes());
    put_u32(&mut c, 4, size);
    put_u32(&mut c, 8, data);
    put_u32(&mut c, 12, ty);
    let flags = if comp && !raw.is_empty() { FLAG_COMP_NAME } else { 0 };
    c[16..18].copy_from_slice(&flags.to_le_bytes());
    c[NAME..].copy_from_slice(&raw);
    c
}

/// Points an existing value record at new data.
pub(crate) fn set_data(s: &mut Store, off: u32, ty: u32, size: u32, data: u32) -> Result<(), HiveError> {
    let c = s.cell_mut(off)?;
    put_u32(c, 4, size);
    put_u32(c, 8, data);
    put_u32(c, 12, ty);
    Ok(())
}
