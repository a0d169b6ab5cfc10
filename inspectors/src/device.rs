//! Named block devices and [`Slice`], an offset+length window over another device.

use ferry_formats::disk::{check_range, BlockDevice, DiskError, Extent, ImageInfo};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A block device with the name inspection reports it under (`/dev/sda`, `/dev/sda1`,
/// `/dev/VG/LV`), shared so partitions and logical volumes can point into it.
#[derive(Clone)]
pub struct Device {
    /// Guest-style device name.
    pub name: String,
    /// The bytes.
    pub dev: Arc<dyn BlockDevice>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Device({}, {} bytes)", self.name, self.dev.size())
    }
}

impl Device {
    /// Wraps a device under a name.
    pub fn new(name: impl Into<String>, dev: Arc<dyn BlockDevice>) -> Self {
        Device { name: name.into(), dev }
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.dev.size()
    }

    /// Reads `len` bytes at `offset`; ranges past the end are an error naming the device.
    /// `len` must already be bounded by the caller (it is never a raw header field).
    pub fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        check_range(Path::new(&self.name), offset, len as u64, self.size())?;
        let mut buf = vec![0u8; len];
        self.dev.read_at(&mut buf, offset)?;
        Ok(buf)
    }

    /// Like [`read`](Self::read) but returns fewer bytes (possibly none) at the end of
    /// the device instead of failing.
    pub fn read_upto(&self, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        let avail = self.size().saturating_sub(offset).min(len as u64) as usize;
        self.read(offset.min(self.size()), avail)
    }
}

/// A window `[offset, offset + length)` of another device: a partition.
pub struct Slice {
    inner: Arc<dyn BlockDevice>,
    offset: u64,
    length: u64,
    name: PathBuf,
}

impl Slice {
    /// A window over `inner`; fails if it does not lie inside it.
    pub fn new(
        inner: Arc<dyn BlockDevice>,
        offset: u64,
        length: u64,
        name: &str,
    ) -> Result<Self, DiskError> {
        check_range(Path::new(name), offset, length, inner.size())?;
        Ok(Slice { inner, offset, length, name: PathBuf::from(name) })
    }
}

impl BlockDevice for Slice {
    fn size(&self) -> u64 {
        self.length
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        check_range(&self.name, offset, buf.len() as u64, self.length)?;
        self.inner.read_at(buf, self.offset + offset)
    }

    fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
        check_range(&self.name, offset, length, self.length)?;
        let mut v = self.inner.map(self.offset + offset, length)?;
        for e in &mut v {
            e.offset -= self.offset;
        }
        Ok(v)
    }

    fn info(&self) -> ImageInfo {
        let mut i = self.inner.info();
        i.virtual_size = self.length;
        i
    }

    fn granularity(&self) -> u64 {
        self.inner.granularity()
    }
}

/// A device held in memory (tests, fuzzing).
pub struct MemDevice(pub Vec<u8>);

impl BlockDevice for MemDevice {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        check_range(Path::new("memory"), offset, buf.len() as u64, self.size())?;
        let start = offset as usize;
        buf.copy_from_slice(&self.0[start..start + buf.len()]);
        Ok(())
    }
    fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
        check_range(Path::new("memory"), offset, length, self.size())?;
        Ok(vec![Extent { offset, length, kind: ferry_formats::ExtentKind::Data }])
    }
    fn info(&self) -> ImageInfo {
        ImageInfo { format: "memory".into(), virtual_size: self.size(), ..Default::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_reads_window_and_refuses_outside() {
        let mem: Arc<dyn BlockDevice> = Arc::new(MemDevice((0u8..=255).collect()));
        let s = Slice::new(mem.clone(), 16, 32, "/dev/sda1").unwrap();
        let mut b = [0u8; 4];
        s.read_at(&mut b, 28).unwrap();
        assert_eq!(b, [44, 45, 46, 47]);
        let err = s.read_at(&mut b, 29).unwrap_err().to_string();
        assert!(err.contains("/dev/sda1"), "{err}");
        assert!(Slice::new(mem, 250, 10, "/dev/sda2").is_err());
        assert_eq!(s.map(0, 32).unwrap()[0].offset, 0);
    }
}
