//! An in-memory disk for the fuzz targets that edit a small committed image in place
//! (`#[path]`-included: not a fuzz target itself).
use ferry_formats::disk::{BlockDevice, DiskError, Extent, ExtentKind, ImageInfo, WritableDevice};
use std::sync::Mutex;

/// The image bytes, read and written in place.
pub struct Mem(pub Mutex<Vec<u8>>);

impl BlockDevice for Mem {
    fn size(&self) -> u64 {
        self.0.lock().unwrap().len() as u64
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        let v = self.0.lock().unwrap();
        ferry_formats::disk::check_range(std::path::Path::new("mem"), offset, buf.len() as u64, v.len() as u64)?;
        buf.copy_from_slice(&v[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
    fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
        Ok(vec![Extent { offset, length, kind: ExtentKind::Data }])
    }
    fn info(&self) -> ImageInfo {
        ImageInfo::default()
    }
}

impl WritableDevice for Mem {
    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), DiskError> {
        let mut v = self.0.lock().unwrap();
        let len = v.len() as u64;
        ferry_formats::disk::check_range(std::path::Path::new("mem"), offset, buf.len() as u64, len)?;
        v[offset as usize..offset as usize + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&self) -> Result<(), DiskError> {
        Ok(())
    }
    fn discard(&self, _: u64, _: u64) -> Result<(), DiskError> {
        Ok(())
    }
}
