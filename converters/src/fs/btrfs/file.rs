//! File data: reading `EXTENT_DATA` items (inline, regular, prealloc, holes; zlib, lzo,
//! zstd), dropping them (each regular extent's data ref released; the extent and its
//! checksums go when its last ref does), and writing new contents: inline up to the kernel's
//! default `max_inline` (2048 bytes; less with 4 KiB nodes: an item takes at most half a
//! leaf), else regular extents with per-sector checksums in the
//! filesystem's algorithm (none for `NODATASUM` inodes).

use super::inode::{Patch, FLAG_NODATASUM};
use super::tree::{key, ITEM_SIZE};
use super::{Core, Error, Loc};
use crate::fs::PathProblem;
use btrfs_disk::items::{CompressionType, FileExtentItem};
use btrfs_disk::superblock::ChecksumType;

pub const EXTENT_DATA: u8 = 108;
const EXTENT_CSUM: u8 = 128;
const CSUM_TREE: u64 = 7;
const CSUM_OBJECTID: u64 = -10i64 as u64;
/// The kernel's default `max_inline` mount option.
const MAX_INLINE: usize = 2048;
/// Largest extent one write makes (the kernel's max for uncompressed is 128 MiB; 1 MiB keeps
/// each checksum run short).
const MAX_EXTENT: usize = 1 << 20;
/// A compressed extent's bound (the kernel's is 128 KiB).
const MAX_COMPRESSED: u64 = 128 << 10;

/// One `EXTENT_DATA` item.
#[derive(Clone, Copy, Debug)]
pub struct Extent {
    pub file_off: u64,
    pub kind: u8,
    pub compression: u8,
    pub ram_bytes: u64,
    pub disk_bytenr: u64,
    pub disk_num_bytes: u64,
    pub offset: u64,
    pub num_bytes: u64,
}

fn parse(file_off: u64, d: &[u8]) -> Result<(Extent, &[u8]), Error> {
    let u = |o| super::inode::u64_at(d, o);
    if d.len() < 21 {
        return Err(Error::Corrupt(format!("file extent at {file_off} of {} bytes", d.len())));
    }
    let mut e = Extent { file_off, kind: d[20], compression: d[16], ram_bytes: u(8), disk_bytenr: 0, disk_num_bytes: 0, offset: 0, num_bytes: 0 };
    if d[17] != 0 || d[18] != 0 || d[19] != 0 {
        return Err(Error::Unsupported("encrypted or encoded file extents".into()));
    }
    match e.kind {
        0 => Ok((e, &d[21..])),
        1 | 2 if d.len() >= 53 => {
            (e.disk_bytenr, e.disk_num_bytes, e.offset, e.num_bytes) = (u(21), u(29), u(37), u(45));
            Ok((e, &[]))
        }
        k => Err(Error::Corrupt(format!("file extent at {file_off}: type {k} in {} bytes", d.len()))),
    }
}

impl Core<'_> {
    pub(super) fn extents(&mut self, at: Loc) -> Result<Vec<(Extent, Vec<u8>)>, Error> {
        let mut out = Vec::new();
        for (k, d) in self.range(at.tree, key(at.ino, EXTENT_DATA, 0), key(at.ino, EXTENT_DATA, u64::MAX))? {
            let (e, inline) = parse(k.offset, &d)?;
            out.push((e, inline.to_vec()));
        }
        Ok(out)
    }

    /// The first `size` bytes of the file (its i_size), refusing more than `max`.
    pub(super) fn read_data(&mut self, at: Loc, size: u64, max: u64) -> Result<Vec<u8>, Error> {
        if size > max {
            return Err(Error::Path(PathProblem::TooLarge));
        }
        let len = usize::try_from(size).map_err(|_| Error::Path(PathProblem::TooLarge))?;
        let mut out = vec![0u8; len];
        let sectorsize = self.fs.sectorsize;
        for (e, inline) in self.extents(at)? {
            if e.file_off >= size {
                continue;
            }
            let room = (size - e.file_off) as usize;
            let bytes = match (e.kind, e.compression) {
                (0, 0) => inline,
                (0, c) => ferry_inspectors::fs::btrfs_decompress(c, &inline, e.ram_bytes.min(size), sectorsize).map_err(Error::Corrupt)?,
                (2, _) => continue,
                (_, _) if e.disk_bytenr == 0 => continue,
                (_, 0) => {
                    let n = e.num_bytes.min(room as u64) as usize;
                    let at = e.disk_bytenr.checked_add(e.offset).ok_or_else(|| Error::Corrupt(format!("extent at {} past 2^64", e.disk_bytenr)))?;
                    self.fs.reader_mut().read_data(at, n)?
                }
                (_, c) => {
                    if e.disk_num_bytes > MAX_COMPRESSED || e.ram_bytes > MAX_COMPRESSED {
                        return Err(Error::Corrupt(format!("compressed extent at {} of {}/{} bytes", e.disk_bytenr, e.disk_num_bytes, e.ram_bytes)));
                    }
                    let raw = self.fs.reader_mut().read_data(e.disk_bytenr, e.disk_num_bytes as usize)?;
                    let plain = ferry_inspectors::fs::btrfs_decompress(c, &raw, e.ram_bytes, sectorsize).map_err(Error::Corrupt)?;
                    let from = (e.offset as usize).min(plain.len());
                    let to = from.saturating_add(e.num_bytes as usize).min(plain.len());
                    plain[from..to].to_vec()
                }
            };
            let n = bytes.len().min(room);
            let start = e.file_off as usize;
            out[start..start + n].copy_from_slice(&bytes[..n]);
        }
        Ok(out)
    }

    /// Removes every extent of the file, releasing its data refs.
    pub(super) fn drop_extents(&mut self, at: Loc) -> Result<(), Error> {
        let exts = self.extents(at)?;
        self.begin()?;
        if self.csum_type != ChecksumType::Crc32 {
            if let Some((e, _)) = exts.iter().find(|(e, _)| e.kind != 0 && e.disk_bytenr != 0 && !self.fresh.contains_key(&e.disk_bytenr)) {
                return Err(Error::Unsupported(format!(
                    "freeing the data extent at {} on a {} filesystem (btrfs-transaction 0.13 trims data checksums as 4-byte CRC32C)",
                    e.disk_bytenr,
                    csum_name(self.csum_type)
                )));
            }
        }
        for (e, _) in &exts {
            if e.kind != 0 && e.disk_bytenr != 0 {
                self.release(at, e)?;
            }
            self.delete(at.tree, key(at.ino, EXTENT_DATA, e.file_off))?;
        }
        Ok(())
    }

    fn release(&mut self, at: Loc, e: &Extent) -> Result<(), Error> {
        let owner_off = e.file_off.wrapping_sub(e.offset);
        if let Some(keys) = self.fresh.remove(&e.disk_bytenr) {
            // Written in this transaction: its +1 ref cancels against this -1 and never
            // reaches the extent tree, so its checksums go here.
            for k in keys {
                self.delete(CSUM_TREE, key(CSUM_OBJECTID, EXTENT_CSUM, k))?;
            }
        }
        if let Some(tx) = self.tx.as_mut() {
            tx.delayed_refs.drop_data_ref(e.disk_bytenr, e.disk_num_bytes, at.tree, at.ino, owner_off, 1);
        }
        Ok(())
    }

    /// Replaces the file's contents with `data`.
    pub(super) fn write_data(&mut self, at: Loc, data: &[u8]) -> Result<(), Error> {
        let ino = self.inode(at.tree, at.ino)?.ok_or(Error::Path(PathProblem::NotFound))?;
        self.drop_extents(at)?;
        let transid = self.transid()?;
        let ss = u64::from(self.fs.sectorsize);
        let mut nbytes = 0u64;
        // The crate's cap, and half a leaf (what `insert` takes) with the item and extent headers.
        let cap = btrfs_transaction::transaction::max_inline_data_size(self.fs.sectorsize, self.fs.nodesize).min((self.fs.nodesize as usize / 2).saturating_sub(ITEM_SIZE + 21));
        if !data.is_empty() && data.len() <= MAX_INLINE.min(cap) {
            let mut item = Vec::with_capacity(21 + data.len());
            item.extend_from_slice(&transid.to_le_bytes());
            item.extend_from_slice(&(data.len() as u64).to_le_bytes());
            item.extend_from_slice(&[0, 0, 0, 0, 0]);
            item.extend_from_slice(data);
            self.insert(at.tree, key(at.ino, EXTENT_DATA, 0), &item)?;
            nbytes = data.len() as u64;
        } else if !data.is_empty() {
            for (i, chunk) in data.chunks(MAX_EXTENT).enumerate() {
                let off = (i * MAX_EXTENT) as u64;
                let aligned = (chunk.len() as u64).div_ceil(ss) * ss;
                let (tx, fs) = self.parts()?;
                let logical = tx.alloc_data_extent(fs, chunk, at.tree, at.ino, off)?;
                let item = FileExtentItem::to_bytes_regular(transid, aligned, CompressionType::None, false, logical, aligned, 0, aligned);
                self.insert(at.tree, key(at.ino, EXTENT_DATA, off), &item)?;
                let keys = if ino.flags & FLAG_NODATASUM == 0 { self.insert_csums(logical, chunk)? } else { Vec::new() };
                self.fresh.insert(logical, keys);
                nbytes += aligned;
            }
        }
        self.patch_inode(at.tree, at.ino, &Patch { size: Some(data.len() as u64), nbytes: Some(nbytes), mtime: true, ..Patch::default() })
    }

    /// Checksums of `data` (zero-padded to whole sectors) at `logical`, in items that fit a
    /// leaf; returns their keys' offsets.
    fn insert_csums(&mut self, logical: u64, data: &[u8]) -> Result<Vec<u64>, Error> {
        let ss = self.fs.sectorsize as usize;
        let size = self.csum_type.size();
        let per_item = ((self.fs.nodesize as usize / 2).saturating_sub(2 * ITEM_SIZE) / size).max(1);
        let mut sums = Vec::with_capacity(data.len().div_ceil(ss) * size);
        let mut sector = vec![0u8; ss];
        for s in data.chunks(ss) {
            sector[..s.len()].copy_from_slice(s);
            sector[s.len()..].fill(0);
            sums.extend_from_slice(&self.csum_type.compute(&sector)[..size]);
        }
        let mut keys = Vec::new();
        for (i, run) in sums.chunks(per_item * size).enumerate() {
            let at = logical + (i * per_item * ss) as u64;
            self.insert(CSUM_TREE, key(CSUM_OBJECTID, EXTENT_CSUM, at), run)?;
            keys.push(at);
        }
        Ok(keys)
    }
}

pub fn csum_name(c: ChecksumType) -> &'static str {
    match c {
        ChecksumType::Crc32 => "crc32c",
        ChecksumType::Xxhash => "xxhash64",
        ChecksumType::Sha256 => "sha256",
        ChecksumType::Blake2 => "blake2b",
        ChecksumType::Unknown(_) => "unknown-checksum",
    }
}
