//! `ferry convert --in-place`'s redo journal: any bytes as a journal file must parse to
//! "committed" (with every range inside the data area), "not committed", or a one-line
//! error, never a panic or an allocation the bytes alone size.
#![no_main]

#[path = "../../../src/convert/in_place/format.rs"]
#[allow(dead_code)]
mod format;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut read = |buf: &mut [u8], off: u64| -> std::io::Result<()> {
        let start = usize::try_from(off).map_err(std::io::Error::other)?;
        let s = data.get(start..start.saturating_add(buf.len())).ok_or_else(|| std::io::Error::other("past the end"))?;
        buf.copy_from_slice(s);
        Ok(())
    };
    match format::parse(data.len() as u64, &mut read) {
        Ok(format::Found::Complete(index)) => {
            for t in &index.targets {
                for &[_, len, jpos] in &t.ranges {
                    assert!(jpos >= format::HEADER && jpos + len <= data.len() as u64);
                }
            }
        }
        Ok(format::Found::Incomplete { .. }) => {}
        Err(e) => assert!(!e.contains('\n'), "multi-line error: {e:?}"),
    }
});
