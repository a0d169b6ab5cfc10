//! XFS, read-only: superblock geometry, inodes (v2 and v3), data forks in local, extent
//! and B+tree format, short-form and block/leaf/node directories, symlinks. Enough to
//! read `/etc` and `/boot` of the RHEL family, whose default filesystem this is.

use super::{components, FileKind, FileSystem, FsError, Meta};
use crate::bytes::{field, u16be, u32be, u64be};
use crate::device::Device;

/// v5 read-only-compatible feature bits and their mkfs.xfs names.
pub const RO_COMPAT_NAMES: [(u32, &str); 4] = [(1, "finobt"), (2, "rmapbt"), (4, "reflink"), (8, "inobtcount")];
/// v5 incompatible feature bits and their names.
pub const INCOMPAT_NAMES: [(u32, &str); 9] = [
    (1, "ftype"),
    (2, "sparse"),
    (4, "meta_uuid"),
    (8, "bigtime"),
    (16, "needsrepair"),
    (32, "nrext64"),
    (64, "exchange"),
    (128, "parent"),
    (256, "metadir"),
];

/// The feature names an XFS superblock (its first 512 bytes) sets, as `mkfs.xfs` and
/// `xfs_info` call them: `crc` and the v5 feature bits, or the v4 options.
pub fn features(sb: &[u8]) -> Vec<&'static str> {
    let mut out = Vec::new();
    let named = |bits: u32, names: &[(u32, &'static str)], out: &mut Vec<&'static str>| {
        out.extend(names.iter().filter(|(b, _)| bits & b != 0).map(|(_, n)| *n));
    };
    let features2 = u32be(sb, 200);
    if u16be(sb, 100) & 0xf == 5 {
        out.push("crc");
        named(u32be(sb, 212), &RO_COMPAT_NAMES, &mut out);
        named(u32be(sb, 216), &INCOMPAT_NAMES, &mut out);
    } else {
        let v4 = [(0x200, "ftype"), (0x08, "attr2"), (0x02, "lazy-count"), (0x80, "projid32bit")];
        named(features2, &v4, &mut out);
        if u16be(sb, 100) & 0x1000 != 0 {
            out.push("unwritten");
        }
    }
    out
}

/// Logical byte offset where directory leaf/free blocks start (data blocks lie below).
const DIR_LEAF_OFFSET: u64 = 32 << 30;
/// Most extents collected for one file (bounds memory on corrupt B+trees).
const MAX_EXTENTS: usize = 1 << 20;
/// Directory and symlink size limit.
const MAX_DIR: u64 = 64 << 20;

#[derive(Clone, Copy, Debug)]
struct Extent {
    /// First file block.
    off: u64,
    /// First filesystem block.
    fsb: u64,
    len: u64,
}

struct Inode {
    mode: u16,
    format: u8,
    size: u64,
    /// The data fork bytes inside the inode.
    fork: Vec<u8>,
    nextents: u32,
}

/// An opened XFS filesystem.
pub struct XfsFs {
    dev: Device,
    block: u64,
    agblocks: u64,
    agblklog: u32,
    inopblog: u32,
    inodesize: u64,
    dirblock: u64,
    rootino: u64,
    v5: bool,
    ftype: bool,
}

impl XfsFs {
    /// Reads the superblock of `dev`.
    pub fn open(dev: &Device) -> Result<Self, FsError> {
        let sb = dev.read(0, 512)?;
        let bad = |f: &str, v: u64| FsError::Read {
            device: dev.name.clone(),
            fstype: "xfs",
            path: "/".into(),
            reason: format!("invalid superblock {f} {v}"),
        };
        if field(&sb, 0, 4) != Some(b"XFSB") {
            return Err(bad("magic", u64::from(u32be(&sb, 0))));
        }
        let block = u64::from(u32be(&sb, 4));
        let blocklog = u32::from(*sb.get(120).unwrap_or(&0));
        if !(9..=16).contains(&blocklog) || block != 1 << blocklog {
            return Err(bad("blocksize", block));
        }
        let inodesize = u64::from(u16be(&sb, 104));
        if !(256..=2048).contains(&inodesize) || !inodesize.is_power_of_two() {
            return Err(bad("inodesize", inodesize));
        }
        let (agblklog, inopblog) = (u32::from(*sb.get(124).unwrap_or(&0)), u32::from(*sb.get(123).unwrap_or(&0)));
        if agblklog > 40 || inopblog > 8 || (1u64 << inopblog) * inodesize != block {
            return Err(bad("inopblog", u64::from(inopblog)));
        }
        let dirblklog = u32::from(*sb.get(192).unwrap_or(&0));
        if dirblklog > 6 {
            return Err(bad("dirblklog", u64::from(dirblklog)));
        }
        let v5 = u16be(&sb, 100) & 0xf == 5;
        let ftype = v5 || u32be(&sb, 200) & 0x200 != 0;
        Ok(XfsFs {
            dev: dev.clone(),
            block,
            agblocks: u64::from(u32be(&sb, 84)),
            agblklog,
            inopblog,
            inodesize,
            dirblock: block << dirblklog,
            rootino: u64be(&sb, 56),
            v5,
            ftype,
        })
    }

    fn err(&self, path: &str, reason: impl Into<String>) -> FsError {
        FsError::Read { device: self.dev.name.clone(), fstype: "xfs", path: path.into(), reason: reason.into() }
    }

    /// Byte address of filesystem block `fsb` (AG number in the high bits).
    fn fsb_addr(&self, fsb: u64) -> Option<u64> {
        let ag = fsb >> self.agblklog;
        let agbno = fsb & ((1u64 << self.agblklog) - 1);
        ag.checked_mul(self.agblocks)?.checked_add(agbno)?.checked_mul(self.block)
    }

    fn inode(&self, ino: u64, path: &str) -> Result<Inode, FsError> {
        let ag = ino >> (self.agblklog + self.inopblog);
        let agbno = (ino >> self.inopblog) & ((1u64 << self.agblklog) - 1);
        let idx = ino & ((1u64 << self.inopblog) - 1);
        let addr = ag
            .checked_mul(self.agblocks)
            .and_then(|b| b.checked_add(agbno))
            .and_then(|b| b.checked_mul(self.block))
            .and_then(|b| b.checked_add(idx * self.inodesize))
            .ok_or_else(|| self.err(path, format!("inode {ino} is out of range")))?;
        let d = self.dev.read(addr, self.inodesize as usize)?;
        if field(&d, 0, 2) != Some(b"IN") {
            return Err(self.err(path, format!("inode {ino} has no IN magic")));
        }
        let version = *d.get(4).unwrap_or(&0);
        let lit = if version >= 3 { 176 } else { 100 };
        let forkoff = usize::from(*d.get(82).unwrap_or(&0)) * 8;
        let end = if forkoff == 0 { d.len() } else { (lit + forkoff).min(d.len()) };
        Ok(Inode {
            mode: u16be(&d, 2),
            format: *d.get(5).unwrap_or(&0),
            size: u64be(&d, 56),
            fork: d.get(lit..end).unwrap_or_default().to_vec(),
            nextents: u32be(&d, 76),
        })
    }

    /// The extent list of an extent- or B+tree-format fork.
    fn extents(&self, ino: &Inode, path: &str) -> Result<Vec<Extent>, FsError> {
        let mut out = Vec::new();
        match ino.format {
            2 => {
                let n = (ino.nextents as usize).min(ino.fork.len() / 16);
                recs(&ino.fork, n, &mut out);
            }
            3 => {
                let level = u16be(&ino.fork, 0);
                let n = usize::from(u16be(&ino.fork, 2));
                let maxrecs = (ino.fork.len().saturating_sub(4)) / 16;
                if n > maxrecs || level == 0 {
                    return Err(self.err(path, format!("bmap root with {n} records at level {level}")));
                }
                for i in 0..n {
                    let ptr = u64be(&ino.fork, 4 + maxrecs * 8 + i * 8);
                    self.bmbt(ptr, level - 1, &mut out, path)?;
                }
            }
            f => return Err(self.err(path, format!("data fork format {f} has no extents"))),
        }
        Ok(out)
    }

    fn bmbt(&self, fsb: u64, level: u16, out: &mut Vec<Extent>, path: &str) -> Result<(), FsError> {
        if out.len() > MAX_EXTENTS || level > 8 {
            return Err(self.err(path, "bmap B+tree too large"));
        }
        let addr = self.fsb_addr(fsb).ok_or_else(|| self.err(path, format!("bmap block {fsb} out of range")))?;
        let b = self.dev.read(addr, self.block as usize)?;
        let magic = field(&b, 0, 4).unwrap_or_default();
        if magic != b"BMAP" && magic != b"BMA3" {
            return Err(self.err(path, format!("bmap block {fsb} has bad magic")));
        }
        let hdr = if magic == b"BMA3" { 72 } else { 24 };
        let n = usize::from(u16be(&b, 6));
        let body = b.get(hdr..).unwrap_or_default();
        if u16be(&b, 4) == 0 {
            recs(body, n.min(body.len() / 16), out);
            return Ok(());
        }
        let maxrecs = body.len() / 16;
        for i in 0..n.min(maxrecs) {
            self.bmbt(u64be(body, maxrecs * 8 + i * 8), level.saturating_sub(1), out, path)?;
        }
        Ok(())
    }

    /// Reads file bytes `[0, want)` through the extent map (holes read as zeros).
    fn read_data(&self, ino: &Inode, want: u64, path: &str) -> Result<Vec<u8>, FsError> {
        if ino.format == 1 {
            let n = (want as usize).min(ino.fork.len());
            return Ok(ino.fork.get(..n).unwrap_or_default().to_vec());
        }
        let exts = self.extents(ino, path)?;
        let mut out = vec![0u8; want as usize];
        for e in exts {
            let start = e.off.saturating_mul(self.block);
            if start >= want {
                continue;
            }
            let len = e.len.saturating_mul(self.block).min(want - start);
            let addr = self.fsb_addr(e.fsb).ok_or_else(|| self.err(path, "extent out of range"))?;
            let dst = out.get_mut(start as usize..(start + len) as usize).unwrap_or_default();
            self.dev.dev.read_at(dst, addr)?;
        }
        Ok(out)
    }

    fn entries(&self, ino: &Inode, path: &str) -> Result<Vec<(String, u64, Option<u8>)>, FsError> {
        if ino.format == 1 {
            return Ok(self.shortform(&ino.fork));
        }
        let mut out = Vec::new();
        let exts = self.extents(ino, path)?;
        for e in exts {
            let start = e.off.saturating_mul(self.block);
            if start >= DIR_LEAF_OFFSET {
                continue;
            }
            let addr = self.fsb_addr(e.fsb).ok_or_else(|| self.err(path, "extent out of range"))?;
            let bytes = e.len.saturating_mul(self.block).min(MAX_DIR);
            let data = self.dev.read(addr, bytes as usize)?;
            for blk in data.chunks(self.dirblock as usize) {
                self.data_block(blk, &mut out);
            }
        }
        Ok(out)
    }

    fn shortform(&self, f: &[u8]) -> Vec<(String, u64, Option<u8>)> {
        let count = usize::from(*f.first().unwrap_or(&0));
        let i8 = *f.get(1).unwrap_or(&0) != 0;
        let isz = if i8 { 8 } else { 4 };
        let mut p = 2 + isz;
        let mut out = Vec::new();
        for _ in 0..count {
            let Some(&n) = f.get(p) else { break };
            let n = usize::from(n);
            let name = String::from_utf8_lossy(field(f, p + 3, n).unwrap_or_default()).into_owned();
            let mut q = p + 3 + n;
            let ft = if self.ftype {
                q += 1;
                f.get(q - 1).copied()
            } else {
                None
            };
            let ino = if i8 { u64be(f, q) } else { u64::from(u32be(f, q)) };
            out.push((name, ino, ft));
            p = q + isz;
        }
        out
    }

    fn data_block(&self, b: &[u8], out: &mut Vec<(String, u64, Option<u8>)>) {
        let magic = field(b, 0, 4).unwrap_or_default();
        let (hdr, block_fmt) = match magic {
            b"XD2B" => (16, true),
            b"XD2D" => (16, false),
            b"XDB3" => (64, true),
            b"XDD3" => (64, false),
            _ => return,
        };
        let mut end = b.len();
        if block_fmt {
            let count = u32be(b, b.len().saturating_sub(8)) as usize;
            end = b.len().saturating_sub(8).saturating_sub(count.saturating_mul(8));
        }
        let mut p = hdr;
        while p + 8 <= end {
            if u16be(b, p) == 0xffff {
                let len = usize::from(u16be(b, p + 2));
                if len < 8 {
                    return;
                }
                p += len;
                continue;
            }
            let ino = u64be(b, p);
            let n = usize::from(*b.get(p + 8).unwrap_or(&0));
            let name = String::from_utf8_lossy(field(b, p + 9, n).unwrap_or_default()).into_owned();
            let ft = if self.ftype { b.get(p + 9 + n).copied() } else { None };
            let len = (8 + 1 + n + usize::from(self.ftype) + 2 + 7) & !7;
            if name != "." && name != ".." {
                out.push((name, ino, ft));
            }
            p += len;
        }
    }

    fn lookup(&self, path: &str) -> Result<Option<Inode>, FsError> {
        let mut ino = self.inode(self.rootino, path)?;
        for name in components(path) {
            if FileKind::from_mode(ino.mode) != FileKind::Dir {
                return Ok(None);
            }
            let Some((_, n, _)) = self.entries(&ino, path)?.into_iter().find(|(e, _, _)| e == name) else {
                return Ok(None);
            };
            ino = self.inode(n, path)?;
        }
        Ok(Some(ino))
    }
}

/// Decodes `n` packed 128-bit extent records.
fn recs(b: &[u8], n: usize, out: &mut Vec<Extent>) {
    for i in 0..n {
        if out.len() >= MAX_EXTENTS {
            return;
        }
        let (hi, lo) = (u64be(b, i * 16), u64be(b, i * 16 + 8));
        let off = (hi & ((1 << 63) - 1)) >> 9;
        let fsb = ((hi & 0x1ff) << 43) | (lo >> 21);
        let len = lo & 0x1f_ffff;
        if hi >> 63 == 0 {
            out.push(Extent { off, fsb, len });
        }
    }
}

impl FileSystem for XfsFs {
    fn device(&self) -> &str {
        &self.dev.name
    }

    fn metadata(&self, path: &str) -> Result<Option<Meta>, FsError> {
        Ok(self.lookup(path)?.map(|i| Meta { kind: FileKind::from_mode(i.mode), size: i.size }))
    }

    fn read_dir(&self, path: &str) -> Result<Vec<(String, FileKind)>, FsError> {
        let ino = self.lookup(path)?.ok_or_else(|| self.err(path, "no such directory"))?;
        if FileKind::from_mode(ino.mode) != FileKind::Dir {
            return Err(self.err(path, "not a directory"));
        }
        let mut out = Vec::new();
        for (name, n, ft) in self.entries(&ino, path)? {
            let k = match ft {
                Some(t) => FileKind::from_dirent_type(t),
                None => self.inode(n, path).map(|i| FileKind::from_mode(i.mode)).unwrap_or(FileKind::Other),
            };
            out.push((name, k));
        }
        Ok(out)
    }

    fn read_link(&self, path: &str) -> Result<String, FsError> {
        let ino = self.lookup(path)?.ok_or_else(|| self.err(path, "no such symlink"))?;
        if FileKind::from_mode(ino.mode) != FileKind::Symlink || ino.size > 4096 {
            return Err(self.err(path, "not a symlink"));
        }
        let mut b = self.read_data(&ino, if ino.format == 1 { ino.size } else { self.block }, path)?;
        if ino.format != 1 && self.v5 {
            // Remote symlink blocks carry a 56-byte "XSLM" header on v5.
            b = b.get(56..).unwrap_or_default().to_vec();
        }
        b.truncate(ino.size as usize);
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    fn read_head(&self, path: &str, max: u64) -> Result<Vec<u8>, FsError> {
        let ino = self.lookup(path)?.ok_or_else(|| self.err(path, "no such file"))?;
        if FileKind::from_mode(ino.mode) != FileKind::File {
            return Err(self.err(path, "not a regular file"));
        }
        self.read_data(&ino, ino.size.min(max).min(1 << 30), path)
    }
}
