//! A file's logical-to-physical mapping, whichever way it is stored, and whole-file
//! read and replace on top of it.

use super::bytes::{set16, set32};
use super::inode::{FileKind, Inode, FL_EXTENTS, FL_HUGE_FILE, FL_INLINE_DATA};
use super::superblock::{RO_HUGE_FILE, RO_LARGE_FILE};
use super::{Ext4, FsError};
use crate::fs::PathProblem;

/// `len` blocks of a file from logical block `lblk` stored from physical block `pblk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub lblk: u64,
    pub pblk: u64,
    pub len: u64,
    /// Allocated but unwritten (reads as zeros).
    pub uninit: bool,
}

/// Data runs and the tree (extent index/leaf or indirect) blocks that map them.
#[derive(Clone, Debug, Default)]
pub struct Mapping {
    pub runs: Vec<Run>,
    pub meta: Vec<u64>,
}

impl Mapping {
    pub fn data_blocks(&self) -> u64 {
        self.runs.iter().map(|r| r.len).sum()
    }
}

impl Ext4<'_> {
    /// True when the inode keeps its data in `i_block` itself (fast symlink, device node).
    pub(super) fn has_no_blocks(&self, inode: &Inode) -> bool {
        match inode.kind() {
            FileKind::Symlink => {
                let ea = if inode.file_acl() != 0 { self.sb.block_size / 512 } else { 0 };
                inode.flags() & FL_EXTENTS == 0 && inode.blocks_raw() <= ea
            }
            FileKind::Regular | FileKind::Directory => false,
            _ => true,
        }
    }

    pub(super) fn mapping(&self, inode: &Inode) -> Result<Mapping, FsError> {
        if inode.flags() & FL_INLINE_DATA != 0 {
            return Err(self.unsupported(format!("inline data (inode {})", inode.ino)));
        }
        if self.has_no_blocks(inode) {
            return Ok(Mapping::default());
        }
        if inode.flags() & FL_EXTENTS != 0 {
            self.extent_mapping(inode)
        } else {
            self.blockmap_mapping(inode, inode.size().div_ceil(self.sb.block_size))
        }
    }

    /// The file's bytes; files larger than `max` are refused before anything is allocated.
    pub(super) fn read_data(&self, inode: &Inode, max: u64, path: &str) -> Result<Vec<u8>, FsError> {
        let size = inode.size();
        if size > max {
            return Err(FsError::Path { fs: self.name.clone(), path: path.into(), problem: PathProblem::TooLarge });
        }
        if self.has_no_blocks(inode) {
            let ib = inode.i_block();
            return Ok(ib.get(..size as usize).unwrap_or(ib).to_vec());
        }
        let map = self.mapping(inode)?;
        let bs = self.sb.block_size;
        let mut buf = vec![0u8; size as usize];
        for r in map.runs.iter().filter(|r| !r.uninit) {
            let a = r.lblk * bs;
            if a >= size {
                continue;
            }
            let b = ((r.lblk + r.len) * bs).min(size);
            self.vol.read(&mut buf[a as usize..b as usize], r.pblk * bs, &self.name)?;
        }
        Ok(buf)
    }

    /// Frees every data and tree block of `inode` (the inode itself is not written).
    pub(super) fn free_file_blocks(&mut self, inode: &mut Inode) -> Result<(), FsError> {
        let map = self.mapping(inode)?;
        for r in &map.runs {
            self.free_blocks(r.pblk, r.len)?;
        }
        for &m in &map.meta {
            self.free_blocks(m, 1)?;
        }
        Ok(())
    }

    /// Replaces the contents of a regular file or slow symlink with `data`.
    pub(super) fn set_contents(&mut self, inode: &mut Inode, data: &[u8]) -> Result<(), FsError> {
        let bs = self.sb.block_size;
        let need = (data.len() as u64).div_ceil(bs);
        let old = self.mapping(inode)?;
        let per = (bs - 12) / 12;
        let meta_estimate = need / per.min(bs / 4) + 4;
        let available = self.sb.free_blocks() + old.data_blocks() + old.meta.len() as u64;
        if available < need + meta_estimate {
            return Err(FsError::NoSpace { fs: self.name.clone(), what: format!("{} bytes", data.len()) });
        }
        self.free_file_blocks(inode)?;
        if self.sb.has_extents() && inode.flags() & FL_EXTENTS == 0 {
            // A block-mapped file on an ext4 filesystem (upgraded from ext3) gets extents,
            // so its new blocks may lie anywhere, as the kernel's own new files do.
            inode.set_flags(inode.flags() | FL_EXTENTS);
            super::extents::write_header(inode.i_block_mut(), 0, 4, 0);
        }
        let goal = self.inode_goal(inode.ino);
        let mut runs = Vec::new();
        let mut lblk = 0;
        for (start, len) in self.alloc_blocks(need, goal)? {
            runs.push(Run { lblk, pblk: start, len, uninit: false });
            lblk += len;
        }
        for r in &runs {
            let a = (r.lblk * bs) as usize;
            let b = (((r.lblk + r.len) * bs) as usize).min(data.len());
            self.vol.write(&data[a..b], r.pblk * bs, &self.name)?;
            let pad = ((r.lblk + r.len) * bs) as usize - b;
            if pad > 0 {
                self.vol.write(&vec![0u8; pad], r.pblk * bs + (b - a) as u64, &self.name)?;
            }
        }
        self.set_runs(inode, &runs, need)?;
        self.set_file_size(inode, data.len() as u64)
    }

    /// Points `inode` at `runs` (holding `data_blocks` blocks) with a freshly built tree.
    pub(super) fn set_runs(&mut self, inode: &mut Inode, runs: &[Run], data_blocks: u64) -> Result<(), FsError> {
        let goal = runs.last().map_or_else(|| self.inode_goal(inode.ino), |r| r.pblk + r.len);
        let meta = if inode.flags() & FL_EXTENTS != 0 {
            self.build_extent_tree(inode, runs, goal)?
        } else {
            self.build_blockmap(inode, runs, goal)?
        };
        let acl = u64::from(inode.file_acl() != 0);
        self.set_block_count(inode, data_blocks + meta + acl)
    }

    /// Sets i_blocks from a count of filesystem blocks.
    pub(super) fn set_block_count(&mut self, inode: &mut Inode, blocks: u64) -> Result<(), FsError> {
        let sectors = blocks * (self.sb.block_size / 512);
        let huge = self.sb.ro_compat & RO_HUGE_FILE != 0;
        if sectors >> if huge { 48 } else { 32 } != 0 {
            return Err(self.invalid("i_blocks", sectors, "file too large for this filesystem"));
        }
        set32(&mut inode.raw, 0x1C, sectors as u32);
        if huge {
            set16(&mut inode.raw, 0x74, (sectors >> 32) as u16);
        }
        inode.set_flags(inode.flags() & !FL_HUGE_FILE);
        Ok(())
    }

    pub(super) fn set_file_size(&mut self, inode: &mut Inode, size: u64) -> Result<(), FsError> {
        inode.set_size(size);
        if size >= 1 << 31 && self.sb.ro_compat & RO_LARGE_FILE == 0 {
            self.sb.set_ro_compat(RO_LARGE_FILE);
            self.write_super()?;
        }
        Ok(())
    }

    /// First block of the inode's group: where its data should go.
    pub(super) fn inode_goal(&self, ino: u32) -> u64 {
        let g = (ino.saturating_sub(1)) / self.sb.inodes_per_group;
        self.sb.first_data_block + u64::from(g) * u64::from(self.sb.blocks_per_group)
    }
}
