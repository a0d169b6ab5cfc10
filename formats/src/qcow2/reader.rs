//! Reading qcow2 v2/v3 images as block devices, with their backing chains.
use super::codec;
use super::header::Header;
use super::table::{be_entries, decode_l1, decode_l2, L2Cache, Mapping};
use crate::disk::{
    check_range, coalesce, open_image, probe_format, BlockDevice, DiskError, Extent, ExtentKind, ImageFormat,
    ImageInfo, ReadOnlyFile,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Longest backing chain followed.
pub const MAX_CHAIN: usize = 64;
/// Bytes of L2 tables cached per image.
const L2_CACHE_BYTES: u64 = 16 << 20;

/// An open qcow2 image (read-only) and its backing image.
pub struct Qcow2Image {
    file: ReadOnlyFile,
    header: Header,
    l1: Vec<u64>,
    cache: L2Cache,
    backing: Option<Box<dyn BlockDevice>>,
    backing_path: Option<PathBuf>,
}

/// Opens a qcow2 image and its whole backing chain, read-only.
pub fn open(path: &Path) -> Result<Box<dyn BlockDevice>, DiskError> {
    Ok(Box::new(open_chain(path, &mut Vec::new())?))
}

fn open_chain(path: &Path, seen: &mut Vec<PathBuf>) -> Result<Qcow2Image, DiskError> {
    let canon = std::fs::canonicalize(path).map_err(|e| DiskError::io(path, "open", e))?;
    if let Some(first) = seen.iter().find(|p| **p == canon) {
        return Err(DiskError::invalid(
            first,
            "backing chain",
            path.display(),
            "loops back to an image already in the chain",
        ));
    }
    if seen.len() >= MAX_CHAIN {
        return Err(DiskError::invalid(path, "backing chain depth", seen.len(), format!("more than {MAX_CHAIN} images")));
    }
    seen.push(canon);
    let mut img = Qcow2Image::open_no_backing(path)?;
    if let Some(name) = img.header.backing_file.clone() {
        let bpath = resolve_backing(path, &name);
        if !bpath.exists() {
            return Err(DiskError::invalid(path, "backing file", &name, format!("{} does not exist", bpath.display())));
        }
        let format = match img.header.backing_format.as_deref() {
            Some(f) => ImageFormat::from_name(f)
                .ok_or_else(|| DiskError::unsupported(path, format!("backing file format {f:?}")))?,
            None => probe_format(&bpath)?,
        };
        let dev: Box<dyn BlockDevice> = match format {
            ImageFormat::Qcow2 => Box::new(open_chain(&bpath, seen)?),
            other => open_image(&bpath, Some(other))?,
        };
        img.backing = Some(dev);
        img.backing_path = Some(bpath);
    }
    Ok(img)
}

/// Opens the backing chain of the qcow2 image at `path` (read-only), if it has one.
pub(crate) fn open_backing_of(path: &Path) -> Result<Option<Box<dyn BlockDevice>>, DiskError> {
    Ok(open_chain(path, &mut Vec::new())?.backing)
}

/// A backing file name is relative to the directory of the image naming it.
fn resolve_backing(image: &Path, name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    match image.parent() {
        Some(dir) => dir.join(p),
        None => p.to_path_buf(),
    }
}

impl Qcow2Image {
    /// Opens one qcow2 file, ignoring its backing file (reads of unallocated clusters give
    /// zeros). `img check` uses this, as `qemu-img check` does.
    pub fn open_no_backing(path: &Path) -> Result<Self, DiskError> {
        let file = ReadOnlyFile::open(path)?;
        let mut head = vec![0u8; file.len().min(1 << 21) as usize];
        file.read_exact_at(&mut head, 0, "header")?;
        let header = Header::parse(path, &head, file.len())?;
        head.truncate((header.cluster_size() as usize).min(head.len()));
        let mut raw = vec![0u8; header.l1_size as usize * 8];
        file.read_exact_at(&mut raw, header.l1_table_offset, "L1 table")?;
        let l1 = be_entries(&raw);
        let cache = L2Cache::new(L2_CACHE_BYTES, header.cluster_size());
        Ok(Qcow2Image { file, header, l1, cache, backing: None, backing_path: None })
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The image file.
    pub fn file(&self) -> &ReadOnlyFile {
        &self.file
    }

    /// The active L1 table.
    pub fn l1(&self) -> &[u64] {
        &self.l1
    }

    /// Reads the L2 table at host `offset` (uncached).
    pub fn read_l2(&self, offset: u64) -> Result<Vec<u64>, DiskError> {
        let mut raw = vec![0u8; self.header.cluster_size() as usize];
        self.file.read_exact_at(&mut raw, offset, "L2 table")?;
        Ok(be_entries(&raw))
    }

    fn l2_table(&self, l1_index: u64) -> Result<Option<Arc<Vec<u64>>>, DiskError> {
        let entry = self.l1.get(l1_index as usize).copied().unwrap_or(0);
        let Some(off) = decode_l1(self.file.path(), entry, self.header.cluster_size(), self.file.len())? else {
            return Ok(None);
        };
        self.cache.get(off, || self.read_l2(off)).map(Some)
    }

    /// Where guest cluster `index` is stored.
    pub fn lookup(&self, index: u64) -> Result<Mapping, DiskError> {
        self.lookup_with(index, &mut None)
    }

    /// Like [`lookup`](Self::lookup), keeping the last L2 table in `cur` so runs of lookups
    /// in one L2 range take the cache lock once.
    fn lookup_with(&self, index: u64, cur: &mut Option<(u64, Option<Arc<Vec<u64>>>)>) -> Result<Mapping, DiskError> {
        let per = self.header.l2_entries();
        let l1_index = index / per;
        if cur.as_ref().is_none_or(|c| c.0 != l1_index) {
            *cur = Some((l1_index, self.l2_table(l1_index)?));
        }
        let Some((_, Some(l2))) = cur else { return Ok(Mapping::Unallocated) };
        let entry = l2.get((index % per) as usize).copied().unwrap_or(0);
        let h = &self.header;
        decode_l2(self.file.path(), entry, h.cluster_bits, h.version, self.file.len())
    }

    /// Reads `buf.len()` host bytes at `offset`; bytes past the end of the file read as zeros.
    fn read_host(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        let avail = self.file.len().saturating_sub(offset).min(buf.len() as u64) as usize;
        let (head, tail) = buf.split_at_mut(avail);
        if !head.is_empty() {
            self.file.read_exact_at(head, offset, "data cluster")?;
        }
        tail.fill(0);
        Ok(())
    }

    fn read_backing(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        let Some(b) = &self.backing else {
            buf.fill(0);
            return Ok(());
        };
        let avail = b.size().saturating_sub(offset).min(buf.len() as u64) as usize;
        let (head, tail) = buf.split_at_mut(avail);
        if !head.is_empty() {
            b.read_at(head, offset)?;
        }
        tail.fill(0);
        Ok(())
    }

    fn read_compressed(&self, out: &mut [u8], offset: u64, len: u64, guest: u64) -> Result<(), DiskError> {
        let mut data = vec![0u8; len as usize];
        self.file.read_exact_at(&mut data, offset, "compressed cluster")?;
        codec::decompress(self.header.compression, &data, out).map_err(|e| {
            DiskError::invalid(self.file.path(), "compressed cluster at guest offset", guest, e)
        })
    }
}

/// A pending run of one kind of read, merged while contiguous.
enum Run {
    Host { buf: usize, host: u64, len: usize },
    Backing { buf: usize, guest: u64, len: usize },
}

impl BlockDevice for Qcow2Image {
    fn size(&self) -> u64 {
        self.header.size
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        check_range(self.file.path(), offset, buf.len() as u64, self.size())?;
        let cs = self.header.cluster_size();
        let mut run: Option<Run> = None;
        let mut done = 0usize;
        let mut cluster_buf: Vec<u8> = Vec::new();
        let mut cur = None;
        let flush = |run: &mut Option<Run>, buf: &mut [u8]| -> Result<(), DiskError> {
            match run.take() {
                Some(Run::Host { buf: b, host, len }) => self.read_host(&mut buf[b..b + len], host),
                Some(Run::Backing { buf: b, guest, len }) => self.read_backing(&mut buf[b..b + len], guest),
                None => Ok(()),
            }
        };
        while done < buf.len() {
            let pos = offset + done as u64;
            let in_cluster = pos % cs;
            let n = ((cs - in_cluster) as usize).min(buf.len() - done);
            match self.lookup_with(pos / cs, &mut cur)? {
                Mapping::Data(host) => {
                    let host = host + in_cluster;
                    match &mut run {
                        Some(Run::Host { buf: b, host: h, len }) if *h + *len as u64 == host && *b + *len == done => {
                            *len += n
                        }
                        _ => {
                            flush(&mut run, buf)?;
                            run = Some(Run::Host { buf: done, host, len: n });
                        }
                    }
                }
                Mapping::Unallocated => match &mut run {
                    Some(Run::Backing { buf: b, len, .. }) if *b + *len == done => *len += n,
                    _ => {
                        flush(&mut run, buf)?;
                        run = Some(Run::Backing { buf: done, guest: pos, len: n });
                    }
                },
                Mapping::Zero => {
                    flush(&mut run, buf)?;
                    buf[done..done + n].fill(0);
                }
                Mapping::Compressed { offset: host, len } => {
                    flush(&mut run, buf)?;
                    if n as u64 == cs {
                        self.read_compressed(&mut buf[done..done + n], host, len, pos)?;
                    } else {
                        cluster_buf.resize(cs as usize, 0);
                        self.read_compressed(&mut cluster_buf, host, len, pos - in_cluster)?;
                        buf[done..done + n].copy_from_slice(&cluster_buf[in_cluster as usize..in_cluster as usize + n]);
                    }
                }
            }
            done += n;
        }
        flush(&mut run, buf)
    }

    fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
        check_range(self.file.path(), offset, length, self.size())?;
        let cs = self.header.cluster_size();
        let per = self.header.l2_entries();
        let end = offset + length;
        let mut out = Vec::new();
        let mut pos = offset;
        let mut unalloc: Option<u64> = None; // start of a pending unallocated run
        let mut cur = None;
        while pos < end {
            let index = pos / cs;
            if cur.as_ref().is_none_or(|c: &(u64, Option<Arc<Vec<u64>>>)| c.0 != index / per) {
                cur = Some((index / per, self.l2_table(index / per)?));
            }
            let (kind, next) = if matches!(cur, Some((_, None))) {
                (None, ((index / per + 1) * per * cs).min(end))
            } else {
                let kind = match self.lookup_with(index, &mut cur)? {
                    Mapping::Unallocated => None,
                    Mapping::Zero => Some(ExtentKind::Zero),
                    _ => Some(ExtentKind::Data),
                };
                (kind, ((index + 1) * cs).min(end))
            };
            match kind {
                None => {
                    unalloc.get_or_insert(pos);
                }
                Some(k) => {
                    if let Some(start) = unalloc.take() {
                        self.map_backing(start, pos, &mut out)?;
                    }
                    out.push(Extent { offset: pos, length: next - pos, kind: k });
                }
            }
            pos = next;
        }
        if let Some(start) = unalloc {
            self.map_backing(start, end, &mut out)?;
        }
        Ok(coalesce(out))
    }

    fn info(&self) -> ImageInfo {
        let h = &self.header;
        let mut details = std::collections::BTreeMap::new();
        let mut put = |k: &str, v: serde_json::Value| {
            details.insert(k.to_string(), v);
        };
        put("compat", (if h.version == 2 { "0.10" } else { "1.1" }).into());
        put("compression-type", h.compression.name().into());
        put("refcount-bits", (1u64 << h.refcount_order).into());
        if h.version >= 3 {
            put("lazy-refcounts", (h.compatible & 1 != 0).into());
            put("corrupt", false.into());
            put("extended-l2", false.into());
        }
        put("dirty-flag", (h.incompatible & super::header::INCOMPAT_DIRTY != 0).into());
        if let Some(b) = &h.backing_file {
            put("backing-filename", b.clone().into());
        }
        if let Some(f) = &h.backing_format {
            put("backing-filename-format", f.clone().into());
        }
        ImageInfo {
            format: "qcow2".into(),
            virtual_size: h.size,
            actual_size: self.file.allocated(),
            cluster_size: Some(h.cluster_size()),
            files: vec![self.file.path().to_path_buf()],
            backing: self.backing_path.clone(),
            details,
        }
    }

    fn granularity(&self) -> u64 {
        self.header.cluster_size()
    }
}

impl Qcow2Image {
    /// Maps an unallocated guest range `[start, end)` through the backing image.
    fn map_backing(&self, start: u64, end: u64, out: &mut Vec<Extent>) -> Result<(), DiskError> {
        let Some(b) = &self.backing else {
            out.push(Extent { offset: start, length: end - start, kind: ExtentKind::Unallocated });
            return Ok(());
        };
        let bend = end.min(b.size());
        if start < bend {
            out.extend(b.map(start, bend - start)?);
        }
        let from = start.max(bend);
        if from < end {
            out.push(Extent { offset: from, length: end - from, kind: ExtentKind::Unallocated });
        }
        Ok(())
    }
}
