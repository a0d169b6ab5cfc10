//! `struct btrfs_inode_item` (160 bytes): the fields the writer reads and patches in place.

use super::tree::key;
use super::{Core, Error};
use btrfs_disk::items::Timespec;

pub const INODE_ITEM: u8 = 1;
pub const SIZE: usize = 160;
const OFF_TRANSID: usize = 8;
const OFF_SIZE: usize = 16;
const OFF_NBYTES: usize = 24;
const OFF_NLINK: usize = 40;
const OFF_UID: usize = 44;
const OFF_GID: usize = 48;
const OFF_MODE: usize = 52;
const OFF_FLAGS: usize = 64;
const OFF_SEQUENCE: usize = 72;
const OFF_CTIME: usize = 124;
const OFF_MTIME: usize = 136;

/// `BTRFS_INODE_NODATASUM`.
pub const FLAG_NODATASUM: u64 = 1;

pub const S_IFMT: u32 = 0o170_000;
pub const S_IFDIR: u32 = 0o040_000;
pub const S_IFREG: u32 = 0o100_000;
pub const S_IFLNK: u32 = 0o120_000;

pub fn u32_at(d: &[u8], o: usize) -> u32 {
    d.get(o..o + 4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

pub fn u64_at(d: &[u8], o: usize) -> u64 {
    d.get(o..o + 8).map_or(0, |b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
}

fn put(d: &mut [u8], o: usize, v: &[u8]) {
    if let Some(b) = d.get_mut(o..o + v.len()) {
        b.copy_from_slice(v);
    }
}

/// An inode's fields as read.
#[derive(Clone, Copy, Debug)]
pub struct Inode {
    pub size: u64,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub flags: u64,
}

impl Inode {
    pub fn parse(d: &[u8]) -> Result<Inode, Error> {
        if d.len() < SIZE {
            return Err(Error::Corrupt(format!("inode item of {} bytes", d.len())));
        }
        Ok(Inode { size: u64_at(d, OFF_SIZE), nlink: u32_at(d, OFF_NLINK), uid: u32_at(d, OFF_UID), gid: u32_at(d, OFF_GID), mode: u32_at(d, OFF_MODE), flags: u64_at(d, OFF_FLAGS) })
    }

    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
}

/// What an edit changes in an inode besides its own field: ctime always, with transid and
/// sequence (the kernel's inode_inc_iversion) as the kernel does.
#[derive(Default)]
pub struct Patch {
    pub size: Option<u64>,
    pub nbytes: Option<u64>,
    pub nlink: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mode: Option<u32>,
    pub mtime: bool,
}

pub fn now() -> Timespec {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timespec { sec: d.as_secs(), nsec: d.subsec_nanos() }
}

fn ts(t: Timespec) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[..8].copy_from_slice(&t.sec.to_le_bytes());
    b[8..].copy_from_slice(&t.nsec.to_le_bytes());
    b
}

impl Core<'_> {
    pub(super) fn inode(&mut self, tree: u64, ino: u64) -> Result<Option<Inode>, Error> {
        match self.get(tree, key(ino, INODE_ITEM, 0))? {
            Some(d) => Inode::parse(&d).map(Some),
            None => Ok(None),
        }
    }

    pub(super) fn patch_inode(&mut self, tree: u64, ino: u64, p: &Patch) -> Result<(), Error> {
        let transid = self.transid()?;
        let t = ts(now());
        let done = self.update(tree, key(ino, INODE_ITEM, 0), |d| {
            if d.len() < SIZE {
                return;
            }
            let seq = u64_at(d, OFF_SEQUENCE).wrapping_add(1);
            put(d, OFF_SEQUENCE, &seq.to_le_bytes());
            put(d, OFF_TRANSID, &transid.to_le_bytes());
            put(d, OFF_CTIME, &t);
            if p.mtime {
                put(d, OFF_MTIME, &t);
            }
            if let Some(v) = p.size {
                put(d, OFF_SIZE, &v.to_le_bytes());
            }
            if let Some(v) = p.nbytes {
                put(d, OFF_NBYTES, &v.to_le_bytes());
            }
            if let Some(v) = p.nlink {
                put(d, OFF_NLINK, &v.to_le_bytes());
            }
            if let Some(v) = p.uid {
                put(d, OFF_UID, &v.to_le_bytes());
            }
            if let Some(v) = p.gid {
                put(d, OFF_GID, &v.to_le_bytes());
            }
            if let Some(v) = p.mode {
                put(d, OFF_MODE, &v.to_le_bytes());
            }
        })?;
        done.ok_or_else(|| Error::Corrupt(format!("inode {ino} of tree {tree} vanished")))
    }
}
