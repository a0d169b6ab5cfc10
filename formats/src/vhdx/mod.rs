//! VHDX (Hyper-V), read-only: the current of the two headers, the region table, the
//! metadata (block size, virtual size, sector sizes) and the BAT with its interleaved
//! sector-bitmap entries. Blocks fully present are read from the file; not present,
//! undefined, zero and unmapped blocks read as zeros, as qemu reads them. An image whose
//! log holds entries to replay is refused by name (qemu also refuses it read-only), as are
//! differencing VHDX files (qemu does not read them either).
mod header;
mod metadata;

use crate::disk::{check_range, coalesce, BlockDevice, DiskError, Extent, ExtentKind, ImageInfo, ReadOnlyFile};
pub use header::SIGNATURE;
use metadata::Metadata;
use std::path::Path;

const NOT_PRESENT: u64 = 0;
const UNDEFINED: u64 = 1;
const ZERO: u64 = 2;
const UNMAPPED: u64 = 3;
const FULLY_PRESENT: u64 = 6;
const PARTIALLY_PRESENT: u64 = 7;

/// An open VHDX image.
pub struct VhdxImage {
    file: ReadOnlyFile,
    meta: Metadata,
    /// Payload entries only (the sector bitmap entries dropped).
    bat: Vec<u64>,
}

/// Opens a VHDX image read-only.
pub fn open(path: &Path) -> Result<Box<dyn BlockDevice>, DiskError> {
    Ok(Box::new(VhdxImage::open(ReadOnlyFile::open(path)?)?))
}

impl VhdxImage {
    pub fn open(file: ReadOnlyFile) -> Result<Self, DiskError> {
        let path = file.path().to_path_buf();
        let h = header::read_header(&file)?;
        header::check_log(&file, &h)?;
        let (bat_region, meta_region) = header::read_regions(&file)?;
        let meta = metadata::read(&file, meta_region)?;
        if meta.has_parent {
            return Err(DiskError::unsupported(
                &path,
                "VHDX differencing disk (file parameters has_parent): merge it into its parent in Hyper-V first",
            ));
        }
        let bs = meta.block_size as u64;
        let chunk_ratio = ((1u64 << 23) * meta.logical_sector as u64) / bs;
        let blocks = meta.virtual_size.div_ceil(bs);
        let entries = if blocks == 0 { 0 } else { blocks + (blocks - 1) / chunk_ratio };
        // The BAT is read whole: it must fit its region before it sizes an allocation.
        if entries * 8 > bat_region.length as u64 {
            return Err(DiskError::invalid(
                &path,
                "BAT region length",
                bat_region.length,
                format!("smaller than the {entries} entries a disk of {} bytes needs", meta.virtual_size),
            ));
        }
        let mut raw = vec![0u8; entries as usize * 8];
        file.read_exact_at(&mut raw, bat_region.offset, "BAT")?;
        let mut bat = Vec::with_capacity(blocks as usize);
        for (i, c) in raw.chunks_exact(8).enumerate() {
            if (i as u64 + 1).is_multiple_of(chunk_ratio + 1) {
                continue; // a sector bitmap entry
            }
            let e = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            let b = bat.len();
            match e & 7 {
                NOT_PRESENT | UNDEFINED | ZERO | UNMAPPED => {}
                FULLY_PRESENT => {
                    let at = (e >> 20) << 20;
                    if at < (1 << 20) || at.checked_add(bs).is_none_or(|end| end > file.len()) {
                        return Err(DiskError::invalid(
                            &path,
                            format!("BAT entry of block {b}"),
                            format!("{e:#x}"),
                            format!("the block at {at} lies outside the file ({} bytes)", file.len()),
                        ));
                    }
                }
                PARTIALLY_PRESENT => {
                    return Err(DiskError::invalid(&path, format!("BAT entry of block {b}"), format!("{e:#x}"), "partially present in a disk without a parent"));
                }
                s => return Err(DiskError::invalid(&path, format!("BAT entry of block {b}"), format!("{e:#x}"), format!("unknown state {s}"))),
            }
            bat.push(e);
        }
        Ok(VhdxImage { file, meta, bat })
    }

    fn entry(&self, block: u64) -> u64 {
        self.bat.get(block as usize).copied().unwrap_or(NOT_PRESENT)
    }
}

impl BlockDevice for VhdxImage {
    fn size(&self) -> u64 {
        self.meta.virtual_size
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        check_range(self.file.path(), offset, buf.len() as u64, self.size())?;
        let bs = self.meta.block_size as u64;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let n = (bs - pos % bs).min((buf.len() - done) as u64) as usize;
            let out = &mut buf[done..done + n];
            let e = self.entry(pos / bs);
            if e & 7 == FULLY_PRESENT {
                self.file.read_exact_at(out, ((e >> 20) << 20) + pos % bs, "data block")?;
            } else {
                out.fill(0);
            }
            done += n;
        }
        Ok(())
    }

    fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
        check_range(self.file.path(), offset, length, self.size())?;
        let bs = self.meta.block_size as u64;
        let mut out = Vec::new();
        let mut pos = offset;
        while pos < offset + length {
            let n = (bs - pos % bs).min(offset + length - pos);
            let kind = match self.entry(pos / bs) & 7 {
                FULLY_PRESENT => ExtentKind::Data,
                ZERO => ExtentKind::Zero,
                _ => ExtentKind::Unallocated,
            };
            out.push(Extent { offset: pos, length: n, kind });
            pos += n;
        }
        Ok(coalesce(out))
    }

    fn info(&self) -> ImageInfo {
        let mut info = ImageInfo {
            format: "vhdx".into(),
            virtual_size: self.size(),
            actual_size: self.file.allocated(),
            cluster_size: Some(self.meta.block_size as u64),
            files: vec![self.file.path().to_path_buf()],
            ..Default::default()
        };
        info.details.insert("logical_sector_size".into(), self.meta.logical_sector.into());
        info.details.insert("physical_sector_size".into(), self.meta.physical_sector.into());
        info
    }

    fn granularity(&self) -> u64 {
        (self.meta.block_size as u64).min(2 << 20)
    }
}

/// Parses `bytes` as a whole VHDX file and reads everything it maps. For fuzzing.
pub fn fuzz_image(bytes: &[u8]) -> Result<(), DiskError> {
    crate::disk::fuzz_file(bytes, "vhdx", |file| crate::disk::read_mapped(&VhdxImage::open(file)?))
}
