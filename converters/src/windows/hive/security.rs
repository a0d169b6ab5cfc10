//! Security ("sk") records: shared by reference count, chained in a circular list
//! (flink/blink). New keys take their parent's; the last reference unlinks and frees one.

use super::base::{put_u32, u32_at};
use super::bins::Store;
use super::error::{escape, HiveError};

const FLINK: usize = 4;
const BLINK: usize = 8;
const REFS: usize = 12;

fn check(s: &Store, off: u32) -> Result<(), HiveError> {
    let c = s.cell(off)?;
    if c.len() < 20 || &c[..2] != b"sk" {
        let sig = c.get(..2).unwrap_or(c);
        return Err(s.bad(&format!("security record signature at {off:#x}"), escape(sig), "expected sk"));
    }
    Ok(())
}

/// The reference count of the record at `off`.
pub(crate) fn refs(s: &Store, off: u32) -> Result<u32, HiveError> {
    check(s, off)?;
    Ok(u32_at(s.cell(off)?, REFS))
}

/// One more key uses the record at `off`.
pub(crate) fn retain(s: &mut Store, off: u32) -> Result<(), HiveError> {
    let n = refs(s, off)?;
    let n = n.checked_add(1).ok_or_else(|| s.bad(&format!("security reference count at {off:#x}"), n.to_string(), "overflows"))?;
    put_u32(s.cell_mut(off)?, REFS, n);
    Ok(())
}

/// One key fewer uses the record at `off`; the last one unlinks and frees it.
pub(crate) fn release(s: &mut Store, off: u32) -> Result<(), HiveError> {
    let n = refs(s, off)?;
    if n > 1 {
        put_u32(s.cell_mut(off)?, REFS, n - 1);
        return Ok(());
    }
    let c = s.cell(off)?;
    let (flink, blink) = (u32_at(c, FLINK), u32_at(c, BLINK));
    if flink != off {
        check(s, flink)?;
        check(s, blink)?;
        put_u32(s.cell_mut(blink)?, FLINK, flink);
        put_u32(s.cell_mut(flink)?, BLINK, blink);
    }
    s.free(off)
}
