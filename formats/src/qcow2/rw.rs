//! A qcow2 image opened read-write, for the runtime's virtio-blk: clusters are allocated at
//! the end of the file, L2 tables and 16-bit refcounts are updated in place, and clusters
//! that are unallocated, zero, compressed or shared are copied on write (their old content
//! read through the backing chain). Metadata is guarded by one lock; reads and writes are
//! served from `&self`. The image's bytes are reached through [`HostFile`]: the file itself,
//! or a layer that records the writes elsewhere (the crash-safe `--in-place` journal).
use super::codec;
use super::header::Header;
use super::table::{be_entries, decode_l1, decode_l2, Mapping, COMPRESSED, COPIED, OFFSET_MASK, ZERO};
use crate::disk::{check_range, BlockDevice, DiskError, Extent, ExtentKind, ImageInfo, WritableDevice};
use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where a [`Qcow2Rw`]'s bytes live: positioned reads and writes, length and fsync.
pub trait HostFile: Send + Sync {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()>;
    fn file_len(&self) -> std::io::Result<u64>;
    fn set_len(&self, len: u64) -> std::io::Result<()>;
    fn sync_all(&self) -> std::io::Result<()>;
}

impl HostFile for File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        FileExt::write_all_at(self, buf, offset)
    }
    fn file_len(&self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        File::set_len(self, len)
    }
    fn sync_all(&self) -> std::io::Result<()> {
        File::sync_all(self)
    }
}

/// Metadata of the open image.
struct State {
    l1: Vec<u64>,
    /// L2 tables read so far, by host offset (write-through; at most `L2_CACHED`).
    l2: HashMap<u64, Vec<u64>>,
    /// Refcount table entries.
    rt: Vec<u64>,
    /// First cluster past the end of the file: where the next allocation goes.
    end: u64,
}

const L2_CACHED: usize = 256;

/// A writable qcow2 image.
pub struct Qcow2Rw {
    file: Box<dyn HostFile>,
    path: PathBuf,
    header: Header,
    backing: Option<Box<dyn BlockDevice>>,
    state: Mutex<State>,
}

impl Qcow2Rw {
    /// Opens an existing qcow2 image for reading and writing (its backing chain read-only).
    pub fn open(path: &Path) -> Result<Self, DiskError> {
        let file = std::fs::OpenOptions::new().read(true).write(true).open(path).map_err(|e| DiskError::io(path, "open", e))?;
        Self::open_on(path, Box::new(file))
    }

    /// Opens the qcow2 image whose bytes `file` serves (`path` names it in errors and finds
    /// its backing file); every write goes through `file`.
    pub fn open_on(path: &Path, file: Box<dyn HostFile>) -> Result<Self, DiskError> {
        let len = file.file_len().map_err(|e| DiskError::io(path, "stat", e))?;
        let mut head = vec![0u8; len.min(1 << 21) as usize];
        file.read_exact_at(&mut head, 0).map_err(|e| DiskError::io(path, "read", e))?;
        let header = Header::parse(path, &head, len)?;
        if header.refcount_order != 4 || header.nb_snapshots != 0 || header.incompatible & 1 != 0 {
            return Err(DiskError::unsupported(path, "writing images with snapshots, a dirty flag or non-16-bit refcounts"));
        }
        let read = |off: u64, n: u64| -> Result<Vec<u64>, DiskError> {
            let mut raw = vec![0u8; n as usize];
            file.read_exact_at(&mut raw, off).map_err(|e| DiskError::io(path, "read", e))?;
            Ok(be_entries(&raw))
        };
        let l1 = read(header.l1_table_offset, u64::from(header.l1_size) * 8)?;
        let rt = read(header.refcount_table_offset, u64::from(header.refcount_table_clusters) * header.cluster_size())?;
        let backing = super::reader::open_backing_of(path)?;
        let end = len.div_ceil(header.cluster_size());
        let state = State { l1, l2: HashMap::new(), rt, end };
        Ok(Qcow2Rw { file, path: path.to_path_buf(), header, backing, state: Mutex::new(state) })
    }

    fn cs(&self) -> u64 {
        self.header.cluster_size()
    }

    fn io(&self, op: &'static str, e: std::io::Error) -> DiskError {
        DiskError::io(&self.path, op, e)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write_u64(&self, off: u64, v: u64) -> Result<(), DiskError> {
        self.file.write_all_at(&v.to_be_bytes(), off).map_err(|e| self.io("write", e))
    }

    /// The L2 table at host offset `off`.
    fn l2<'s>(&self, st: &'s mut State, off: u64) -> Result<&'s mut Vec<u64>, DiskError> {
        if !st.l2.contains_key(&off) {
            if st.l2.len() >= L2_CACHED {
                st.l2.clear();
            }
            let mut raw = vec![0u8; self.cs() as usize];
            self.file.read_exact_at(&mut raw, off).map_err(|e| self.io("read", e))?;
            st.l2.insert(off, be_entries(&raw));
        }
        st.l2.get_mut(&off).ok_or_else(|| DiskError::unsupported(&self.path, "L2 cache miss"))
    }

    fn lookup(&self, st: &mut State, index: u64) -> Result<(Mapping, u64), DiskError> {
        let per = self.header.l2_entries();
        let entry = st.l1.get((index / per) as usize).copied().unwrap_or(0);
        let len = st.end * self.cs();
        let Some(l2_off) = decode_l1(&self.path, entry, self.cs(), len)? else { return Ok((Mapping::Unallocated, 0)) };
        let e = self.l2(st, l2_off)?.get((index % per) as usize).copied().unwrap_or(0);
        let h = &self.header;
        Ok((decode_l2(&self.path, e, h.cluster_bits, h.version, len)?, e))
    }

    /// Reads guest cluster `index` whole.
    fn read_cluster(&self, st: &mut State, index: u64, out: &mut [u8]) -> Result<(), DiskError> {
        let pos = index * self.cs();
        match self.lookup(st, index)?.0 {
            Mapping::Zero => out.fill(0),
            Mapping::Data(host) => {
                let avail = (st.end * self.cs()).saturating_sub(host).min(out.len() as u64) as usize;
                self.file.read_exact_at(&mut out[..avail], host).map_err(|e| self.io("read", e))?;
                out[avail..].fill(0);
            }
            Mapping::Compressed { offset, len } => {
                let mut data = vec![0u8; len as usize];
                self.file.read_exact_at(&mut data, offset).map_err(|e| self.io("read", e))?;
                codec::decompress(self.header.compression, &data, out)
                    .map_err(|e| DiskError::invalid(&self.path, "compressed cluster at guest offset", pos, e))?;
            }
            Mapping::Unallocated => {
                out.fill(0);
                if let Some(b) = &self.backing {
                    let n = b.size().saturating_sub(pos).min(out.len() as u64) as usize;
                    if n > 0 {
                        b.read_at(&mut out[..n], pos)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds `delta` to cluster `c`'s refcount, creating its refcount block if needed.
    fn add_ref(&self, st: &mut State, c: u64, delta: i32) -> Result<(), DiskError> {
        let per = self.cs() / 2;
        let b = (c / per) as usize;
        let Some(&block) = st.rt.get(b) else {
            return Err(DiskError::unsupported(&self.path, "growing the refcount table"));
        };
        let block = if block & OFFSET_MASK == 0 {
            let k = st.end;
            st.end += 1;
            self.file.write_all_at(&vec![0u8; self.cs() as usize], k * self.cs()).map_err(|e| self.io("write", e))?;
            st.rt[b] = k * self.cs();
            self.write_u64(self.header.refcount_table_offset + b as u64 * 8, k * self.cs())?;
            self.add_ref(st, k, 1)?;
            k * self.cs()
        } else {
            block & OFFSET_MASK
        };
        let at = block + (c % per) * 2;
        let mut v = [0u8; 2];
        self.file.read_exact_at(&mut v, at).map_err(|e| self.io("read", e))?;
        let n = (i32::from(u16::from_be_bytes(v)) + delta).clamp(0, 0xffff) as u16;
        self.file.write_all_at(&n.to_be_bytes(), at).map_err(|e| self.io("write", e))
    }

    /// A new cluster at the end of the file, refcount 1.
    fn alloc(&self, st: &mut State) -> Result<u64, DiskError> {
        let k = st.end;
        st.end += 1;
        self.file.set_len(st.end * self.cs()).map_err(|e| self.io("extend", e))?;
        self.add_ref(st, k, 1)?;
        Ok(k * self.cs())
    }

    /// Drops the references of an L2 entry being replaced.
    fn release(&self, st: &mut State, entry: u64) -> Result<(), DiskError> {
        if entry & COMPRESSED != 0 {
            let x = 62 - (self.header.cluster_bits - 8);
            let off = entry & ((1u64 << x) - 1);
            let sectors = (entry >> x) & ((1u64 << (self.header.cluster_bits - 8)) - 1);
            let end = (off / 512 + sectors + 1) * 512;
            for c in off / self.cs()..=(end - 1) / self.cs() {
                self.add_ref(st, c, -1)?;
            }
        } else if entry & OFFSET_MASK != 0 {
            self.add_ref(st, (entry & OFFSET_MASK) / self.cs(), -1)?;
        }
        Ok(())
    }

    /// Sets guest cluster `index`'s L2 entry, allocating its L2 table if needed.
    fn set_entry(&self, st: &mut State, index: u64, entry: u64) -> Result<(), DiskError> {
        let per = self.header.l2_entries();
        let i1 = (index / per) as usize;
        let mut l2_off = st.l1.get(i1).copied().unwrap_or(0) & OFFSET_MASK;
        if l2_off == 0 {
            l2_off = self.alloc(st)?;
            self.file.write_all_at(&vec![0u8; self.cs() as usize], l2_off).map_err(|e| self.io("write", e))?;
            st.l1[i1] = l2_off | COPIED;
            self.write_u64(self.header.l1_table_offset + i1 as u64 * 8, l2_off | COPIED)?;
        }
        let slot = (index % per) as usize;
        self.l2(st, l2_off)?[slot] = entry;
        self.write_u64(l2_off + slot as u64 * 8, entry)
    }

    /// Writes `data` at `in_cluster` of guest cluster `index`.
    fn write_piece(&self, st: &mut State, index: u64, in_cluster: usize, data: &[u8]) -> Result<(), DiskError> {
        let cs = self.cs() as usize;
        let (mapping, entry) = self.lookup(st, index)?;
        if let (Mapping::Data(host), true) = (mapping, entry & COPIED != 0) {
            return self.file.write_all_at(data, host + in_cluster as u64).map_err(|e| self.io("write", e));
        }
        // Copy on write: the whole cluster goes to a new place.
        let mut buf = vec![0u8; cs];
        if data.len() < cs {
            self.read_cluster(st, index, &mut buf)?;
        }
        buf[in_cluster..in_cluster + data.len()].copy_from_slice(data);
        let host = self.alloc(st)?;
        self.file.write_all_at(&buf, host).map_err(|e| self.io("write", e))?;
        self.set_entry(st, index, host | COPIED)?;
        self.release(st, entry & !ZERO)
    }
}

/// `len` bytes at guest `offset` cut at `cs`-byte cluster boundaries: each piece's cluster
/// index, its offset within that cluster, and its range of the caller's buffer.
fn cluster_pieces(offset: u64, len: usize, cs: u64) -> impl Iterator<Item = (u64, usize, Range<usize>)> {
    let mut done = 0usize;
    std::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let pos = offset + done as u64;
        let within = (pos % cs) as usize;
        let n = (cs as usize - within).min(len - done);
        let piece = (pos / cs, within, done..done + n);
        done += n;
        Some(piece)
    })
}

impl BlockDevice for Qcow2Rw {
    fn size(&self) -> u64 {
        self.header.size
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        check_range(&self.path, offset, buf.len() as u64, self.size())?;
        let cs = self.cs();
        let mut cluster = vec![0u8; cs as usize];
        let mut st = self.lock();
        for (index, within, range) in cluster_pieces(offset, buf.len(), cs) {
            self.read_cluster(&mut st, index, &mut cluster)?;
            buf[range.clone()].copy_from_slice(&cluster[within..within + range.len()]);
        }
        Ok(())
    }

    fn map(&self, offset: u64, length: u64) -> Result<Vec<Extent>, DiskError> {
        check_range(&self.path, offset, length, self.size())?;
        let cs = self.cs();
        let mut st = self.lock();
        let mut out = Vec::new();
        let mut pos = offset;
        while pos < offset + length {
            let next = ((pos / cs + 1) * cs).min(offset + length);
            let kind = match self.lookup(&mut st, pos / cs)?.0 {
                Mapping::Zero => ExtentKind::Zero,
                Mapping::Data(_) | Mapping::Compressed { .. } => ExtentKind::Data,
                Mapping::Unallocated => match &self.backing {
                    Some(b) if pos < b.size() => ExtentKind::Data,
                    _ => ExtentKind::Unallocated,
                },
            };
            out.push(Extent { offset: pos, length: next - pos, kind });
            pos = next;
        }
        Ok(crate::disk::coalesce(out))
    }

    fn info(&self) -> ImageInfo {
        ImageInfo {
            format: "qcow2".into(),
            virtual_size: self.size(),
            cluster_size: Some(self.cs()),
            files: vec![self.path.clone()],
            ..Default::default()
        }
    }

    fn granularity(&self) -> u64 {
        self.cs()
    }
}

impl WritableDevice for Qcow2Rw {
    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), DiskError> {
        check_range(&self.path, offset, buf.len() as u64, self.size())?;
        let cs = self.cs();
        let mut st = self.lock();
        for (index, within, range) in cluster_pieces(offset, buf.len(), cs) {
            self.write_piece(&mut st, index, within, &buf[range])?;
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), DiskError> {
        self.file.sync_all().map_err(|e| self.io("fsync", e))
    }

    fn discard(&self, offset: u64, length: u64) -> Result<(), DiskError> {
        check_range(&self.path, offset, length, self.size())?;
        // Zeros are written (whole clusters are copied on write like any other write);
        // the space is not given back.
        let zeros = vec![0u8; self.cs().min(length) as usize];
        let mut pos = offset;
        while pos < offset + length {
            let n = (offset + length - pos).min(zeros.len() as u64);
            self.write_at(&zeros[..n as usize], pos)?;
            pos += n;
        }
        Ok(())
    }
}
