//! A disk over a large committed seed image whose changes (the fuzzer's and the writer's) live
//! in copied 4 KiB pages, so no run copies the whole image (`#[path]`-included: not a fuzz
//! target itself).
use ferry_formats::disk::{BlockDevice, DiskError, Extent, ExtentKind, ImageInfo, WritableDevice};
use std::collections::BTreeMap;
use std::sync::Mutex;

const PAGE: u64 = 4096;

/// `base` with changed pages.
pub struct Paged {
    base: &'static [u8],
    pages: Mutex<BTreeMap<u64, Vec<u8>>>,
}

impl Paged {
    pub fn new(base: &'static [u8]) -> Self {
        Paged { base, pages: Mutex::new(BTreeMap::new()) }
    }

    /// Splits `len` bytes at `offset` by page: `f(page number, offset in the page, range of
    /// the caller's buffer)` for each piece, in order.
    fn pieces(offset: u64, len: usize, mut f: impl FnMut(u64, usize, std::ops::Range<usize>)) {
        let mut done = 0usize;
        while done < len {
            let at = offset + done as u64;
            let (n, o) = (at / PAGE, (at % PAGE) as usize);
            let take = (PAGE as usize - o).min(len - done);
            f(n, o, done..done + take);
            done += take;
        }
    }

    fn page(&self, n: u64) -> Vec<u8> {
        let p = self.pages.lock().unwrap();
        p.get(&n).cloned().unwrap_or_else(|| self.base[(n * PAGE) as usize..((n + 1) * PAGE) as usize].to_vec())
    }
}

impl BlockDevice for Paged {
    fn size(&self) -> u64 {
        self.base.len() as u64
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        ferry_formats::disk::check_range(std::path::Path::new("mem"), offset, buf.len() as u64, self.size())?;
        Self::pieces(offset, buf.len(), |n, o, r| {
            let take = r.len();
            buf[r].copy_from_slice(&self.page(n)[o..o + take]);
        });
        Ok(())
    }
    fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
        Ok(vec![Extent { offset, length, kind: ExtentKind::Data }])
    }
    fn info(&self) -> ImageInfo {
        ImageInfo::default()
    }
}

impl WritableDevice for Paged {
    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), DiskError> {
        ferry_formats::disk::check_range(std::path::Path::new("mem"), offset, buf.len() as u64, self.size())?;
        Self::pieces(offset, buf.len(), |n, o, r| {
            let mut page = self.page(n);
            page[o..o + r.len()].copy_from_slice(&buf[r]);
            self.pages.lock().unwrap().insert(n, page);
        });
        Ok(())
    }
    fn flush(&self) -> Result<(), DiskError> {
        Ok(())
    }
    fn discard(&self, _: u64, _: u64) -> Result<(), DiskError> {
        Ok(())
    }
}
