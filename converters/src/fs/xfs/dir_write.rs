//! Adding and removing names in shortform directories (entries packed in the inode: count,
//! 8-byte-inode count, parent, then name length, the entry's offset in the block form the
//! directory would have, name, file type, inode number). A name is added after the last
//! entry, at the offset following it, when both the inode and that block form have room;
//! a full one becomes a block directory (dir_block.rs); a directory shrunk back small enough
//! is written in this form again (dir_leaf.rs).

use super::bytes::{be16, be32, be64, byte, set32};
use super::dir::entry_size;
use super::inode::{FileKind, Inode, FMT_LOCAL};
use super::Xfs;
use crate::fs::FsError;

/// `di_ftype` codes.
pub fn ftype_of(kind: FileKind, mode: u16) -> u8 {
    match kind {
        FileKind::Regular => 1,
        FileKind::Directory => 2,
        FileKind::Symlink => 7,
        FileKind::Other => match mode & 0o170000 {
            0o020000 => 3,
            0o060000 => 4,
            0o010000 => 5,
            0o140000 => 6,
            _ => 0,
        },
    }
}

/// A parsed shortform entry.
struct SfEntry {
    name: Vec<u8>,
    offset: u16,
    ftype: u8,
    ino: u64,
}

impl Xfs<'_> {
    /// Offset of the first entry in a directory data block (after the header, "." and "..").
    fn dir_first_offset(&self) -> usize {
        let hdr = if self.sb.v5 { 64 } else { 16 };
        hdr + entry_size(1, self.sb.ftype) + entry_size(2, self.sb.ftype)
    }

    /// (parent, entries) of shortform directory `dir`; refuses other formats in one line.
    fn sf_parse(&self, dir: &Inode, what: &str) -> Result<(u64, Vec<SfEntry>), FsError> {
        if dir.format() != FMT_LOCAL {
            return Err(self.unsupported(format!(
                "{what}: editing a block, leaf or node directory (inode {}; only shortform directories are written)",
                dir.ino
            )));
        }
        let fork = dir.data_fork();
        let size = dir.size() as usize;
        let field = format!("directory inode {} shortform", dir.ino);
        if size > fork.len() || size < 6 {
            return Err(self.invalid(&format!("{field} size"), size, format!("not 6..{}", fork.len())));
        }
        let b = &fork[..size];
        let inolen = if byte(b, 1) > 0 { 8 } else { 4 };
        let rd = |at: usize| if inolen == 8 { be64(b, at) } else { u64::from(be32(b, at)) };
        let parent = rd(2);
        let mut at = 2 + inolen;
        let mut out = Vec::new();
        for i in 0..usize::from(byte(b, 0)) {
            let namelen = usize::from(byte(b, at));
            let ft = usize::from(self.sb.ftype);
            let end = at + 3 + namelen + ft + inolen;
            if namelen == 0 || end > b.len() {
                return Err(self.invalid(&format!("{field} entry {i}"), namelen, "runs past the fork"));
            }
            out.push(SfEntry {
                name: b[at + 3..at + 3 + namelen].to_vec(),
                offset: be16(b, at + 1),
                ftype: if self.sb.ftype { byte(b, at + 3 + namelen) } else { 0 },
                ino: rd(end - inolen),
            });
            at = end;
        }
        Ok((parent, out))
    }

    /// Stores `parent` and `entries` as `dir`'s shortform data (and its size); `false`
    /// (nothing changed) when they do not fit the inode.
    fn sf_store(&self, dir: &mut Inode, parent: u64, entries: &[SfEntry], what: &str) -> Result<bool, FsError> {
        let wide = parent > u64::from(u32::MAX) || entries.iter().any(|e| e.ino > u64::from(u32::MAX));
        if wide {
            return Err(self.unsupported(format!("{what}: 8-byte inode numbers in a shortform directory")));
        }
        let mut b = vec![entries.len() as u8, 0];
        b.extend_from_slice(&(parent as u32).to_be_bytes());
        for e in entries {
            b.push(e.name.len() as u8);
            b.extend_from_slice(&e.offset.to_be_bytes());
            b.extend_from_slice(&e.name);
            if self.sb.ftype {
                b.push(e.ftype);
            }
            b.extend_from_slice(&(e.ino as u32).to_be_bytes());
        }
        if b.len() > dir.data_fork().len() || entries.len() > 255 {
            return Ok(false);
        }
        dir.set_local_data(&b);
        Ok(true)
    }

    /// Whether directory `dir` holds `name` (any format).
    pub(super) fn dir_lookup(&self, dir: &Inode, name: &[u8]) -> Result<Option<u64>, FsError> {
        Ok(self.dir_entries(dir)?.into_iter().find(|e| e.name == name).map(|e| e.ino))
    }

    /// Adds `name` -> `ino` to shortform directory `dir` (in memory); `false` (nothing
    /// changed) when the inode or the block form has no room for it.
    pub(super) fn sf_add(&self, dir: &mut Inode, name: &[u8], ino: u64, ftype: u8, what: &str) -> Result<bool, FsError> {
        let (parent, mut entries) = self.sf_parse(dir, what)?;
        let offset = entries.last().map_or(self.dir_first_offset(), |e| usize::from(e.offset) + entry_size(e.name.len(), self.sb.ftype));
        // The block form must hold every entry at its offset, plus the leaf and tail.
        let end = offset + entry_size(name.len(), self.sb.ftype) + 8 * (entries.len() + 3) + 8;
        if end as u64 > self.sb.dirblock() {
            return Ok(false);
        }
        entries.push(SfEntry { name: name.to_vec(), offset: offset as u16, ftype, ino });
        self.sf_store(dir, parent, &entries, what)
    }

    /// Makes `dir` a shortform directory holding `parent` and `entries` (in memory, its
    /// size and format set); `false` (nothing changed) when they do not fit the inode, their
    /// block form, or 4-byte inode numbers.
    pub(super) fn sf_rebuild(&self, dir: &mut Inode, parent: u64, entries: &[(Vec<u8>, u64, u8)], what: &str) -> Result<bool, FsError> {
        if entries.len() > 255 || parent > u64::from(u32::MAX) || entries.iter().any(|e| e.1 > u64::from(u32::MAX)) {
            return Ok(false);
        }
        let mut offset = self.dir_first_offset();
        let mut sf = Vec::with_capacity(entries.len());
        for (name, ino, ftype) in entries {
            sf.push(SfEntry { name: name.clone(), offset: offset as u16, ftype: *ftype, ino: *ino });
            offset += entry_size(name.len(), self.sb.ftype);
            if (offset + 8 * (entries.len() + 2) + 8) as u64 > self.sb.dirblock() {
                return Ok(false);
            }
        }
        self.sf_store(dir, parent, &sf, what)
    }

    /// Removes `name` from shortform directory `dir` (in memory); returns its inode.
    pub(super) fn sf_remove(&self, dir: &mut Inode, name: &[u8], what: &str) -> Result<u64, FsError> {
        let (parent, mut entries) = self.sf_parse(dir, what)?;
        let k = entries.iter().position(|e| e.name == name).ok_or_else(|| self.invalid(what, "", "name not in the directory"))?;
        let ino = entries.remove(k).ino;
        self.sf_store(dir, parent, &entries, what)?;
        Ok(ino)
    }

    /// (parent, (name, inode, file type) of every entry) of shortform directory `dir`.
    pub(super) fn sf_list(&self, dir: &Inode, what: &str) -> Result<(u64, Vec<(Vec<u8>, u64, u8)>), FsError> {
        let (parent, entries) = self.sf_parse(dir, what)?;
        Ok((parent, entries.into_iter().map(|e| (e.name, e.ino, e.ftype)).collect()))
    }

    /// Points the ".." of shortform directory `dir` at `parent` (in memory).
    pub(super) fn sf_set_parent(&self, dir: &mut Inode, parent: u64, what: &str) -> Result<(), FsError> {
        let (_, entries) = self.sf_parse(dir, what)?;
        self.sf_store(dir, parent, &entries, what).map(|_| ())
    }

    /// Makes `dir` an empty shortform directory whose ".." is `parent`.
    pub(super) fn sf_init(&self, dir: &mut Inode, parent: u64, what: &str) -> Result<(), FsError> {
        let mut b = vec![0u8; 6];
        set32(&mut b, 2, parent as u32);
        if parent > u64::from(u32::MAX) {
            return Err(self.unsupported(format!("{what}: 8-byte inode numbers in a shortform directory")));
        }
        dir.set_local_data(&b);
        Ok(())
    }
}
