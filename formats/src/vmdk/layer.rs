//! One image of a chain: a descriptor (standalone or embedded) and its extents, or a bare
//! sparse file (KDMV, COWD, seSparse).
use super::cache::GtCache;
use super::descriptor::{self, Access, Descriptor, ExtentType};
use super::extent::{ExtentReader, FlatExtent, Hole, ZeroExtent};
use super::header::{SparseHeader, KDMV_MAGIC};
use super::source::{le64, Source};
use super::sparse::SparseExtent;
use super::{cowd, sesparse};
use crate::disk::{DiskError, Extent};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest descriptor we read (a descriptor of thousands of extents is well under this).
const MAX_DESCRIPTOR: u64 = 16 << 20;

/// createTypes that describe raw devices: nothing to convert from the descriptor alone.
const DEVICE_TYPES: [&str; 5] =
    ["fullDevice", "partitionedDevice", "vmfsRaw", "vmfsRawDeviceMap", "vmfsPassthroughRawDeviceMap"];

/// Opens extent files named by a descriptor.
pub type Opener<'a> = &'a dyn Fn(&Path) -> Result<Arc<dyn Source>, DiskError>;

/// One VMDK image (no parent).
pub struct Layer {
    /// The file the user named (descriptor or monolithic file).
    pub path: PathBuf,
    pub desc: Option<Descriptor>,
    /// Extents with their start offsets in the disk (bytes).
    extents: Vec<(u64, Box<dyn ExtentReader>)>,
    pub size: u64,
    pub create_type: String,
    pub compressed: bool,
    pub header_version: Option<u32>,
}

fn read_descriptor(src: &dyn Source, offset: u64, size: Option<u64>) -> Result<Descriptor, DiskError> {
    let path = src.path();
    let avail = src.len().saturating_sub(offset);
    let want = size.map_or(avail, |s| s.min(avail));
    if want > MAX_DESCRIPTOR {
        return Err(DiskError::invalid(path, "descriptor size", want, "larger than 16 MiB"));
    }
    let mut text = vec![0u8; want as usize];
    src.read_exact_at(&mut text, offset, "descriptor")?;
    descriptor::parse(path, &text)
}

/// The descriptor embedded in a sparse file, `None` when its area is blank.
fn read_embedded(src: &dyn Source, h: &SparseHeader) -> Result<Option<Descriptor>, DiskError> {
    let offset = h.desc_offset.saturating_mul(512);
    let size = h.desc_size.saturating_mul(512).min(MAX_DESCRIPTOR).min(src.len().saturating_sub(offset));
    let mut text = vec![0u8; size as usize];
    src.read_exact_at(&mut text, offset, "descriptor")?;
    if text.iter().all(|b| b.is_ascii_whitespace() || *b == 0) {
        return Ok(None);
    }
    descriptor::parse(src.path(), &text).map(Some)
}

/// Opens a sparse extent file of any flavour, chosen by its magic.
pub fn open_sparse(
    src: Arc<dyn Source>,
    cache: Arc<GtCache>,
    len: Option<u64>,
) -> Result<(SparseExtent, Option<SparseHeader>), DiskError> {
    let mut magic = [0u8; 8];
    src.read_padded(&mut magic, 0, "magic")?;
    if &magic[..4] == KDMV_MAGIC {
        let (e, h) = SparseExtent::open_kdmv(src, cache, len)?;
        Ok((e, Some(h)))
    } else if &magic[..4] == cowd::COWD_MAGIC {
        Ok((cowd::open(src, cache, len)?, None))
    } else if le64(&magic, 0) == sesparse::CONST_MAGIC {
        Ok((sesparse::open(src, cache, len)?, None))
    } else {
        Err(DiskError::invalid(
            src.path(),
            "magic",
            format!("{:02x?}", &magic[..4]),
            "not a KDMV, COWD or seSparse extent",
        ))
    }
}

/// A file named in a descriptor, relative to `dir`. Names written on another host (an ESXi
/// `/vmfs/volumes/...` path, a Windows `C:\\...` path) that do not exist here fall back to
/// their last component in `dir`, where copied VMs keep them.
pub fn resolve(dir: &Path, name: &str) -> PathBuf {
    let direct = dir.join(name);
    if direct.exists() {
        return direct;
    }
    match name.rsplit(['/', '\\']).next() {
        Some(base) if !base.is_empty() && base != name && dir.join(base).exists() => dir.join(base),
        _ => direct,
    }
}

impl Layer {
    /// Opens the image at `src` (its path names it); extents are opened with `opener`.
    pub fn open(src: Arc<dyn Source>, cache: Arc<GtCache>, opener: Opener) -> Result<Layer, DiskError> {
        let path = src.path().to_path_buf();
        if src.len() < 4 {
            return Err(DiskError::invalid(&path, "file size", src.len(), "too small to be a VMDK"));
        }
        let mut magic = [0u8; 8];
        src.read_padded(&mut magic, 0, "magic")?;
        let binary =
            &magic[..4] == KDMV_MAGIC || &magic[..4] == cowd::COWD_MAGIC || le64(&magic, 0) == sesparse::CONST_MAGIC;
        if !binary {
            let desc = read_descriptor(src.as_ref(), 0, None)?;
            return Self::from_descriptor(path, desc, cache, opener);
        }
        if &magic[..4] == KDMV_MAGIC {
            let mut b = [0u8; 512];
            src.read_padded(&mut b, 0, "header")?;
            let h = SparseHeader::decode(&path, &b)?;
            if h.capacity == 0 && h.desc_offset != 0 {
                // The embedded descriptor describes the extents (f16f509d17).
                let size = (h.desc_size != 0).then(|| h.desc_size.saturating_mul(512));
                let desc = read_descriptor(src.as_ref(), h.desc_offset.saturating_mul(512), size)?;
                return Self::from_descriptor(path, desc, cache, opener);
            }
        }
        let (ext, header) = open_sparse(src.clone(), cache, None)?;
        let desc = match &header {
            // An empty descriptor area (the extents of a split sparse disk) means no parent.
            Some(h) if h.desc_offset != 0 && h.desc_size != 0 => read_embedded(src.as_ref(), h)?,
            _ => None,
        };
        let create_type = match (&header, &desc) {
            (Some(h), _) if h.compressed() => "streamOptimized".to_string(),
            (_, Some(d)) if !d.create_type.is_empty() => d.create_type.clone(),
            (Some(_), _) => "monolithicSparse".to_string(),
            (None, _) if &magic[..4] == cowd::COWD_MAGIC => "vmfsSparse".to_string(),
            (None, _) => "seSparse".to_string(),
        };
        let size = ext.len();
        Ok(Layer {
            path,
            compressed: ext.compressed(),
            header_version: header.map(|h| h.version),
            desc,
            extents: vec![(0, Box::new(ext))],
            size,
            create_type,
        })
    }

    fn from_descriptor(
        path: PathBuf,
        desc: Descriptor,
        cache: Arc<GtCache>,
        opener: Opener,
    ) -> Result<Layer, DiskError> {
        if DEVICE_TYPES.iter().any(|t| t.eq_ignore_ascii_case(&desc.create_type)) {
            return Err(DiskError::unsupported(
                &path,
                format!("createType {} (a raw device mapping: copy the device itself)", desc.create_type),
            ));
        }
        if desc.extents.is_empty() {
            return Err(DiskError::invalid(&path, "extent lines", 0, "the descriptor names no extent"));
        }
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut extents: Vec<(u64, Box<dyn ExtentReader>)> = Vec::new();
        let (mut start, mut compressed, mut header_version) = (0u64, false, None);
        // Many FLAT lines may name one file: open it once.
        let mut opened: HashMap<PathBuf, Arc<dyn Source>> = HashMap::new();
        for line in &desc.extents {
            let len = line.sectors * 512;
            let file = line.file.as_deref().unwrap_or_default();
            let mut open = || -> Result<Arc<dyn Source>, DiskError> {
                let p = resolve(&dir, file);
                if let Some(src) = opened.get(&p) {
                    return Ok(Arc::clone(src));
                }
                let src = opener(&p).map_err(|e| match e {
                    DiskError::Io { source, .. } => {
                        DiskError::invalid(&path, "extent file", p.display(), source.to_string())
                    }
                    e => e,
                })?;
                opened.insert(p, Arc::clone(&src));
                Ok(src)
            };
            let ext: Box<dyn ExtentReader> = match (line.access, line.kind) {
                (_, ExtentType::VmfsRdm | ExtentType::VmfsRaw) => {
                    return Err(DiskError::unsupported(
                        &path,
                        format!("raw device mapping extent {file:?} ({:?}): copy the device itself", line.kind),
                    ));
                }
                (Access::NoAccess, _) | (_, ExtentType::Zero) => Box::new(ZeroExtent { len }),
                (_, ExtentType::Flat | ExtentType::Vmfs) => {
                    Box::new(FlatExtent::new(open()?, line.offset, line.sectors)?)
                }
                (_, ExtentType::Sparse | ExtentType::VmfsSparse | ExtentType::SeSparse) => {
                    let (e, h) = open_sparse(open()?, cache.clone(), Some(len))?;
                    compressed |= e.compressed();
                    header_version = header_version.or(h.map(|h| h.version));
                    Box::new(e)
                }
            };
            extents.push((start, ext));
            start = start
                .checked_add(len)
                .ok_or_else(|| DiskError::invalid(&path, "extent sectors", line.sectors, "disk size overflows"))?;
        }
        let create_type = desc.create_type.clone();
        Ok(Layer { path, desc: Some(desc), extents, size: start, create_type, compressed, header_version })
    }

    pub fn cid(&self) -> Option<u32> {
        self.desc.as_ref().and_then(|d| d.cid)
    }

    pub fn parent_cid(&self) -> Option<u32> {
        self.desc.as_ref().and_then(|d| d.parent_cid)
    }

    pub fn parent_hint(&self) -> Option<&str> {
        self.desc.as_ref().and_then(|d| d.parent_hint.as_deref())
    }

    /// Index of the extent holding byte `off`.
    fn find(&self, off: u64) -> usize {
        self.extents.partition_point(|(s, _)| *s <= off).saturating_sub(1)
    }

    /// Reads `buf` at `off` (inside the disk); unallocated ranges go to `holes` (disk offsets).
    pub fn read(&self, buf: &mut [u8], off: u64, holes: &mut Vec<Hole>) -> Result<(), DiskError> {
        let mut pos = 0usize;
        let mut i = self.find(off);
        while pos < buf.len() {
            let Some((start, ext)) = self.extents.get(i) else {
                buf[pos..].fill(0);
                break;
            };
            let abs = off + pos as u64;
            let rel = abs - start;
            let n = ext.len().saturating_sub(rel).min((buf.len() - pos) as u64) as usize;
            if n == 0 && ext.len() > 0 {
                buf[pos..].fill(0);
                break;
            }
            let first = holes.len();
            ext.read(&mut buf[pos..pos + n], rel, holes)?;
            for h in &mut holes[first..] {
                h.0 += start;
            }
            pos += n;
            i += 1;
        }
        Ok(())
    }

    /// The allocation map of `[off, off + len)` in this image alone.
    pub fn map(&self, off: u64, len: u64, out: &mut Vec<Extent>) -> Result<(), DiskError> {
        let (mut pos, mut i) = (0u64, self.find(off));
        while pos < len {
            let Some((start, ext)) = self.extents.get(i) else { break };
            let rel = off + pos - start;
            let n = ext.len().saturating_sub(rel).min(len - pos);
            let mut part = Vec::new();
            ext.map(rel, n, &mut part)?;
            for e in part {
                super::sparse::push_extent(out, e.offset + start, e.length, e.kind);
            }
            pos += n;
            i += 1;
        }
        Ok(())
    }

    /// Every file read, with its host allocation.
    pub fn files(&self) -> Vec<(PathBuf, u64)> {
        let mut v = Vec::new();
        if self.desc.is_some() && !self.extents.iter().any(|(_, e)| e.files().iter().any(|(p, _)| p == &self.path)) {
            let alloc =
                std::fs::metadata(&self.path).map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512).unwrap_or(0);
            v.push((self.path.clone(), alloc));
        }
        for (_, e) in &self.extents {
            v.extend(e.files());
        }
        v
    }

    /// Grain size of the first sparse extent.
    pub fn grain(&self) -> Option<u64> {
        self.extents.iter().find_map(|(_, e)| e.grain())
    }
}
