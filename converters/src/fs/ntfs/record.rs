//! MFT records ("FILE"): update sequence arrays (fixups) removed on read and applied on
//! write, the header and every attribute header checked once on read so later access is
//! in bounds, and attributes inserted, resized and removed in place (kept sorted by type).

use super::bytes::*;

/// Multi-sector structures protect each 512-byte stride with the update sequence number.
pub(super) const STRIDE: usize = 512;

pub(super) const AT_STANDARD_INFORMATION: u32 = 0x10;
pub(super) const AT_ATTRIBUTE_LIST: u32 = 0x20;
pub(super) const AT_FILE_NAME: u32 = 0x30;
pub(super) const AT_OBJECT_ID: u32 = 0x40;
pub(super) const AT_SECURITY_DESCRIPTOR: u32 = 0x50;
pub(super) const AT_REPARSE_POINT: u32 = 0xc0;
pub(super) const AT_DATA: u32 = 0x80;
pub(super) const AT_INDEX_ROOT: u32 = 0x90;
pub(super) const AT_INDEX_ALLOCATION: u32 = 0xa0;
pub(super) const AT_BITMAP: u32 = 0xb0;
const AT_END: u32 = 0xffff_ffff;

pub(super) const REC_IN_USE: u16 = 1;
pub(super) const REC_DIRECTORY: u16 = 2;

/// Removes the fixups of a multi-sector block whose magic is `magic`; `Err` says why not.
pub(super) fn unfixup(b: &mut [u8], magic: &[u8; 4]) -> Result<(), String> {
    if b.get(..4) != Some(&magic[..]) {
        return Err(format!("magic \"{}\", expected \"{}\"", escape(b.get(..4).unwrap_or(b)), escape(magic)));
    }
    let (ofs, cnt) = (u16_at(b, 4).unwrap_or(0) as usize, u16_at(b, 6).unwrap_or(0) as usize);
    if !b.len().is_multiple_of(STRIDE) || cnt != b.len() / STRIDE + 1 || ofs % 2 != 0 || ofs < 0x28 || ofs + 2 * cnt > STRIDE - 2 {
        return Err(format!("update sequence array at {ofs} with {cnt} entries for a {}-byte block", b.len()));
    }
    let usn = [b[ofs], b[ofs + 1]];
    for i in 1..cnt {
        let end = i * STRIDE - 2;
        if b[end..end + 2] != usn {
            return Err(format!("update sequence mismatch in sector {} ({:02x}{:02x} != {:02x}{:02x})", i - 1, b[end], b[end + 1], usn[0], usn[1]));
        }
        let (a, c) = (b[ofs + 2 * i], b[ofs + 2 * i + 1]);
        b[end] = a;
        b[end + 1] = c;
    }
    Ok(())
}

/// Applies fixups to a copy of `b` (a block whose header Ferry validated or built), the
/// update sequence number incremented.
pub(super) fn fixup(b: &[u8]) -> Vec<u8> {
    let mut out = b.to_vec();
    let (ofs, cnt) = (u16_at(b, 4).unwrap_or(0) as usize, u16_at(b, 6).unwrap_or(0) as usize);
    let mut usn = u16_at(b, ofs).unwrap_or(0).wrapping_add(1);
    if usn == 0 || usn == 0xffff {
        usn = 1;
    }
    put16(&mut out, ofs, usn);
    for i in 1..cnt {
        let end = i * STRIDE - 2;
        let (a, c) = (out[end], out[end + 1]);
        out[ofs + 2 * i] = a;
        out[ofs + 2 * i + 1] = c;
        put16(&mut out, end, usn);
    }
    out
}

/// One attribute's header, as found in a record.
#[derive(Clone, Debug)]
pub(super) struct Attr {
    pub off: usize,
    pub ty: u32,
    pub len: usize,
    pub nonres: bool,
    pub name: Vec<u16>,
    pub flags: u16,
}

/// An MFT record, fixups removed.
#[derive(Clone)]
pub(super) struct Record {
    pub num: u64,
    pub b: Vec<u8>,
}

impl Record {
    /// Checks record `num`'s bytes: fixups, header, attribute headers; `Err(field, value,
    /// reason)`.
    pub fn parse(num: u64, mut b: Vec<u8>) -> Result<Record, (String, String, String)> {
        let bad = |f: &str, v: String, r: &str| (f.to_string(), v, r.to_string());
        unfixup(&mut b, b"FILE").map_err(|e| bad("record header", num.to_string(), &e))?;
        let used = u32_at(&b, 0x18).unwrap_or(0) as usize;
        let first = u16_at(&b, 0x14).unwrap_or(0) as usize;
        if used > b.len() || used < 0x30 || !first.is_multiple_of(8) || first < 0x30 || first + 8 > used {
            return Err(bad("record header", format!("{num}: used {used}, first attribute {first}"), "outside the record"));
        }
        let r = Record { num, b };
        let mut off = first;
        loop {
            let ty = u32_at(&r.b, off).unwrap_or(AT_END);
            if ty == AT_END {
                break;
            }
            let len = u32_at(&r.b, off + 4).unwrap_or(0) as usize;
            let v = || format!("record {num} attribute {ty:#x} at {off} length {len}");
            if len < 0x18 || !len.is_multiple_of(8) || off + len > used.saturating_sub(8) {
                return Err(bad("attribute length", v(), "outside the record"));
            }
            let nonres = r.b[off + 8] != 0;
            let (nlen, noff) = (r.b[off + 9] as usize, u16_at(&r.b, off + 10).unwrap_or(0) as usize);
            if nlen > 0 && noff + 2 * nlen > len {
                return Err(bad("attribute name", v(), "outside the attribute"));
            }
            if nonres {
                let mp = u16_at(&r.b, off + 0x20).unwrap_or(0) as usize;
                if len < 0x40 || mp < 0x40 || mp >= len {
                    return Err(bad("mapping pairs offset", format!("{} ({mp})", v()), "outside the attribute"));
                }
            } else {
                let (vlen, voff) = (u32_at(&r.b, off + 0x10).unwrap_or(0) as usize, u16_at(&r.b, off + 0x14).unwrap_or(0) as usize);
                if voff + vlen > len {
                    return Err(bad("resident value", format!("{} ({voff}+{vlen})", v()), "outside the attribute"));
                }
            }
            off += len;
        }
        Ok(r)
    }

    /// An empty record `num` of `size` bytes (never used), with sequence number `seq`.
    pub fn blank(num: u64, size: usize, seq: u16) -> Record {
        let mut b = vec![0u8; size];
        b[..4].copy_from_slice(b"FILE");
        let cnt = size / STRIDE + 1;
        put16(&mut b, 4, 0x30);
        put16(&mut b, 6, cnt as u16);
        put16(&mut b, 0x30, 1);
        let first = align8(0x30 + 2 * cnt);
        put16(&mut b, 0x10, seq);
        put16(&mut b, 0x14, first as u16);
        put32(&mut b, 0x18, (first + 8) as u32);
        put32(&mut b, 0x1c, size as u32);
        put32(&mut b, 0x2c, num as u32);
        put32(&mut b, first, AT_END);
        Record { num, b }
    }

    pub fn flags(&self) -> u16 {
        u16_at(&self.b, 0x16).unwrap_or(0)
    }
    pub fn set_flags(&mut self, f: u16) {
        put16(&mut self.b, 0x16, f)
    }
    pub fn seq(&self) -> u16 {
        u16_at(&self.b, 0x10).unwrap_or(0)
    }
    pub fn set_seq(&mut self, s: u16) {
        put16(&mut self.b, 0x10, s)
    }
    pub fn set_links(&mut self, n: u16) {
        put16(&mut self.b, 0x12, n)
    }
    pub fn base(&self) -> u64 {
        u64_at(&self.b, 0x20).unwrap_or(0)
    }
    fn used(&self) -> usize {
        u32_at(&self.b, 0x18).unwrap_or(0) as usize
    }

    /// Every attribute header, in order.
    pub fn attrs(&self) -> Vec<Attr> {
        let mut out = Vec::new();
        let mut off = u16_at(&self.b, 0x14).unwrap_or(0) as usize;
        while let Some(ty) = u32_at(&self.b, off).filter(|t| *t != AT_END) {
            let len = u32_at(&self.b, off + 4).unwrap_or(0) as usize;
            let (nlen, noff) = (self.b[off + 9] as usize, u16_at(&self.b, off + 10).unwrap_or(0) as usize);
            let name = (0..nlen).map(|i| u16_at(&self.b, off + noff + 2 * i).unwrap_or(0)).collect();
            out.push(Attr { off, ty, len, nonres: self.b[off + 8] != 0, name, flags: u16_at(&self.b, off + 12).unwrap_or(0) });
            off += len;
        }
        out
    }

    pub fn find(&self, ty: u32, name: &[u16]) -> Option<Attr> {
        self.attrs().into_iter().find(|a| a.ty == ty && a.name == name)
    }

    /// A resident attribute's value.
    pub fn value(&self, a: &Attr) -> &[u8] {
        let vlen = u32_at(&self.b, a.off + 0x10).unwrap_or(0) as usize;
        let voff = u16_at(&self.b, a.off + 0x14).unwrap_or(0) as usize;
        &self.b[a.off + voff..a.off + voff + vlen]
    }

    /// A resident attribute's value, to change in place (its length stays).
    pub fn value_mut(&mut self, a: &Attr) -> &mut [u8] {
        let vlen = u32_at(&self.b, a.off + 0x10).unwrap_or(0) as usize;
        let voff = u16_at(&self.b, a.off + 0x14).unwrap_or(0) as usize;
        &mut self.b[a.off + voff..a.off + voff + vlen]
    }

    /// A non-resident attribute's bytes from its header (mapping pairs included).
    pub fn raw(&self, a: &Attr) -> &[u8] {
        &self.b[a.off..a.off + a.len]
    }

    /// Replaces the attribute at `a` with `bytes` (same type); `false` if the record is full.
    pub fn replace(&mut self, a: &Attr, mut bytes: Vec<u8>) -> bool {
        let used = self.used();
        let new_len = bytes.len();
        if used - a.len + new_len > self.b.len() {
            return false;
        }
        put16(&mut bytes, 14, u16_at(&self.b, a.off + 14).unwrap_or(0));
        let tail: Vec<u8> = self.b[a.off + a.len..used].to_vec();
        self.b[a.off..a.off + new_len].copy_from_slice(&bytes);
        self.b[a.off + new_len..a.off + new_len + tail.len()].copy_from_slice(&tail);
        let nu = used - a.len + new_len;
        for x in &mut self.b[nu..used.max(nu)] {
            *x = 0;
        }
        put32(&mut self.b, 0x18, nu as u32);
        true
    }

    /// Inserts an attribute (its instance number assigned here) after those of its type;
    /// `false` if the record is full.
    pub fn insert(&mut self, mut bytes: Vec<u8>) -> bool {
        let used = self.used();
        if used + bytes.len() > self.b.len() {
            return false;
        }
        let ty = u32_at(&bytes, 0).unwrap_or(0);
        let at = self.attrs().into_iter().find(|a| a.ty > ty).map(|a| a.off).unwrap_or(used - 8);
        let inst = u16_at(&self.b, 0x28).unwrap_or(0);
        put16(&mut self.b, 0x28, inst.wrapping_add(1));
        put16(&mut bytes, 14, inst);
        let tail: Vec<u8> = self.b[at..used].to_vec();
        self.b[at..at + bytes.len()].copy_from_slice(&bytes);
        self.b[at + bytes.len()..at + bytes.len() + tail.len()].copy_from_slice(&tail);
        put32(&mut self.b, 0x18, (used + bytes.len()) as u32);
        true
    }

    /// Removes the attribute at `a`.
    pub fn remove(&mut self, a: &Attr) {
        let used = self.used();
        self.b.copy_within(a.off + a.len..used, a.off);
        for x in &mut self.b[used - a.len..used] {
            *x = 0;
        }
        put32(&mut self.b, 0x18, (used - a.len) as u32);
    }
}

/// A resident attribute of type `ty` named `name` holding `value`.
pub(super) fn resident(ty: u32, name: &[u16], value: &[u8], indexed: bool) -> Vec<u8> {
    let voff = align8(0x18 + 2 * name.len());
    let len = align8(voff + value.len());
    let mut b = vec![0u8; len];
    put32(&mut b, 0, ty);
    put32(&mut b, 4, len as u32);
    b[9] = name.len() as u8;
    put16(&mut b, 10, 0x18);
    for (i, c) in name.iter().enumerate() {
        put16(&mut b, 0x18 + 2 * i, *c);
    }
    put32(&mut b, 0x10, value.len() as u32);
    put16(&mut b, 0x14, voff as u16);
    b[0x16] = indexed as u8;
    b[voff..voff + value.len()].copy_from_slice(value);
    b
}

/// A non-resident attribute of type `ty` named `name` with `pairs` (encoded runs covering
/// `vcns` clusters) and its three sizes.
pub(super) fn nonresident(ty: u32, name: &[u16], pairs: &[u8], vcns: u64, alloc: u64, size: u64, init: u64) -> Vec<u8> {
    let mp = align8(0x40 + 2 * name.len());
    let len = align8(mp + pairs.len());
    let mut b = vec![0u8; len];
    put32(&mut b, 0, ty);
    put32(&mut b, 4, len as u32);
    b[8] = 1;
    b[9] = name.len() as u8;
    put16(&mut b, 10, 0x40);
    for (i, c) in name.iter().enumerate() {
        put16(&mut b, 0x40 + 2 * i, *c);
    }
    put64(&mut b, 0x18, vcns.saturating_sub(1));
    put16(&mut b, 0x20, mp as u16);
    put64(&mut b, 0x28, alloc);
    put64(&mut b, 0x30, size);
    put64(&mut b, 0x38, init);
    b[mp..mp + pairs.len()].copy_from_slice(pairs);
    b
}

/// The name "$I30" of directory index attributes.
pub(super) fn i30() -> Vec<u16> {
    "$I30".encode_utf16().collect()
}
