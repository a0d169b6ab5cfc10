//! On-disk inodes: the v2 core (v4 filesystems) and the v3 core (v5: CRC, self-describing,
//! bigtime and nrext64 fields), their fork layout, and in-place updates.

use super::bytes::{be16, be32, be64, byte, crc_ok, set16, set32, set64, set_crc};
use super::Xfs;
use crate::fs::FsError;

/// Inode core sizes: the literal area (forks) follows.
const CORE_V2: usize = 100;
const CORE_V3: usize = 176;
pub const INODE_CRC: usize = 100;

/// Data fork formats.
pub const FMT_LOCAL: u8 = 1;
pub const FMT_EXTENTS: u8 = 2;
pub const FMT_BTREE: u8 = 3;

// di_flags2 bits.
const FL2_REFLINK: u64 = 1 << 1;
const FL2_BIGTIME: u64 = 1 << 3;
const FL2_NREXT64: u64 = 1 << 4;
/// di_flags: file data on the realtime device.
const FL_REALTIME: u16 = 1;

/// Timestamp fields.
pub const ATIME: usize = 32;
pub const MTIME: usize = 40;
pub const CTIME: usize = 48;
/// v3 creation time.
const CRTIME: usize = 144;
/// Seconds between the bigtime epoch (the earliest 32-bit time) and the Unix epoch.
const BIGTIME_OFFSET: i64 = 1 << 31;

/// The packed 128-bit bmbt record of `e`.
pub fn pack_extent(e: &super::bmap::Extent) -> (u64, u64) {
    let l0 = (u64::from(e.unwritten) << 63) | ((e.off & ((1 << 54) - 1)) << 9) | (e.fsb >> 43);
    let l1 = (e.fsb << 21) | (e.len & ((1 << 21) - 1));
    (l0, l1)
}

/// What kind of object an inode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Directory,
    Symlink,
    /// Device node, FIFO or socket.
    Other,
}

impl FileKind {
    pub fn from_mode(mode: u16) -> Self {
        match mode & 0o170000 {
            0o100000 => FileKind::Regular,
            0o040000 => FileKind::Directory,
            0o120000 => FileKind::Symlink,
            _ => FileKind::Other,
        }
    }
}

/// One inode as stored (the whole `inodesize` bytes), and where it lives.
#[derive(Clone, Debug)]
pub struct Inode {
    pub ino: u64,
    pub raw: Vec<u8>,
}

impl Inode {
    pub fn mode(&self) -> u16 {
        be16(&self.raw, 2)
    }
    pub fn kind(&self) -> FileKind {
        FileKind::from_mode(self.mode())
    }
    fn version(&self) -> u8 {
        byte(&self.raw, 4)
    }
    pub fn format(&self) -> u8 {
        byte(&self.raw, 5)
    }
    pub fn uid(&self) -> u32 {
        be32(&self.raw, 8)
    }
    pub fn gid(&self) -> u32 {
        be32(&self.raw, 12)
    }
    pub fn nlink(&self) -> u32 {
        if self.version() == 1 {
            u32::from(be16(&self.raw, 6))
        } else {
            be32(&self.raw, 16)
        }
    }
    pub fn size(&self) -> u64 {
        be64(&self.raw, 56)
    }
    fn flags2(&self) -> u64 {
        if self.version() >= 3 {
            be64(&self.raw, 120)
        } else {
            0
        }
    }
    pub fn reflinked(&self) -> bool {
        self.flags2() & FL2_REFLINK != 0
    }
    /// Sets or clears the REFLINK flag (v3 inodes only have it).
    pub fn set_reflinked(&mut self, on: bool) {
        if self.version() >= 3 {
            let f = self.flags2();
            set64(&mut self.raw, 120, if on { f | FL2_REFLINK } else { f & !FL2_REFLINK });
        }
    }
    pub fn realtime(&self) -> bool {
        be16(&self.raw, 90) & FL_REALTIME != 0
    }
    /// Data fork extent count.
    pub fn nextents(&self) -> u64 {
        if self.flags2() & FL2_NREXT64 != 0 {
            be64(&self.raw, 24)
        } else {
            u64::from(be32(&self.raw, 76))
        }
    }
    /// Attribute fork extent count.
    pub fn anextents(&self) -> u64 {
        if self.flags2() & FL2_NREXT64 != 0 {
            u64::from(be32(&self.raw, 76))
        } else {
            u64::from(be16(&self.raw, 80))
        }
    }
    /// Attribute fork format (meaningful only when [`Inode::attr_fork`] is not empty).
    pub fn aformat(&self) -> u8 {
        byte(&self.raw, 83)
    }
    /// The attribute fork's bytes inside the inode (empty without one).
    pub fn attr_fork(&self) -> &[u8] {
        let lit = if self.version() >= 3 { CORE_V3 } else { CORE_V2 };
        match usize::from(byte(&self.raw, 82)) * 8 {
            0 => &[],
            off => self.raw.get(lit + off..).unwrap_or(&[]),
        }
    }
    /// The data fork's bytes inside the inode.
    pub fn data_fork(&self) -> &[u8] {
        let lit = if self.version() >= 3 { CORE_V3 } else { CORE_V2 };
        let forkoff = usize::from(byte(&self.raw, 82)) * 8;
        let end = if forkoff == 0 { self.raw.len() } else { (lit + forkoff).min(self.raw.len()) };
        self.raw.get(lit..end).unwrap_or(&[])
    }

    /// Seconds of the timestamp at `off`.
    pub fn time(&self, off: usize) -> i64 {
        if self.flags2() & FL2_BIGTIME != 0 {
            (be64(&self.raw, off) / 1_000_000_000) as i64 - BIGTIME_OFFSET
        } else {
            i64::from(be32(&self.raw, off) as i32)
        }
    }

    pub fn set_time(&mut self, off: usize, secs: i64, nsec: u32) {
        if self.flags2() & FL2_BIGTIME != 0 {
            let t = (secs.saturating_add(BIGTIME_OFFSET)).max(0) as u64;
            set64(&mut self.raw, off, t.saturating_mul(1_000_000_000).saturating_add(u64::from(nsec)));
        } else {
            set32(&mut self.raw, off, secs.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32 as u32);
            set32(&mut self.raw, off + 4, nsec);
        }
    }

    pub fn set_mode(&mut self, mode: u16) {
        set16(&mut self.raw, 2, mode);
    }
    pub fn set_owner(&mut self, uid: u32, gid: u32) {
        set32(&mut self.raw, 8, uid);
        set32(&mut self.raw, 12, gid);
    }
    pub fn set_size(&mut self, size: u64) {
        set64(&mut self.raw, 56, size);
    }
    /// Stores `data` as the data fork in local format (shortform directory, inline
    /// symlink), with the size; the rest of the fork is zeroed.
    pub fn set_local_data(&mut self, data: &[u8]) {
        let lit = if self.version() >= 3 { CORE_V3 } else { CORE_V2 };
        let len = self.data_fork().len();
        if let Some(fork) = self.raw.get_mut(lit..lit + len) {
            fork.fill(0);
            let n = data.len().min(len);
            fork[..n].copy_from_slice(&data[..n]);
        }
        if let Some(f) = self.raw.get_mut(5) {
            *f = FMT_LOCAL;
        }
        self.set_size(data.len() as u64);
        if self.flags2() & FL2_NREXT64 != 0 {
            set64(&mut self.raw, 24, 0);
        } else {
            set32(&mut self.raw, 76, 0);
        }
    }
    /// Stores `root` (a bmbt root, the fork's size) as the data fork in btree format with
    /// `nextents` extents.
    pub fn set_btree_root(&mut self, root: &[u8], nextents: u64) {
        let lit = if self.version() >= 3 { CORE_V3 } else { CORE_V2 };
        let len = self.data_fork().len();
        if let Some(fork) = self.raw.get_mut(lit..lit + len) {
            let n = root.len().min(len);
            fork[..n].copy_from_slice(&root[..n]);
        }
        if let Some(f) = self.raw.get_mut(5) {
            *f = FMT_BTREE;
        }
        if self.flags2() & FL2_NREXT64 != 0 {
            set64(&mut self.raw, 24, nextents);
        } else {
            set32(&mut self.raw, 76, nextents as u32);
        }
    }

    /// Gives an inode without an attribute fork a shortform one holding the one attribute
    /// `name` = `value` (namespace `flags`), placed at the end of the literal area so the data
    /// fork keeps the rest (dynamic fork offset: attr2). False, nothing changed, when the
    /// inode has a fork already, the name or value is over 255 bytes, or fewer than 64 bytes
    /// would be left to the data fork.
    pub fn set_local_attr(&mut self, flags: u8, name: &[u8], value: &[u8]) -> bool {
        let lit = if self.version() >= 3 { CORE_V3 } else { CORE_V2 };
        let (Ok(nlen), Ok(vlen)) = (u8::try_from(name.len()), u8::try_from(value.len())) else { return false };
        let total = 4 + 3 + name.len() + value.len();
        let room = self.raw.len().saturating_sub(lit);
        let fork = total.div_ceil(8) * 8;
        if byte(&self.raw, 82) != 0 || name.is_empty() || room < fork + 64 {
            return false;
        }
        let forkoff = (room - fork) / 8;
        let Ok(forkoff_byte) = u8::try_from(forkoff) else { return false };
        let at = lit + forkoff * 8;
        let a = &mut self.raw[at..];
        a.fill(0);
        set16(a, 0, total as u16);
        a[2] = 1;
        a[4] = nlen;
        a[5] = vlen;
        a[6] = flags;
        a[7..7 + name.len()].copy_from_slice(name);
        a[7 + name.len()..total].copy_from_slice(value);
        self.raw[82] = forkoff_byte;
        self.raw[83] = FMT_LOCAL;
        true
    }

    /// Makes the attribute fork a shortform one holding `sf` (header and entries): in place
    /// when the inode has a shortform fork it fits in, else at a fork offset moved down so it
    /// fits, as long as the data fork's contents (local bytes, or its extent records) still
    /// fit before it. False, nothing changed, otherwise: a btree data fork (its root's layout
    /// follows the fork size), attributes in blocks, fewer than 64 bytes left to the data
    /// fork.
    pub fn set_attr_sf(&mut self, sf: &[u8]) -> bool {
        let lit = if self.version() >= 3 { CORE_V3 } else { CORE_V2 };
        let off = usize::from(byte(&self.raw, 82)) * 8;
        if off != 0 && self.aformat() != FMT_LOCAL {
            return false;
        }
        if off != 0 {
            if let Some(a) = self.raw.get_mut(lit + off..).filter(|a| sf.len() <= a.len()) {
                a.fill(0);
                a[..sf.len()].copy_from_slice(sf);
                return true;
            }
        }
        let room = self.raw.len().saturating_sub(lit);
        let fork = sf.len().div_ceil(8) * 8;
        let used = match self.format() {
            FMT_LOCAL => usize::try_from(self.size()).unwrap_or(usize::MAX),
            FMT_EXTENTS => usize::try_from(self.nextents()).unwrap_or(usize::MAX).saturating_mul(16),
            0 => 8,
            _ => usize::MAX,
        };
        if room < fork + 64.max(used) {
            return false;
        }
        let forkoff = (room - fork) / 8;
        let Ok(forkoff_byte) = u8::try_from(forkoff) else { return false };
        let at = lit + forkoff * 8;
        let a = &mut self.raw[at..];
        a.fill(0);
        a[..sf.len()].copy_from_slice(sf);
        self.raw[82] = forkoff_byte;
        self.raw[83] = FMT_LOCAL;
        true
    }

    /// Drops the attribute fork (its bytes, offset and extent count).
    pub fn clear_attr_fork(&mut self) {
        let lit = if self.version() >= 3 { CORE_V3 } else { CORE_V2 };
        let off = usize::from(byte(&self.raw, 82)) * 8;
        if off > 0 {
            if let Some(a) = self.raw.get_mut(lit + off..) {
                a.fill(0);
            }
        }
        if let Some(f) = self.raw.get_mut(82..84) {
            f.copy_from_slice(&[0, FMT_EXTENTS]);
        }
        if self.flags2() & FL2_NREXT64 != 0 {
            set32(&mut self.raw, 76, 0);
        } else {
            set16(&mut self.raw, 80, 0);
        }
    }
    pub fn set_nlink(&mut self, n: u32) {
        if self.version() == 1 {
            set16(&mut self.raw, 6, n.min(u32::from(u16::MAX)) as u16);
        } else {
            set32(&mut self.raw, 16, n);
        }
    }
    /// The generation number.
    pub fn generation(&self) -> u32 {
        be32(&self.raw, 92)
    }
    /// Blocks the inode holds (data, attribute and bmbt blocks).
    pub fn nblocks(&self) -> u64 {
        be64(&self.raw, 64)
    }
    pub fn set_nblocks(&mut self, n: u64) {
        set64(&mut self.raw, 64, n);
    }
    /// Extent records the data fork holds inline.
    pub fn data_fork_slots(&self) -> usize {
        self.data_fork().len() / 16
    }
    /// Stores `ext` as the data fork in extents format (at most [`Inode::data_fork_slots`]),
    /// with the extent count; the rest of the fork is zeroed.
    pub fn set_data_extents(&mut self, ext: &[super::bmap::Extent]) {
        let lit = if self.version() >= 3 { CORE_V3 } else { CORE_V2 };
        let len = self.data_fork().len();
        if let Some(fork) = self.raw.get_mut(lit..lit + len) {
            fork.fill(0);
            for (k, e) in ext.iter().take(len / 16).enumerate() {
                let (l0, l1) = pack_extent(e);
                set64(fork, k * 16, l0);
                set64(fork, k * 16 + 8, l1);
            }
        }
        if let Some(f) = self.raw.get_mut(5) {
            *f = FMT_EXTENTS;
        }
        let n = ext.len().min(len / 16) as u64;
        if self.flags2() & FL2_NREXT64 != 0 {
            set64(&mut self.raw, 24, n);
        } else {
            set32(&mut self.raw, 76, n as u32);
        }
    }
    /// Marks a change (ctime now, and the v3 change counter).
    pub fn touch_ctime(&mut self) {
        let (s, ns) = super::now();
        self.set_time(CTIME, s, ns);
        if self.version() >= 3 {
            let c = be64(&self.raw, 104).wrapping_add(1);
            set64(&mut self.raw, 104, c);
        }
    }
}

impl Xfs<'_> {
    /// Byte offset of inode `ino`.
    fn inode_byte(&self, ino: u64) -> Result<u64, FsError> {
        let sb = &self.sb;
        let ag = ino >> (sb.agblklog + sb.inopblog);
        let agbno = (ino >> sb.inopblog) & ((1u64 << sb.agblklog) - 1);
        let idx = ino & ((1u64 << sb.inopblog) - 1);
        if ino == 0 || ag >= sb.agcount || agbno >= sb.ag_len(ag) {
            return Err(self.invalid("inode number", ino, "outside the filesystem"));
        }
        Ok((ag * sb.agblocks + agbno) * sb.block + idx * sb.inodesize)
    }

    /// Reads and validates inode `ino`.
    pub(super) fn read_inode(&self, ino: u64) -> Result<Inode, FsError> {
        let mut raw = vec![0u8; self.sb.inodesize as usize];
        self.vol.read(&mut raw, self.inode_byte(ino)?, &self.name)?;
        let field = |f: &str| format!("inode {ino} {f}");
        if raw.get(0..2) != Some(b"IN") {
            return Err(self.invalid(&field("magic"), format!("{:#06x}", be16(&raw, 0)), "not an inode"));
        }
        let version = byte(&raw, 4);
        let ok = if self.sb.v5 { version == 3 } else { version == 1 || version == 2 };
        if !ok {
            return Err(self.invalid(&field("version"), version, format!("not used on XFS {}", self.version())));
        }
        if version == 3 {
            if !crc_ok(&raw, INODE_CRC) {
                return Err(self.invalid(&field("crc"), format!("{:#010x}", be32(&raw, INODE_CRC)), "checksum mismatch"));
            }
            if be64(&raw, 152) != ino {
                return Err(self.invalid(&field("di_ino"), be64(&raw, 152), "not this inode's number"));
            }
            if raw.get(160..176) != Some(&self.sb.meta_uuid[..]) {
                return Err(self.invalid(&field("uuid"), "", "not this filesystem's"));
            }
        }
        let forkoff = usize::from(byte(&raw, 82)) * 8;
        let core = if version == 3 { CORE_V3 } else { CORE_V2 };
        if core + forkoff > raw.len() {
            return Err(self.invalid(&field("forkoff"), byte(&raw, 82), "past the end of the inode"));
        }
        let ino = Inode { ino, raw };
        if ino.realtime() {
            return Err(self.unsupported(format!("inode {}: realtime file", ino.ino)));
        }
        Ok(ino)
    }

    /// A fresh inode `ino` (which the inobt says is free): v2 core on v4, v3 on v5 (CRC,
    /// UUID, number, creation time, bigtime/nrext64 as the superblock enables), empty
    /// extents-format data fork, no attribute fork, the generation after the one on disk,
    /// times now, one link.
    pub(super) fn new_inode(&self, ino: u64, mode: u16, uid: u32, gid: u32) -> Result<Inode, FsError> {
        let at = self.inode_byte(ino)?;
        let mut old = vec![0u8; self.sb.inodesize as usize];
        self.vol.read(&mut old, at, &self.name)?;
        let gen = if old.get(0..2) == Some(b"IN") { be32(&old, 92).wrapping_add(1) } else { 1 };
        let mut raw = vec![0u8; self.sb.inodesize as usize];
        raw[0..2].copy_from_slice(b"IN");
        set16(&mut raw, 2, mode);
        raw[4] = if self.sb.v5 { 3 } else { 2 };
        raw[5] = FMT_EXTENTS;
        raw[83] = FMT_EXTENTS;
        set32(&mut raw, 92, gen);
        set32(&mut raw, 96, u32::MAX);
        if self.sb.v5 {
            let mut flags2 = 0;
            if self.sb.incompat & super::superblock::IN_BIGTIME != 0 {
                flags2 |= FL2_BIGTIME;
            }
            if self.sb.incompat & super::superblock::IN_NREXT64 != 0 {
                flags2 |= FL2_NREXT64;
            }
            set64(&mut raw, 120, flags2);
            set64(&mut raw, 104, 1);
            set64(&mut raw, 152, ino);
            raw[160..176].copy_from_slice(&self.sb.meta_uuid);
        }
        let mut i = Inode { ino, raw };
        i.set_owner(uid, gid);
        i.set_nlink(1);
        let (s, ns) = super::now();
        for t in [ATIME, MTIME, CTIME] {
            i.set_time(t, s, ns);
        }
        if self.sb.v5 {
            i.set_time(CRTIME, s, ns);
        }
        Ok(i)
    }

    /// Writes an inode back in place, with its CRC recomputed (v3). Its LSN is kept: the log
    /// is clean and is not written, so no later replay can hold an older copy.
    pub(super) fn write_inode(&self, ino: &mut Inode) -> Result<(), FsError> {
        if ino.version() >= 3 {
            set_crc(&mut ino.raw, INODE_CRC);
        }
        self.vol.write(&ino.raw, self.inode_byte(ino.ino)?, &self.name)
    }
}
