//! VDI (VirtualBox) 1.1, normal (dynamic) and fixed images, read-only: a block map of 1 MiB
//! blocks, unallocated and discarded blocks reading as zeros. Differencing VDIs (a link or
//! parent UUID) are refused by name, as qemu does.
mod header;

pub use header::probe;

use crate::disk::{check_range, coalesce, BlockDevice, DiskError, Extent, ExtentKind, ImageInfo, RawImage, ReadOnlyFile};
use header::{Header, BLOCK_SIZE, HEADER_LEN};
use std::path::Path;

const UNALLOCATED: u32 = 0xffff_ffff;
const DISCARDED: u32 = 0xffff_fffe;

/// An open VDI image.
pub struct VdiImage {
    file: ReadOnlyFile,
    header: Header,
    bmap: Vec<u32>,
    /// The file seen as raw: holes inside allocated blocks map as zeros, as in qemu.
    raw: RawImage,
}

/// Opens a VDI image read-only.
pub fn open(path: &Path) -> Result<Box<dyn BlockDevice>, DiskError> {
    Ok(Box::new(VdiImage::open(ReadOnlyFile::open(path)?)?))
}

impl VdiImage {
    pub fn open(file: ReadOnlyFile) -> Result<Self, DiskError> {
        let mut b = [0u8; HEADER_LEN];
        file.read_exact_at(&mut b, 0, "header")?;
        let header = header::parse(file.path(), &b, file.len())?;
        let mut raw = vec![0u8; header.blocks_in_image as usize * 4];
        file.read_exact_at(&mut raw, header.offset_bmap as u64, "block map")?;
        let bmap = raw.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let raw = RawImage::open(file.path())?;
        Ok(VdiImage { file, header, bmap, raw })
    }

    /// Where block `i`'s data starts in the file, or the entry when it holds none.
    fn block(&self, i: u64) -> Result<u64, u32> {
        match self.bmap.get(i as usize).copied().unwrap_or(UNALLOCATED) {
            e if e < DISCARDED => Ok(self.header.offset_data as u64 + e as u64 * BLOCK_SIZE as u64),
            e => Err(e),
        }
    }
}

impl BlockDevice for VdiImage {
    fn size(&self) -> u64 {
        self.header.disk_size
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        check_range(self.file.path(), offset, buf.len() as u64, self.size())?;
        let bs = BLOCK_SIZE as u64;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let n = (bs - pos % bs).min((buf.len() - done) as u64) as usize;
            let out = &mut buf[done..done + n];
            match self.block(pos / bs) {
                Ok(at) => {
                    // A block cut short by the end of the file reads as zeros there, as in qemu.
                    let at = at + pos % bs;
                    let inside = self.file.len().saturating_sub(at).min(n as u64) as usize;
                    self.file.read_exact_at(&mut out[..inside], at, "data block")?;
                    out[inside..].fill(0);
                }
                Err(_) => out.fill(0),
            }
            done += n;
        }
        Ok(())
    }

    fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
        check_range(self.file.path(), offset, length, self.size())?;
        let bs = BLOCK_SIZE as u64;
        let mut out = Vec::new();
        let mut pos = offset;
        while pos < offset + length {
            let n = (bs - pos % bs).min(offset + length - pos);
            match self.block(pos / bs) {
                Ok(at) => {
                    let at = at + pos % bs;
                    // The file's holes in the block read as zeros; past its end, too.
                    let inside = self.raw.size().saturating_sub(at).min(n);
                    if inside > 0 {
                        for e in self.raw.map(at, inside)? {
                            out.push(Extent { offset: e.offset - at + pos, ..e });
                        }
                    }
                    out.push(Extent { offset: pos + inside, length: n - inside, kind: ExtentKind::Zero });
                }
                Err(DISCARDED) => out.push(Extent { offset: pos, length: n, kind: ExtentKind::Zero }),
                Err(_) => out.push(Extent { offset: pos, length: n, kind: ExtentKind::Unallocated }),
            }
            pos += n;
        }
        Ok(coalesce(out))
    }

    fn info(&self) -> ImageInfo {
        let mut info = ImageInfo {
            format: "vdi".into(),
            virtual_size: self.size(),
            actual_size: self.file.allocated(),
            cluster_size: Some(BLOCK_SIZE as u64),
            files: vec![self.file.path().to_path_buf()],
            ..Default::default()
        };
        let kind = match self.header.image_type {
            1 => "normal".to_string(),
            2 => "fixed".to_string(),
            t => t.to_string(),
        };
        info.details.insert("image_type".into(), kind.into());
        info.details.insert("blocks_allocated".into(), self.header.blocks_allocated.into());
        let u = &self.header.uuid_image;
        info.details.insert("uuid".into(), u.iter().map(|x| format!("{x:02x}")).collect::<String>().into());
        info
    }

    fn granularity(&self) -> u64 {
        BLOCK_SIZE as u64
    }
}

/// Parses `bytes` as a whole VDI file and reads everything it maps. For fuzzing.
pub fn fuzz_image(bytes: &[u8]) -> Result<(), DiskError> {
    crate::disk::fuzz_file(bytes, "vdi", |file| crate::disk::read_mapped(&VdiImage::open(file)?))
}
