//! Key node ("nk") records: fields read and written in place, and new records built.

use super::base::{put_u32, u32_at};
use super::bins::Store;
use super::error::{escape, HiveError};
use super::name;

pub(crate) const NONE: u32 = u32::MAX;
pub(crate) const FLAG_ROOT: u16 = 0x0004;
pub(crate) const FLAG_COMP_NAME: u16 = 0x0020;

pub(crate) const TIMESTAMP: usize = 4;
pub(crate) const PARENT: usize = 16;
pub(crate) const SUBKEYS: usize = 20;
pub(crate) const VOLATILE_SUBKEYS: usize = 24;
pub(crate) const SUBKEY_LIST: usize = 28;
pub(crate) const VALUES: usize = 36;
pub(crate) const VALUE_LIST: usize = 40;
pub(crate) const SECURITY: usize = 44;
pub(crate) const CLASS: usize = 48;
pub(crate) const MAX_SUBKEY_NAME: usize = 52;
pub(crate) const MAX_VALUE_NAME: usize = 60;
pub(crate) const MAX_VALUE_DATA: usize = 64;
const NAME_LEN: usize = 72;
const CLASS_LEN: usize = 74;
const NAME: usize = 76;

/// The fields of a key node Ferry uses.
#[derive(Clone, Debug)]
pub(crate) struct Nk {
    pub flags: u16,
    pub subkeys: u32,
    pub subkey_list: u32,
    pub values: u32,
    pub value_list: u32,
    pub security: u32,
    pub class: u32,
    pub name: String,
}

/// Reads the key node at `off`.
pub(crate) fn read(s: &Store, off: u32) -> Result<Nk, HiveError> {
    let c = s.cell(off)?;
    if c.len() < NAME || &c[..2] != b"nk" {
        let sig = c.get(..2).unwrap_or(c);
        return Err(s.bad(&format!("key node signature at {off:#x}"), escape(sig), "expected nk"));
    }
    let flags = u16::from_le_bytes([c[2], c[3]]);
    let len = u16::from_le_bytes([c[NAME_LEN], c[NAME_LEN + 1]]) as usize;
    let raw = c.get(NAME..NAME + len).ok_or_else(|| {
        s.bad(&format!("key name length at {off:#x}"), len.to_string(), "runs past its cell")
    })?;
    Ok(Nk {
        flags,
        subkeys: u32_at(c, SUBKEYS),
        subkey_list: u32_at(c, SUBKEY_LIST),
        values: u32_at(c, VALUES),
        value_list: u32_at(c, VALUE_LIST),
        security: u32_at(c, SECURITY),
        class: u32_at(c, CLASS),
        name: name::decode(raw, flags & FLAG_COMP_NAME != 0),
    })
}

/// The stored name bytes of the key node at `off` and whether they are Latin-1.
pub(crate) fn raw_name(s: &Store, off: u32) -> Result<(&[u8], bool), HiveError> {
    let c = s.cell(off)?;
    if c.len() < NAME || &c[..2] != b"nk" {
        return read(s, off).map(|_| (&[][..], true));
    }
    let flags = u16::from_le_bytes([c[2], c[3]]);
    let len = u16::from_le_bytes([c[NAME_LEN], c[NAME_LEN + 1]]) as usize;
    let raw = c.get(NAME..NAME + len).ok_or_else(|| {
        s.bad(&format!("key name length at {off:#x}"), len.to_string(), "runs past its cell")
    })?;
    Ok((raw, flags & FLAG_COMP_NAME != 0))
}

/// Writes one dword field of the key node at `off`.
pub(crate) fn set(s: &mut Store, off: u32, field: usize, v: u32) -> Result<(), HiveError> {
    put_u32(s.cell_mut(off)?, field, v);
    Ok(())
}

/// Stamps the key's last-written time.
pub(crate) fn touch(s: &mut Store, off: u32, filetime: u64) -> Result<(), HiveError> {
    s.cell_mut(off)?[TIMESTAMP..TIMESTAMP + 8].copy_from_slice(&filetime.to_le_bytes());
    Ok(())
}

/// A new key node record: no subkeys, values or class.
pub(crate) fn build(key_name: &str, parent: u32, security: u32, filetime: u64) -> Vec<u8> {
    let (raw, comp) = name::encode(key_name);
    let mut c = vec![0u8; NAME + raw.len()];
    c[..2].copy_from_slice(b"nk");
    let flags = if comp { FLAG_COMP_NAME } else { 0 };
    c[2..4].copy_from_slice(&flags.to_le_bytes());
    c[TIMESTAMP..TIMESTAMP + 8].copy_from_slice(&filetime.to_le_bytes());
    put_u32(&mut c, PARENT, parent);
    put_u32(&mut c, VOLATILE_SUBKEYS, 0);
    put_u32(&mut c, SUBKEY_LIST, NONE);
    put_u32(&mut c, SUBKEY_LIST + 4, NONE);
    put_u32(&mut c, VALUE_LIST, NONE);
    put_u32(&mut c, SECURITY, security);
    put_u32(&mut c, CLASS, NONE);
    c[NAME_LEN..NAME_LEN + 2].copy_from_slice(&(raw.len() as u16).to_le_bytes());
    c[CLASS_LEN..CLASS_LEN + 2].copy_from_slice(&0u16.to_le_bytes());
    c[NAME..].copy_from_slice(&raw);
    c
}
