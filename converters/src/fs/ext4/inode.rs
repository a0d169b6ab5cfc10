//! Inodes: reading with checksum verification, field access, writing with checksum.

use super::bytes::{crc32c_raw, le16, le32, set16, set32};
use super::group::BG_INODE_UNINIT;
use super::{Ext4, FsError};

pub const FL_INDEX: u32 = 0x1000;
pub const FL_HUGE_FILE: u32 = 0x4_0000;
pub const FL_EXTENTS: u32 = 0x8_0000;
pub const FL_INLINE_DATA: u32 = 0x1000_0000;
/// Flags under which this code must not change an inode's data or directory entries.
pub const FL_UNTOUCHABLE: u32 = 0x800 /* encrypt */ | 0x10_0000 /* verity */ | 0x20_0000 /* ea_inode */
    | 0x4000_0000 /* casefold */ | FL_INLINE_DATA | 0x10 /* immutable */ | 0x20 /* append */;

/// The type of a file, from its mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
    Unknown,
}

impl FileKind {
    pub fn from_mode(mode: u16) -> Self {
        match mode & 0xF000 {
            0x8000 => FileKind::Regular,
            0x4000 => FileKind::Directory,
            0xA000 => FileKind::Symlink,
            0x2000 => FileKind::CharDevice,
            0x6000 => FileKind::BlockDevice,
            0x1000 => FileKind::Fifo,
            0xC000 => FileKind::Socket,
            _ => FileKind::Unknown,
        }
    }
    /// The directory entry file type code.
    pub fn dirent_type(self) -> u8 {
        match self {
            FileKind::Regular => 1,
            FileKind::Directory => 2,
            FileKind::CharDevice => 3,
            FileKind::BlockDevice => 4,
            FileKind::Fifo => 5,
            FileKind::Socket => 6,
            FileKind::Symlink => 7,
            FileKind::Unknown => 0,
        }
    }
}

/// One inode's on-disk bytes.
#[derive(Clone, Debug)]
pub struct Inode {
    pub ino: u32,
    pub raw: Vec<u8>,
}

impl Inode {
    pub fn mode(&self) -> u16 {
        le16(&self.raw, 0x00)
    }
    pub fn set_mode(&mut self, v: u16) {
        set16(&mut self.raw, 0x00, v)
    }
    pub fn kind(&self) -> FileKind {
        FileKind::from_mode(self.mode())
    }
    pub fn uid(&self) -> u32 {
        u32::from(le16(&self.raw, 0x02)) | (u32::from(le16(&self.raw, 0x78)) << 16)
    }
    pub fn gid(&self) -> u32 {
        u32::from(le16(&self.raw, 0x18)) | (u32::from(le16(&self.raw, 0x7A)) << 16)
    }
    pub fn set_owner(&mut self, uid: u32, gid: u32) {
        set16(&mut self.raw, 0x02, uid as u16);
        set16(&mut self.raw, 0x78, (uid >> 16) as u16);
        set16(&mut self.raw, 0x18, gid as u16);
        set16(&mut self.raw, 0x7A, (gid >> 16) as u16);
    }
    pub fn size(&self) -> u64 {
        u64::from(le32(&self.raw, 0x04)) | (u64::from(le32(&self.raw, 0x6C)) << 32)
    }
    pub fn set_size(&mut self, v: u64) {
        set32(&mut self.raw, 0x04, v as u32);
        set32(&mut self.raw, 0x6C, (v >> 32) as u32);
    }
    pub fn links(&self) -> u16 {
        le16(&self.raw, 0x1A)
    }
    pub fn set_links(&mut self, v: u16) {
        set16(&mut self.raw, 0x1A, v)
    }
    pub fn flags(&self) -> u32 {
        le32(&self.raw, 0x20)
    }
    pub fn set_flags(&mut self, v: u32) {
        set32(&mut self.raw, 0x20, v)
    }
    pub fn generation(&self) -> u32 {
        le32(&self.raw, 0x64)
    }
    pub fn file_acl(&self) -> u64 {
        u64::from(le32(&self.raw, 0x68)) | (u64::from(le16(&self.raw, 0x76)) << 32)
    }
    pub fn set_file_acl(&mut self, v: u64) {
        set32(&mut self.raw, 0x68, v as u32);
        set16(&mut self.raw, 0x76, (v >> 32) as u16);
    }
    /// i_blocks in 512-byte units as stored (without the huge-file scaling).
    pub fn blocks_raw(&self) -> u64 {
        u64::from(le32(&self.raw, 0x1C)) | (u64::from(le16(&self.raw, 0x74)) << 32)
    }
    pub fn i_block(&self) -> &[u8] {
        self.raw.get(0x28..0x64).unwrap_or(&[])
    }
    pub fn i_block_mut(&mut self) -> &mut [u8] {
        self.raw.get_mut(0x28..0x64).unwrap_or(&mut [])
    }
    pub fn extra_isize(&self) -> usize {
        if self.raw.len() > 128 {
            usize::from(le16(&self.raw, 0x80))
        } else {
            0
        }
    }
    pub fn set_dtime(&mut self, t: i64) {
        set32(&mut self.raw, 0x14, t as u32)
    }

    /// Sets a timestamp: `which` is 'a', 'c', 'm' or 'r' (creation); nanoseconds and the
    /// epoch bits go in the extra field when the inode has room for it.
    pub fn set_time(&mut self, which: char, secs: i64, nsec: u32) {
        let (base, extra) = match which {
            'a' => (0x08, 0x8C),
            'c' => (0x0C, 0x84),
            'm' => (0x10, 0x88),
            _ => (0x90, 0x94),
        };
        if which == 'r' && 0x80 + self.extra_isize() < 0x94 {
            return;
        }
        let lo = secs as i32;
        set32(&mut self.raw, base, lo as u32);
        if 0x80 + self.extra_isize() >= extra + 4 {
            let epoch = ((secs - i64::from(lo)) >> 32) as u32 & 3;
            set32(&mut self.raw, extra, (nsec.min(999_999_999) << 2) | epoch);
        }
    }
    pub fn mtime(&self) -> i64 {
        let lo = i64::from(le32(&self.raw, 0x10) as i32);
        if 0x80 + self.extra_isize() >= 0x8C {
            lo + (i64::from(le32(&self.raw, 0x88) & 3) << 32)
        } else {
            lo
        }
    }
}

impl Ext4<'_> {
    /// Where inode `ino` lives: (group, byte offset in the volume).
    fn inode_location(&self, ino: u32) -> Result<(u32, u64), FsError> {
        if ino == 0 || ino > self.sb.inodes_count {
            return Err(self.invalid("inode number", ino, format!("outside 1..={}", self.sb.inodes_count)));
        }
        let ipg = self.sb.inodes_per_group;
        let g = (ino - 1) / ipg;
        let index = u64::from((ino - 1) % ipg);
        let off = self.gdt.inode_table(g) * self.sb.block_size + index * u64::from(self.sb.inode_size);
        Ok((g, off))
    }

    fn inode_seed(&self, ino: u32, generation: u32) -> u32 {
        crc32c_raw(crc32c_raw(self.sb.csum_seed, &ino.to_le_bytes()), &generation.to_le_bytes())
    }

    fn inode_checksum(&self, inode: &Inode) -> u32 {
        let mut raw = inode.raw.clone();
        set16(&mut raw, 0x7C, 0);
        if inode.extra_isize() >= 4 {
            set16(&mut raw, 0x82, 0);
        }
        crc32c_raw(self.inode_seed(inode.ino, inode.generation()), &raw)
    }

    /// Reads inode `ino`, verifying its checksum on metadata_csum filesystems.
    pub(super) fn read_inode(&self, ino: u32) -> Result<Inode, FsError> {
        let (g, off) = self.inode_location(ino)?;
        let mut raw = vec![0u8; self.sb.inode_size as usize];
        self.vol.read(&mut raw, off, &self.name)?;
        let inode = Inode { ino, raw };
        let index = (ino - 1) % self.sb.inodes_per_group;
        let unused = (self.sb.has_csum() || self.sb.has_gdt_csum())
            && (self.gdt.flags(g) & BG_INODE_UNINIT != 0
                || index >= self.sb.inodes_per_group.saturating_sub(self.gdt.itable_unused(g)));
        if unused {
            // Never-used inode table space: its bytes mean nothing.
            return Ok(Inode { ino, raw: vec![0u8; self.sb.inode_size as usize] });
        }
        if inode.raw.len() > 128 && 128 + inode.extra_isize() > inode.raw.len() {
            return Err(self.invalid(
                &format!("inode {ino} i_extra_isize"),
                inode.extra_isize(),
                "larger than the inode",
            ));
        }
        if self.sb.has_csum() && inode.links() != 0 {
            let want = self.inode_checksum(&inode);
            let mut have = u32::from(le16(&inode.raw, 0x7C));
            let mask = if inode.extra_isize() >= 4 {
                have |= u32::from(le16(&inode.raw, 0x82)) << 16;
                u32::MAX
            } else {
                0xFFFF
            };
            if want & mask != have {
                return Err(self.invalid(&format!("inode {ino} checksum"), format!("{have:#x}"), "does not match"));
            }
        }
        Ok(inode)
    }

    /// Writes an inode back, with its checksum brought up to date.
    pub(super) fn write_inode(&self, inode: &mut Inode) -> Result<(), FsError> {
        let (_, off) = self.inode_location(inode.ino)?;
        if self.sb.has_csum() {
            let c = self.inode_checksum(inode);
            set16(&mut inode.raw, 0x7C, c as u16);
            if inode.extra_isize() >= 4 {
                set16(&mut inode.raw, 0x82, (c >> 16) as u16);
            }
        }
        self.vol.write(&inode.raw, off, &self.name)
    }

    /// A fresh in-memory inode for `ino` (the caller writes it).
    pub(super) fn new_inode(&self, ino: u32, mode: u16, uid: u32, gid: u32, generation: u32) -> Inode {
        let mut inode = Inode { ino, raw: vec![0u8; self.sb.inode_size as usize] };
        if inode.raw.len() > 128 {
            let room = inode.raw.len() - 128;
            let want = if self.sb.want_extra_isize >= 4 && usize::from(self.sb.want_extra_isize) <= room {
                usize::from(self.sb.want_extra_isize)
            } else {
                32.min(room)
            };
            set16(&mut inode.raw, 0x80, want as u16);
        }
        inode.set_mode(mode);
        inode.set_owner(uid, gid);
        set32(&mut inode.raw, 0x64, generation);
        let t = super::now();
        for w in ['a', 'c', 'm', 'r'] {
            inode.set_time(w, t, 0);
        }
        inode
    }

    /// The inode checksum seed, for directory and extent block checksums.
    pub(super) fn seed_of(&self, inode: &Inode) -> u32 {
        self.inode_seed(inode.ino, inode.generation())
    }
}
