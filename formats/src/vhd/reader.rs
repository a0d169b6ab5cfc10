//! Reading fixed, dynamic and differencing VHDs as block devices.
use super::footer::{self, DiskType, DynHeader, Footer, FOOTER_SIZE};
use super::parent;
use crate::disk::{check_range, coalesce, BlockDevice, DiskError, Extent, ExtentKind, ImageInfo, RawImage, ReadOnlyFile};
use std::path::{Path, PathBuf};

const UNALLOCATED: u32 = 0xffff_ffff;
/// Longest parent chain followed.
pub const MAX_CHAIN: usize = 64;

/// An open VHD (read-only) and, for a differencing disk, its parent chain.
pub struct VhdImage {
    file: ReadOnlyFile,
    footer: Footer,
    block_size: u64,
    bitmap_size: u64,
    bat: Vec<u32>,
    parent: Option<Box<VhdImage>>,
    /// A fixed disk's data seen as raw, for its hole map.
    raw: Option<RawImage>,
}

impl VhdImage {
    /// Opens a VHD and, for a differencing disk, its whole parent chain.
    pub fn open(path: &Path) -> Result<Self, DiskError> {
        Self::open_chain(path, &mut Vec::new())
    }

    fn open_chain(path: &Path, seen: &mut Vec<PathBuf>) -> Result<Self, DiskError> {
        let canon = std::fs::canonicalize(path).map_err(|e| DiskError::io(path, "open", e))?;
        if seen.contains(&canon) {
            return Err(DiskError::invalid(path, "parent chain", path.display(), "loops back to an image already in the chain"));
        }
        if seen.len() >= MAX_CHAIN {
            return Err(DiskError::invalid(path, "parent chain depth", seen.len(), format!("more than {MAX_CHAIN} images")));
        }
        seen.push(canon);
        let mut img = Self::open_no_parent(ReadOnlyFile::open(path)?)?;
        if img.footer.disk_type == DiskType::Differencing {
            let dynh = img.dyn_header()?;
            let ppath = parent::locate(img.file.path(), &dynh, &img.file)?;
            let p = Self::open_chain(&ppath, seen)?;
            if p.footer.uuid != dynh.parent_uuid {
                return Err(DiskError::invalid(
                    path,
                    "dynamic header parent_uuid",
                    hex(&dynh.parent_uuid),
                    format!("differs from the UUID of {} ({})", ppath.display(), hex(&p.footer.uuid)),
                ));
            }
            if p.size() < img.size() {
                return Err(DiskError::invalid(
                    path,
                    "parent",
                    ppath.display(),
                    format!("holds {} bytes, less than this disk's {}", p.size(), img.size()),
                ));
            }
            img.parent = Some(Box::new(p));
        }
        Ok(img)
    }

    /// Opens one VHD file; a differencing disk's parent is left unopened.
    pub fn open_no_parent(file: ReadOnlyFile) -> Result<Self, DiskError> {
        let path = file.path().to_path_buf();
        if file.len() < FOOTER_SIZE {
            return Err(DiskError::invalid(&path, "file length", file.len(), "shorter than a VHD footer (512 bytes)"));
        }
        let mut b = [0u8; 512];
        file.read_exact_at(&mut b, 0, "footer")?;
        let footer = if &b[..8] == footer::COOKIE {
            footer::parse_footer(&path, &b, false)?
        } else {
            file.read_exact_at(&mut b, file.len() - FOOTER_SIZE, "footer")?;
            footer::parse_footer(&path, &b, true)?
        };
        let mut img = VhdImage { file, footer, block_size: 0, bitmap_size: 0, bat: Vec::new(), parent: None, raw: None };
        if img.footer.disk_type == DiskType::Fixed {
            let data = img.file.len() - FOOTER_SIZE;
            if img.footer.size > data {
                return Err(DiskError::invalid(
                    &path,
                    "footer current_size",
                    img.footer.current_size,
                    format!("larger than the fixed disk's data ({data} bytes)"),
                ));
            }
            img.raw = Some(RawImage::open(&path)?);
            return Ok(img);
        }
        let dynh = img.dyn_header()?;
        img.block_size = dynh.block_size as u64;
        img.bitmap_size = (img.block_size / (8 * 512)).div_ceil(512) * 512;
        let mut raw = vec![0u8; dynh.max_table_entries as usize * 4];
        img.file.read_exact_at(&mut raw, dynh.table_offset, "block allocation table")?;
        img.bat = raw.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect();
        // Every allocated block (bitmap and data) must lie inside the file, as qemu checks.
        for (i, &e) in img.bat.iter().enumerate() {
            if e == UNALLOCATED {
                continue;
            }
            let end = e as u64 * 512 + img.bitmap_size + img.block_size;
            if end > img.file.len() {
                return Err(DiskError::invalid(
                    &path,
                    format!("block allocation table entry {i}"),
                    format!("sector {e}"),
                    format!("the block ends at {end}, past the end of the file ({} bytes)", img.file.len()),
                ));
            }
        }
        Ok(img)
    }

    fn dyn_header(&self) -> Result<DynHeader, DiskError> {
        let mut h = [0u8; footer::DYN_HEADER_SIZE];
        self.file.read_exact_at(&mut h, self.footer.data_offset, "dynamic disk header (footer data_offset)")?;
        footer::parse_dyn_header(self.file.path(), &h, self.footer.size, self.file.len())
    }

    pub fn disk_type(&self) -> DiskType {
        self.footer.disk_type
    }

    /// The (bitmap offset, data offset) of block `i`, or `None` when it is not allocated.
    fn block(&self, i: u64) -> Option<(u64, u64)> {
        match self.bat.get(i as usize) {
            Some(&e) if e != UNALLOCATED => Some((e as u64 * 512, e as u64 * 512 + self.bitmap_size)),
            _ => None,
        }
    }

    /// Runs of sectors of block `i` from `within` for `len` bytes: (offset in block, length,
    /// present in this file).
    fn bitmap_runs(&self, bitmap_at: u64, within: u64, len: u64) -> Result<Vec<(u64, u64, bool)>, DiskError> {
        let first = within / 512;
        let last = (within + len - 1) / 512;
        let (b0, b1) = (first / 8, last / 8);
        let mut bits = vec![0u8; (b1 - b0 + 1) as usize];
        self.file.read_exact_at(&mut bits, bitmap_at + b0, "sector bitmap")?;
        let mut runs: Vec<(u64, u64, bool)> = Vec::new();
        for s in first..=last {
            let present = bits[(s / 8 - b0) as usize] & (0x80 >> (s % 8)) != 0;
            let start = (s * 512).max(within);
            let end = ((s + 1) * 512).min(within + len);
            match runs.last_mut() {
                Some(r) if r.2 == present => r.1 += end - start,
                _ => runs.push((start, end - start, present)),
            }
        }
        Ok(runs)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl BlockDevice for VhdImage {
    fn size(&self) -> u64 {
        self.footer.size
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        check_range(self.file.path(), offset, buf.len() as u64, self.size())?;
        if self.footer.disk_type == DiskType::Fixed {
            return self.file.read_exact_at(buf, offset, "data");
        }
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let (bi, within) = (pos / self.block_size, pos % self.block_size);
            let n = (self.block_size - within).min((buf.len() - done) as u64);
            let out = &mut buf[done..done + n as usize];
            match (self.block(bi), &self.parent) {
                (None, None) => out.fill(0),
                (None, Some(p)) => p.read_at(out, pos)?,
                // A dynamic disk's blocks are read whole, its bitmap ignored, as qemu does.
                (Some((_, data)), None) => self.file.read_exact_at(out, data + within, "data block")?,
                (Some((bitmap, data)), Some(p)) => {
                    for (at, len, present) in self.bitmap_runs(bitmap, within, n)? {
                        let piece = &mut out[(at - within) as usize..(at - within + len) as usize];
                        if present {
                            self.file.read_exact_at(piece, data + at, "data block")?;
                        } else {
                            p.read_at(piece, bi * self.block_size + at)?;
                        }
                    }
                }
            }
            done += n as usize;
        }
        Ok(())
    }

    fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
        check_range(self.file.path(), offset, length, self.size())?;
        if let Some(raw) = &self.raw {
            return raw.map(offset, length);
        }
        let mut out = Vec::new();
        let end = offset + length;
        let mut pos = offset;
        while pos < end {
            let (bi, within) = (pos / self.block_size, pos % self.block_size);
            let n = (self.block_size - within).min(end - pos);
            match (self.block(bi), &self.parent) {
                (None, None) => out.push(Extent { offset: pos, length: n, kind: ExtentKind::Unallocated }),
                (None, Some(p)) => out.extend(p.map(pos, n)?),
                (Some(_), None) => out.push(Extent { offset: pos, length: n, kind: ExtentKind::Data }),
                (Some((bitmap, _)), Some(p)) => {
                    for (at, len, present) in self.bitmap_runs(bitmap, within, n)? {
                        let o = bi * self.block_size + at;
                        if present {
                            out.push(Extent { offset: o, length: len, kind: ExtentKind::Data });
                        } else {
                            out.extend(p.map(o, len)?);
                        }
                    }
                }
            }
            pos += n;
        }
        Ok(coalesce(out))
    }

    fn info(&self) -> ImageInfo {
        let mut info = ImageInfo {
            format: "vpc".into(),
            virtual_size: self.size(),
            actual_size: self.file.allocated(),
            cluster_size: (self.footer.disk_type != DiskType::Fixed).then_some(self.block_size),
            files: vec![self.file.path().to_path_buf()],
            ..Default::default()
        };
        if let Some(p) = &self.parent {
            info.backing = Some(p.file.path().to_path_buf());
        }
        info.details.insert("subformat".into(), self.footer.disk_type.name().into());
        info.details.insert("creator_app".into(), self.footer.creator_app.escape_ascii().to_string().into());
        info.details.insert("uuid".into(), hex(&self.footer.uuid).into());
        info
    }

    fn granularity(&self) -> u64 {
        if self.footer.disk_type == DiskType::Fixed {
            65536
        } else {
            self.block_size.clamp(512, 2 << 20)
        }
    }
}
