//! Directory blocks: parsing (every record checked), lookup, listing, adding and removing
//! entries, checksum tails. Additions to htree directories go through the index
//! (`htree.rs`); only a filesystem without dir_index, or a tree at its maximum depth with
//! every index block on the path full, gets its directory turned back into a linear one.

use super::bytes::{crc32c_raw, le16, le32, set16, set32};
use super::filemap::Run;
use super::inode::{Inode, FL_INDEX};
use super::{Ext4, FsError};

/// One directory record inside a block.
#[derive(Clone, Debug)]
pub struct Record {
    pub off: usize,
    pub rec_len: usize,
    pub ino: u32,
    pub name: Vec<u8>,
    /// The dirent file type (0 without the filetype feature).
    pub ftype: u8,
}

const TAIL: usize = 12;

pub(super) fn name_room(name_len: usize) -> usize {
    (8 + name_len + 3) & !3
}

impl Ext4<'_> {
    pub(super) fn tail_size(&self) -> usize {
        if self.sb.has_csum() {
            TAIL
        } else {
            0
        }
    }

    pub(super) fn decode_rec_len(&self, raw: u16) -> usize {
        let bs = self.sb.block_size as usize;
        if bs >= 65536 && (raw == 65535 || raw == 0) {
            return bs;
        }
        let r = usize::from(raw);
        (r & 65532) | ((r & 3) << 16)
    }

    pub(super) fn encode_rec_len(&self, len: usize) -> u16 {
        if len >= 65536 {
            65535
        } else {
            len as u16
        }
    }

    /// True when `block` ends with a metadata_csum directory tail.
    fn has_tail(&self, block: &[u8]) -> bool {
        let t = block.len().saturating_sub(TAIL);
        le32(block, t) == 0 && le16(block, t + 4) == TAIL as u16 && le16(block, t + 6) == 0xDE00
    }

    /// The records of a directory block, the checksum tail excluded.
    pub(super) fn parse_dir_block(&self, block: &[u8], dir: u32) -> Result<Vec<Record>, FsError> {
        let end = if self.sb.has_csum() && self.has_tail(block) { block.len() - TAIL } else { block.len() };
        let mut out = Vec::new();
        let mut off = 0usize;
        let filetype = self.sb.has_filetype();
        while off < end {
            let raw_len = le16(block, off + 4);
            let rec_len = self.decode_rec_len(raw_len);
            let name_len = if filetype {
                usize::from(block.get(off + 6).copied().unwrap_or(0))
            } else {
                usize::from(le16(block, off + 6))
            };
            if rec_len < 12 || !rec_len.is_multiple_of(4) || off + rec_len > end || 8 + name_len > rec_len {
                return Err(self.invalid(
                    &format!("directory {dir} record at offset {off} rec_len"),
                    raw_len,
                    "corrupted directory block",
                ));
            }
            let ino = le32(block, off);
            if ino > self.sb.inodes_count {
                return Err(self.invalid(&format!("directory {dir} entry inode"), ino, "out of range"));
            }
            out.push(Record {
                off,
                rec_len,
                ino,
                name: block.get(off + 8..off + 8 + name_len).unwrap_or(&[]).to_vec(),
                ftype: if filetype { block.get(off + 7).copied().unwrap_or(0) } else { 0 },
            });
            off += rec_len;
        }
        Ok(out)
    }

    /// (logical, physical) blocks of a directory.
    pub(super) fn dir_blocks(&self, dir: &Inode) -> Result<Vec<(u64, u64)>, FsError> {
        let map = self.mapping(dir)?;
        let nblocks = dir.size() / self.sb.block_size;
        Ok(map
            .runs
            .iter()
            .filter(|r| !r.uninit)
            .flat_map(|r| (0..r.len).map(move |k| (r.lblk + k, r.pblk + k)))
            .filter(|&(l, _)| l < nblocks)
            .collect())
    }

    /// Every live entry of a directory (including "." and "..").
    pub(super) fn list_records(&self, dir: &Inode) -> Result<Vec<Record>, FsError> {
        let mut out = Vec::new();
        for (_, p) in self.dir_blocks(dir)? {
            let block = self.read_block(p)?;
            out.extend(self.parse_dir_block(&block, dir.ino)?.into_iter().filter(|r| r.ino != 0));
        }
        Ok(out)
    }

    pub(super) fn find_entry(&self, dir: &Inode, name: &[u8]) -> Result<Option<Record>, FsError> {
        Ok(self.locate_entry(dir, name)?.map(|(_, r)| r))
    }

    /// Live entry `name` and the physical block holding it: through the index of an htree
    /// directory, or (no index, or a damaged one, as the kernel falls back) block by block.
    fn locate_entry(&self, dir: &Inode, name: &[u8]) -> Result<Option<(u64, Record)>, FsError> {
        if dir.flags() & FL_INDEX != 0 && self.sb.has_dir_index() {
            if let Ok(found) = self.dx_find_entry(dir, name) {
                return Ok(found);
            }
        }
        for (_, p) in self.dir_blocks(dir)? {
            let block = self.read_block(p)?;
            if let Some(r) = self.parse_dir_block(&block, dir.ino)?.into_iter().find(|r| r.ino != 0 && r.name == name) {
                return Ok(Some((p, r)));
            }
        }
        Ok(None)
    }

    pub(super) fn write_dir_block(&self, dir: &Inode, pblk: u64, block: &mut [u8]) -> Result<(), FsError> {
        if self.sb.has_csum() {
            let t = block.len() - TAIL;
            if !self.has_tail(block) {
                return Err(self.invalid(&format!("directory {} block", dir.ino), pblk, "has no checksum tail"));
            }
            let c = crc32c_raw(self.seed_of(dir), &block[..t]);
            set32(block, t + 8, c);
        }
        self.write_block(pblk, block)
    }

    pub(super) fn put_record(&self, block: &mut [u8], off: usize, ino: u32, rec_len: usize, name: &[u8], ftype: u8) {
        set32(block, off, ino);
        set16(block, off + 4, self.encode_rec_len(rec_len));
        if self.sb.has_filetype() {
            if let Some(b) = block.get_mut(off + 6..off + 8) {
                b.copy_from_slice(&[name.len() as u8, ftype]);
            }
        } else {
            set16(block, off + 6, name.len() as u16);
        }
        if let Some(dst) = block.get_mut(off + 8..off + 8 + name.len()) {
            dst.copy_from_slice(name);
        }
    }

    /// An empty leaf block: one unused record spanning it, then the tail.
    pub(super) fn empty_dir_block(&self) -> Vec<u8> {
        let bs = self.sb.block_size as usize;
        let mut b = vec![0u8; bs];
        self.put_record(&mut b, 0, 0, bs - self.tail_size(), &[], 0);
        self.put_tail(&mut b);
        b
    }

    fn put_tail(&self, b: &mut [u8]) {
        if self.sb.has_csum() {
            let t = b.len() - TAIL;
            b[t..].fill(0);
            set16(b, t + 4, TAIL as u16);
            set16(b, t + 6, 0xDE00);
        }
    }

    /// The first block of a new directory: "." and "..".
    pub(super) fn new_dir_block(&self, ino: u32, parent: u32) -> Vec<u8> {
        let bs = self.sb.block_size as usize;
        let mut b = vec![0u8; bs];
        self.put_record(&mut b, 0, ino, 12, b".", 2);
        self.put_record(&mut b, 12, parent, bs - 12 - self.tail_size(), b"..", 2);
        self.put_tail(&mut b);
        b
    }

    /// Removes entry `name`; the directory's index, if any, stays valid (a leaf loses a record).
    pub(super) fn remove_entry(&mut self, dir: &Inode, name: &[u8]) -> Result<Option<Record>, FsError> {
        let Some((p, found)) = self.locate_entry(dir, name)? else { return Ok(None) };
        let mut block = self.read_block(p)?;
        let recs = self.parse_dir_block(&block, dir.ino)?;
        let Some(i) = recs.iter().position(|r| r.off == found.off && r.ino != 0 && r.name == name) else {
            return Ok(None);
        };
        let r = recs[i].clone();
        if i == 0 {
            // First record of the block: it stays as an unused record, name cleared.
            let rec_len = r.rec_len;
            block[r.off..r.off + rec_len].fill(0);
            self.put_record(&mut block, r.off, 0, rec_len, &[], 0);
        } else {
            let prev = &recs[i - 1];
            set16(&mut block, prev.off + 4, self.encode_rec_len(prev.rec_len + r.rec_len));
            block[r.off..r.off + r.rec_len].fill(0);
        }
        self.write_dir_block(dir, p, &mut block)?;
        Ok(Some(r))
    }

    /// Points existing entry `name` at another inode (used for ".." when a directory moves).
    pub(super) fn retarget_entry(&mut self, dir: &mut Inode, name: &[u8], ino: u32, ftype: u8) -> Result<(), FsError> {
        if dir.flags() & FL_INDEX != 0 && self.sb.has_dir_index() && name == b".." {
            // ".." is the second fake record of the index root.
            let blocks = self.dir_blocks(dir)?;
            let Some(&(_, p)) = blocks.iter().find(|&&(l, _)| l == 0) else {
                return Err(self.invalid(&format!("directory {} block 0", dir.ino), "hole", "no htree root"));
            };
            let (mut root, _) = self.load_dx_root(dir, p)?;
            set32(&mut root.data, 12, ino);
            if self.sb.has_filetype() {
                if let Some(t) = root.data.get_mut(19) {
                    *t = ftype;
                }
            }
            return self.write_dx_block(dir, &mut root);
        }
        self.deindex(dir)?;
        for (_, p) in self.dir_blocks(dir)? {
            let mut block = self.read_block(p)?;
            if let Some(r) = self.parse_dir_block(&block, dir.ino)?.into_iter().find(|r| r.ino != 0 && r.name == name) {
                self.put_record(&mut block, r.off, ino, r.rec_len, name, ftype);
                return self.write_dir_block(dir, p, &mut block);
            }
        }
        Err(self.invalid(&format!("directory {}", dir.ino), String::from_utf8_lossy(name), "entry vanished"))
    }

    /// Adds `name` → `ino` to `dir` (the caller checked it is absent). Writes `dir`.
    pub(super) fn add_entry(&mut self, dir: &mut Inode, name: &[u8], ino: u32, ftype: u8) -> Result<(), FsError> {
        if dir.flags() & FL_INDEX != 0 && self.sb.has_dir_index() && self.dx_add_entry(dir, name, ino, ftype)? {
            return self.touch_and_write(dir);
        }
        self.deindex(dir)?;
        for (_, p) in self.dir_blocks(dir)? {
            let mut block = self.read_block(p)?;
            if self.insert_record(&mut block, dir.ino, name, ino, ftype)? {
                self.write_dir_block(dir, p, &mut block)?;
                return self.touch_and_write(dir);
            }
        }
        // No room: append a block.
        let mut block = self.empty_dir_block();
        let bs = self.sb.block_size as usize;
        self.put_record(&mut block, 0, ino, bs - self.tail_size(), name, ftype);
        let (_, pblk) = self.append_block(dir)?;
        self.write_dir_block(dir, pblk, &mut block)?;
        self.touch_and_write(dir)
    }

    /// Puts `name` → `ino` in the first unused record or record slack of `block` that fits;
    /// false when none does.
    pub(super) fn insert_record(
        &self,
        block: &mut [u8],
        dir: u32,
        name: &[u8],
        ino: u32,
        ftype: u8,
    ) -> Result<bool, FsError> {
        let need = name_room(name.len());
        for r in self.parse_dir_block(block, dir)? {
            if r.ino == 0 && r.rec_len >= need {
                self.put_record(block, r.off, ino, r.rec_len, name, ftype);
            } else if r.ino != 0 && r.rec_len >= name_room(r.name.len()) + need {
                let used = name_room(r.name.len());
                set16(block, r.off + 4, self.encode_rec_len(used));
                self.put_record(block, r.off + used, ino, r.rec_len - used, name, ftype);
            } else {
                continue;
            }
            return Ok(true);
        }
        Ok(false)
    }

    fn touch_and_write(&mut self, dir: &mut Inode) -> Result<(), FsError> {
        let t = super::now();
        dir.set_time('m', t, 0);
        dir.set_time('c', t, 0);
        self.write_inode(dir)
    }

    /// Grows a directory by one block; returns its (logical, physical) numbers (the caller
    /// fills and writes it, and writes the inode).
    pub(super) fn append_block(&mut self, dir: &mut Inode) -> Result<(u64, u64), FsError> {
        let map = self.mapping(dir)?;
        let lblk = dir.size().div_ceil(self.sb.block_size);
        let goal = map.runs.last().map_or_else(|| self.inode_goal(dir.ino), |r| r.pblk + r.len);
        let Some(&(pblk, _)) = self.alloc_blocks(1, goal)?.first() else {
            return Err(FsError::NoSpace { fs: self.name.clone(), what: "a directory block".into() });
        };
        for &m in &map.meta {
            self.free_blocks(m, 1)?;
        }
        let mut runs = map.runs.clone();
        match runs.last_mut() {
            Some(r) if r.lblk + r.len == lblk && r.pblk + r.len == pblk && !r.uninit => r.len += 1,
            _ => runs.push(Run { lblk, pblk, len: 1, uninit: false }),
        }
        let data: u64 = runs.iter().map(|r| r.len).sum();
        self.set_runs(dir, &runs, data)?;
        let size = (lblk + 1) * self.sb.block_size;
        self.set_file_size(dir, size)?;
        Ok((lblk, pblk))
    }

    /// Turns an htree-indexed directory into a linear one, as e2fsck accepts (used when the
    /// filesystem lacks dir_index, or the tree is full at its maximum depth): the root
    /// block keeps "." and "..", index node blocks become empty leaves, the flag is cleared.
    fn deindex(&mut self, dir: &mut Inode) -> Result<(), FsError> {
        if dir.flags() & FL_INDEX == 0 {
            return Ok(());
        }
        let bs = self.sb.block_size as usize;
        for (l, p) in self.dir_blocks(dir)? {
            let block = self.read_block(p)?;
            let recs = self.parse_dir_block(&block, dir.ino)?;
            if l == 0 {
                let (Some(dot), Some(dotdot)) = (recs.first(), recs.get(1)) else {
                    return Err(self.invalid(&format!("directory {} htree root", dir.ino), p, "lacks . and .."));
                };
                if dot.name != b"." || dotdot.name != b".." || dot.rec_len != 12 {
                    return Err(self.invalid(&format!("directory {} htree root", dir.ino), p, "lacks . and .."));
                }
                let mut nb = vec![0u8; bs];
                self.put_record(&mut nb, 0, dot.ino, 12, b".", 2);
                self.put_record(&mut nb, 12, dotdot.ino, bs - 12 - self.tail_size(), b"..", 2);
                self.put_tail(&mut nb);
                self.write_dir_block(dir, p, &mut nb)?;
            } else if recs.len() == 1 && recs[0].ino == 0 && recs[0].rec_len == bs {
                let mut nb = self.empty_dir_block();
                self.write_dir_block(dir, p, &mut nb)?;
            }
        }
        dir.set_flags(dir.flags() & !FL_INDEX);
        self.write_inode(dir)
    }
}
