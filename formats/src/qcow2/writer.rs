//! The one-pass qcow2 v3 writer.
//!
//! Guest clusters arrive in ascending order. Data clusters are appended to the file in guest
//! order; each L2 table is appended when its range ends; at the end come the L1 table, the
//! refcount table and the refcount blocks (sized by a fixed point), and the header is written
//! last. Zero clusters stay unallocated (or, with preallocation, allocated with the zero flag).
//! Memory is bounded: one L2 table, the L1 table, a small write buffer and one refcount block.
use super::header::{CompressionType, Header, INCOMPAT_COMPRESSION, MAGIC};
use super::table::{be_entries, COMPRESSED, COPIED, OFFSET_MASK, ZERO};
use super::refblocks::{allocate, RefcountBlocks};
use crate::disk::DiskError;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// How much of the image is allocated up front (qemu's `preallocation=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Preallocation {
    /// Only data clusters are allocated.
    #[default]
    Off,
    /// Every cluster gets a host cluster and L2 entry; the file stays sparse.
    Metadata,
    /// Like metadata, and the file's blocks are allocated too.
    Full,
}

impl Preallocation {
    /// Parses qemu's spelling (`off`, `metadata`, `full`; `falloc` counts as full).
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Preallocation::Off),
            "metadata" => Some(Preallocation::Metadata),
            "full" | "falloc" => Some(Preallocation::Full),
            _ => None,
        }
    }
}

/// Options of the qcow2 writer.
#[derive(Clone, Copy, Debug)]
pub struct WriterOptions {
    /// log2 of the cluster size (default 16 = 64 KiB).
    pub cluster_bits: u32,
    /// Codec recorded in the header for compressed clusters.
    pub compression: CompressionType,
    pub preallocation: Preallocation,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions { cluster_bits: 16, compression: CompressionType::Zlib, preallocation: Preallocation::Off }
    }
}

/// One guest cluster handed to the writer.
#[derive(Clone, Copy, Debug)]
pub enum ClusterWrite<'a> {
    /// Reads as zeros.
    Zero,
    /// Plain bytes (exactly one cluster).
    Plain(&'a [u8]),
    /// A compressed stream that inflates to one cluster.
    Compressed(&'a [u8]),
}

const WRITE_BUFFER: usize = 4 << 20;

/// Writes a qcow2 v3 image front to back.
pub struct Qcow2Writer {
    file: File,
    path: PathBuf,
    opts: WriterOptions,
    cs: u64,
    size: u64,
    clusters: u64,
    next_guest: u64,
    host_end: u64,
    l1: Vec<u64>,
    l2: Vec<u64>,
    l2_index: u64,
    l2_used: bool,
    pending: Vec<u8>,
}

impl Qcow2Writer {
    /// Starts an image of `size` virtual bytes in `file` (created empty by the caller).
    pub fn new(file: File, path: &Path, size: u64, opts: WriterOptions) -> Result<Self, DiskError> {
        if !(9..=21).contains(&opts.cluster_bits) {
            return Err(DiskError::invalid(path, "cluster_size", 1u64 << opts.cluster_bits.min(63), "must be 512 B to 2 MiB"));
        }
        let cs = 1u64 << opts.cluster_bits;
        let l1_size = Header::l1_needed(size, opts.cluster_bits);
        if l1_size * 8 > super::header::MAX_L1_BYTES {
            return Err(DiskError::invalid(path, "size", size, "too large for this cluster size"));
        }
        Ok(Qcow2Writer {
            file,
            path: path.to_path_buf(),
            opts,
            cs,
            size,
            clusters: size.div_ceil(cs),
            next_guest: 0,
            host_end: cs, // cluster 0 is the header's
            l1: vec![0; l1_size as usize],
            l2: vec![0; (cs / 8) as usize],
            l2_index: 0,
            l2_used: false,
            pending: Vec::with_capacity(WRITE_BUFFER),
        })
    }

    /// Guest clusters of the image.
    pub fn clusters(&self) -> u64 {
        self.clusters
    }

    fn io(&self, op: &'static str, e: std::io::Error) -> DiskError {
        DiskError::io(&self.path, op, e)
    }

    fn flush_pending(&mut self) -> Result<(), DiskError> {
        if !self.pending.is_empty() {
            let at = self.host_end - self.pending.len() as u64;
            self.file.write_all_at(&self.pending, at).map_err(|e| self.io("write", e))?;
            self.pending.clear();
        }
        Ok(())
    }

    /// Appends bytes at the end of the host file.
    fn append(&mut self, data: &[u8]) -> Result<(), DiskError> {
        if self.pending.len() + data.len() > WRITE_BUFFER {
            self.flush_pending()?;
        }
        if data.len() >= WRITE_BUFFER / 4 {
            self.flush_pending()?;
            self.file.write_all_at(data, self.host_end).map_err(|e| self.io("write", e))?;
        } else {
            self.pending.extend_from_slice(data);
        }
        self.host_end += data.len() as u64;
        Ok(())
    }

    /// Pads the host file to a cluster boundary; returns the aligned end.
    fn align(&mut self) -> Result<u64, DiskError> {
        let pad = self.host_end.next_multiple_of(self.cs) - self.host_end;
        if pad > 0 {
            if self.pending.is_empty() {
                self.host_end += pad; // a hole: the file is extended at the end
            } else {
                self.pending.resize(self.pending.len() + pad as usize, 0);
                self.host_end += pad;
            }
        }
        Ok(self.host_end)
    }

    /// Moves to the L2 table covering guest cluster `index`, writing the current one out.
    fn switch_l2(&mut self, index: u64) -> Result<(), DiskError> {
        let per = self.cs / 8;
        if index / per == self.l2_index {
            return Ok(());
        }
        if self.l2_used {
            let off = self.align()?;
            let mut bytes = Vec::with_capacity(self.cs as usize);
            for e in &self.l2 {
                bytes.extend_from_slice(&e.to_be_bytes());
            }
            self.append(&bytes)?;
            if let Some(slot) = self.l1.get_mut(self.l2_index as usize) {
                *slot = off | COPIED;
            }
            self.l2.fill(0);
            self.l2_used = false;
        }
        self.l2_index = index / per;
        Ok(())
    }

    fn set_l2(&mut self, index: u64, entry: u64) {
        let per = self.cs / 8;
        if let Some(slot) = self.l2.get_mut((index % per) as usize) {
            *slot = entry;
            self.l2_used = true;
        }
    }

    /// Handles guest clusters before `index` that were never written (zeros).
    fn skip_to(&mut self, index: u64) -> Result<(), DiskError> {
        if self.opts.preallocation != Preallocation::Off {
            while self.next_guest < index {
                let g = self.next_guest;
                self.switch_l2(g)?;
                self.flush_pending()?;
                let off = self.align()?;
                self.host_end += self.cs;
                self.set_l2(g, off | COPIED | ZERO);
                self.next_guest += 1;
            }
        }
        self.next_guest = self.next_guest.max(index);
        Ok(())
    }

    /// Writes guest cluster `index`; indices must ascend.
    pub fn write_cluster(&mut self, index: u64, data: ClusterWrite<'_>) -> Result<(), DiskError> {
        if index < self.next_guest || index >= self.clusters {
            return Err(DiskError::invalid(&self.path, "guest cluster", index, "written out of order or past the end"));
        }
        self.skip_to(index)?;
        match data {
            ClusterWrite::Zero => return self.skip_to(index + 1),
            ClusterWrite::Plain(bytes) => {
                self.switch_l2(index)?;
                let off = self.align()?;
                if bytes.len() as u64 != self.cs {
                    return Err(DiskError::invalid(&self.path, "cluster length", bytes.len(), "must be one cluster"));
                }
                self.append(bytes)?;
                self.set_l2(index, off | COPIED);
            }
            ClusterWrite::Compressed(bytes) => {
                self.switch_l2(index)?;
                let off = self.host_end;
                let len = bytes.len() as u64;
                if len == 0 || len > self.cs {
                    return Err(DiskError::invalid(&self.path, "compressed cluster length", len, "must be 1..cluster size"));
                }
                let x = 62 - (self.opts.cluster_bits - 8);
                let sectors = (off + len - 1) / 512 - off / 512;
                self.append(bytes)?;
                let end = self.host_end.next_multiple_of(512);
                self.pending.resize(self.pending.len() + (end - self.host_end) as usize, 0);
                self.host_end = end;
                self.set_l2(index, COMPRESSED | (sectors << x) | off);
            }
        }
        self.next_guest = index + 1;
        Ok(())
    }

    /// Writes a run of plain clusters starting at guest cluster `first` (a multiple of the
    /// cluster size long, except that the disk's last cluster may be short and is padded).
    pub fn write_plain_run(&mut self, first: u64, data: &[u8]) -> Result<(), DiskError> {
        self.plain_run(first, data.len() as u64, &mut |w, rel, n| w.append(&data[rel as usize..(rel + n) as usize]))
    }

    /// Like [`write_plain_run`](Self::write_plain_run), with the bytes copied from `src` at
    /// `src_off` inside the kernel (`copy_file_range`).
    pub fn copy_plain_run(&mut self, first: u64, src: &File, src_off: u64, len: u64) -> Result<(), DiskError> {
        self.plain_run(first, len, &mut |w, rel, n| {
            w.flush_pending()?;
            crate::convert::copy::copy_range(src, src_off + rel, &w.file, w.host_end, n).map_err(|e| w.io("copy", e))?;
            w.host_end += n;
            Ok(())
        })
    }

    /// Allocates host space for a run of plain clusters without writing it: pushes
    /// `(offset in the run, host offset, length)` pieces that the caller must write (in any
    /// order, from any thread) with `pwrite` on [`file`](Self::file) before `finish`.
    pub fn reserve_plain_run(&mut self, first: u64, len: u64, out: &mut Vec<(u64, u64, u64)>) -> Result<(), DiskError> {
        self.plain_run(first, len, &mut |w, rel, n| {
            w.flush_pending()?;
            out.push((rel, w.host_end, n));
            w.host_end += n;
            Ok(())
        })
    }

    /// The output file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The output file's name.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn plain_run(
        &mut self,
        first: u64,
        len: u64,
        put: &mut dyn FnMut(&mut Self, u64, u64) -> Result<(), DiskError>,
    ) -> Result<(), DiskError> {
        let cs = self.cs;
        let per = cs / 8;
        let mut at = 0u64;
        while at < len {
            let index = first + at / cs;
            self.skip_to(index)?;
            self.switch_l2(index)?;
            // As many clusters as fit in this L2 range, in one piece.
            let n = (len - at).min((per - index % per) * cs);
            let off = self.align()?;
            put(self, at, n)?;
            // A short last cluster is padded with zeros.
            let count = n.div_ceil(cs);
            let pad = count * cs - n;
            if pad > 0 {
                self.append(&vec![0u8; pad as usize])?;
            }
            for i in 0..count {
                self.set_l2(index + i, (off + i * cs) | COPIED);
            }
            self.next_guest = index + count;
            at += n;
        }
        Ok(())
    }

    /// Writes the L2, L1, refcount structures and the header; returns the file.
    pub fn finish(mut self) -> Result<File, DiskError> {
        self.skip_to(self.clusters)?;
        self.switch_l2(u64::MAX - self.cs)?; // writes out the last table
        self.flush_pending()?;
        let cs = self.cs;
        let data_end = self.host_end.div_ceil(cs);
        let l1_clusters = (self.l1.len() as u64 * 8).div_ceil(cs).max(1);
        let base = data_end + l1_clusters;
        let per_block = cs * 8 / 16;
        let (mut rt, mut rb) = (1u64, 1u64);
        loop {
            let total = base + rt + rb;
            let (nrb, nrt) = (total.div_ceil(per_block), (total.div_ceil(per_block) * 8).div_ceil(cs));
            if (nrb, nrt) == (rb, rt) {
                break;
            }
            (rb, rt) = (nrb, nrt);
        }
        let l1_off = data_end * cs;
        let rt_off = base * cs;
        let rb_first = base + rt;
        let total = rb_first + rb;
        // L1.
        let mut bytes = Vec::with_capacity((l1_clusters * cs) as usize);
        for e in &self.l1 {
            bytes.extend_from_slice(&e.to_be_bytes());
        }
        bytes.resize((l1_clusters * cs) as usize, 0);
        self.file.write_all_at(&bytes, l1_off).map_err(|e| self.io("write", e))?;
        // Refcount table.
        let mut table = Vec::with_capacity((rt * cs) as usize);
        for b in 0..rb {
            table.extend_from_slice(&((rb_first + b) * cs).to_be_bytes());
        }
        table.resize((rt * cs) as usize, 0);
        self.file.write_all_at(&table, rt_off).map_err(|e| self.io("write", e))?;
        // Refcount blocks, generated in one ascending pass over every reference.
        let mut blocks = RefcountBlocks::new(&self.file, &self.path, cs, rb_first * cs, rb);
        blocks.add(0, 1)?;
        for &l1e in &self.l1 {
            let l2_off = l1e & OFFSET_MASK;
            if l2_off == 0 {
                continue;
            }
            let mut raw = vec![0u8; cs as usize];
            self.file.read_exact_at(&mut raw, l2_off).map_err(|e| self.io("read back L2", e))?;
            for e in be_entries(&raw) {
                if e & COMPRESSED != 0 {
                    let x = 62 - (self.opts.cluster_bits - 8);
                    let off = e & ((1u64 << x) - 1);
                    let sectors = (e >> x) & ((1u64 << (self.opts.cluster_bits - 8)) - 1);
                    let end = (off / 512 + sectors + 1) * 512;
                    blocks.add(off / cs, (end - 1) / cs - off / cs + 1)?;
                } else if e & OFFSET_MASK != 0 {
                    blocks.add((e & OFFSET_MASK) / cs, 1)?;
                }
            }
            blocks.add(l2_off / cs, 1)?;
        }
        blocks.add(data_end, total - data_end)?;
        blocks.finish()?;
        // Header last.
        let mut h = vec![0u8; 112];
        h[..4].copy_from_slice(&MAGIC);
        let put32 = |h: &mut Vec<u8>, at: usize, v: u32| h[at..at + 4].copy_from_slice(&v.to_be_bytes());
        let put64 = |h: &mut Vec<u8>, at: usize, v: u64| h[at..at + 8].copy_from_slice(&v.to_be_bytes());
        put32(&mut h, 4, 3);
        put32(&mut h, 20, self.opts.cluster_bits);
        put64(&mut h, 24, self.size);
        put32(&mut h, 36, self.l1.len() as u32);
        put64(&mut h, 40, l1_off);
        put64(&mut h, 48, rt_off);
        put32(&mut h, 56, rt as u32);
        if self.opts.compression == CompressionType::Zstd {
            put64(&mut h, 72, INCOMPAT_COMPRESSION);
            h[104] = 1;
        }
        put32(&mut h, 96, 4);
        put32(&mut h, 100, 112);
        h.extend_from_slice(&[0u8; 8]); // end of header extensions
        self.file.write_all_at(&h, 0).map_err(|e| self.io("write header", e))?;
        let len = total * cs;
        if self.opts.preallocation == Preallocation::Full {
            allocate(&self.file, len).map_err(|e| self.io("fallocate", e))?;
        }
        self.file.set_len(len).map_err(|e| self.io("set length", e))?;
        Ok(self.file)
    }
}
