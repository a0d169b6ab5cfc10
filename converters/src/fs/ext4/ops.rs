//! The path API conversion uses: lookup (following symlinks, bounded), read, list, and the
//! edits (write, create, symlink, mkdir, unlink, rmdir, rename, chmod, chown, utimes).

use super::bytes::set32;
use super::inode::{FileKind, Inode, FL_EXTENTS, FL_UNTOUCHABLE};
use super::superblock::RO_DIR_NLINK;
use super::{Ext4, FsError, ROOT_INO};
use crate::fs::PathProblem;
use std::collections::VecDeque;

/// Most symlinks followed while resolving one path, as Linux allows.
const MAX_SYMLINKS: u32 = 40;
/// The kernel's link count ceiling for directories; past it dir_nlink counts stay at 1.
const LINK_MAX: u16 = 65000;
/// Longest symlink target read or written.
const MAX_TARGET: usize = 4095;

/// What `stat` would say about a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub ino: u32,
    pub kind: FileKind,
    /// Permission bits (`mode & 0o7777`).
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub links: u16,
    pub mtime: i64,
}

/// One entry of a directory listing ("." and ".." excluded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub ino: u32,
    pub kind: FileKind,
}

fn components(path: &str) -> impl Iterator<Item = &[u8]> {
    path.as_bytes().split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".")
}

impl Ext4<'_> {
    fn path_err(&self, path: &str, problem: PathProblem) -> FsError {
        FsError::Path { fs: self.name.clone(), path: path.to_string(), problem }
    }

    /// Resolves `path` from the root; symlinks in the middle are always followed, the last
    /// component only when `follow_last`.
    fn resolve(&self, path: &str, follow_last: bool) -> Result<Inode, FsError> {
        let mut todo: VecDeque<Vec<u8>> = components(path).map(<[u8]>::to_vec).collect();
        let mut cur = self.read_inode(ROOT_INO)?;
        let mut followed = 0;
        while let Some(name) = todo.pop_front() {
            if cur.kind() != FileKind::Directory {
                return Err(self.path_err(path, PathProblem::NotDirectory));
            }
            let Some(rec) = self.find_entry(&cur, &name)? else {
                return Err(self.path_err(path, PathProblem::NotFound));
            };
            let next = self.read_inode(rec.ino)?;
            if next.kind() == FileKind::Symlink && (follow_last || !todo.is_empty()) {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(self.path_err(path, PathProblem::SymlinkLoop));
                }
                let target = self.read_data(&next, MAX_TARGET as u64, path)?;
                for c in target.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".").rev() {
                    todo.push_front(c.to_vec());
                }
                if target.first() == Some(&b'/') {
                    cur = self.read_inode(ROOT_INO)?;
                }
                continue;
            }
            cur = next;
        }
        Ok(cur)
    }

    /// The directory that holds the last component of `path`, and that component.
    fn resolve_parent(&self, path: &str) -> Result<(Inode, Vec<u8>), FsError> {
        let comps: Vec<&[u8]> = components(path).collect();
        let Some((last, init)) = comps.split_last() else {
            return Err(self.path_err(path, PathProblem::InvalidName));
        };
        if *last == b".." {
            return Err(self.path_err(path, PathProblem::InvalidName));
        }
        if last.len() > 255 {
            return Err(self.path_err(path, PathProblem::NameTooLong));
        }
        let parent_path: Vec<String> = init.iter().map(|c| String::from_utf8_lossy(c).into_owned()).collect();
        let dir = self.resolve(&parent_path.join("/"), true)?;
        if dir.kind() != FileKind::Directory {
            return Err(self.path_err(path, PathProblem::NotDirectory));
        }
        Ok((dir, last.to_vec()))
    }

    fn check_touchable(&self, inode: &Inode, path: &str) -> Result<(), FsError> {
        if inode.flags() & FL_UNTOUCHABLE != 0 {
            return Err(self.unsupported(format!(
                "{path}: inode flags {:#x} (encrypted, verity, casefolded, inline, immutable or append-only)",
                inode.flags()
            )));
        }
        Ok(())
    }

    fn metadata_of(inode: &Inode) -> Metadata {
        Metadata {
            ino: inode.ino,
            kind: inode.kind(),
            perm: inode.mode() & 0o7777,
            uid: inode.uid(),
            gid: inode.gid(),
            size: inode.size(),
            links: inode.links(),
            mtime: inode.mtime(),
        }
    }

    /// `stat(path)`: symlinks followed.
    pub fn metadata(&self, path: &str) -> Result<Metadata, FsError> {
        Ok(Self::metadata_of(&self.resolve(path, true)?))
    }

    /// `lstat(path)`: a final symlink is described itself.
    pub fn symlink_metadata(&self, path: &str) -> Result<Metadata, FsError> {
        Ok(Self::metadata_of(&self.resolve(path, false)?))
    }

    /// Whether `path` exists (a dangling final symlink counts).
    pub fn exists(&self, path: &str) -> Result<bool, FsError> {
        match self.resolve(path, false) {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.path_problem(), Some(PathProblem::NotFound | PathProblem::NotDirectory)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A regular file's contents (symlinks followed); files above `max` bytes are refused.
    pub fn read_file(&self, path: &str, max: u64) -> Result<Vec<u8>, FsError> {
        let inode = self.resolve(path, true)?;
        match inode.kind() {
            FileKind::Regular => self.read_data(&inode, max, path),
            FileKind::Directory => Err(self.path_err(path, PathProblem::IsDirectory)),
            _ => Err(self.unsupported(format!("{path}: reading a special file"))),
        }
    }

    /// A symlink's target.
    pub fn read_link(&self, path: &str) -> Result<Vec<u8>, FsError> {
        let inode = self.resolve(path, false)?;
        if inode.kind() != FileKind::Symlink {
            return Err(self.invalid("symlink", path, "not a symbolic link"));
        }
        self.read_data(&inode, MAX_TARGET as u64, path)
    }

    /// The depth of a directory's htree index below the root (`indirect_levels`), or None
    /// for a linear directory (or an index the filesystem does not maintain).
    pub fn dir_index_levels(&self, path: &str) -> Result<Option<u8>, FsError> {
        let dir = self.resolve(path, true)?;
        if dir.kind() != FileKind::Directory {
            return Err(self.path_err(path, PathProblem::NotDirectory));
        }
        if dir.flags() & super::inode::FL_INDEX == 0 || !self.sb.has_dir_index() {
            return Ok(None);
        }
        let Some(root) = self.mapping(&dir)?.runs.iter().find(|r| r.lblk == 0 && !r.uninit).map(|r| r.pblk) else {
            return Err(self.invalid(&format!("directory {} block 0", dir.ino), "hole", "no htree root"));
        };
        Ok(Some(self.load_dx_root(&dir, root)?.1.levels))
    }

    /// A directory's entries, without "." and "..".
    pub fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let dir = self.resolve(path, true)?;
        if dir.kind() != FileKind::Directory {
            return Err(self.path_err(path, PathProblem::NotDirectory));
        }
        let mut out = Vec::new();
        for r in self.list_records(&dir)? {
            if r.name == b"." || r.name == b".." {
                continue;
            }
            let kind = self.read_inode(r.ino)?.kind();
            out.push(DirEntry { name: r.name, ino: r.ino, kind });
        }
        Ok(out)
    }

    /// Replaces a regular file's contents (symlinks followed), or creates it with `perm`,
    /// `uid` and `gid` when absent. An existing file keeps its mode, owner and other links.
    pub fn write_file(&mut self, path: &str, data: &[u8], perm: u16, uid: u32, gid: u32) -> Result<(), FsError> {
        match self.resolve(path, true) {
            Ok(mut inode) => {
                if inode.kind() != FileKind::Regular {
                    return Err(self.path_err(
                        path,
                        if inode.kind() == FileKind::Directory {
                            PathProblem::IsDirectory
                        } else {
                            PathProblem::Exists
                        },
                    ));
                }
                self.check_touchable(&inode, path)?;
                self.set_contents(&mut inode, data)?;
                let t = super::now();
                inode.set_time('m', t, 0);
                inode.set_time('c', t, 0);
                self.write_inode(&mut inode)
            }
            Err(e) if e.path_problem() == Some(PathProblem::NotFound) => self.create_file(path, data, perm, uid, gid),
            Err(e) => Err(e),
        }
    }

    /// The parent directory, checked for an entry named like the new file.
    fn parent_for_new(&self, path: &str) -> Result<(Inode, Vec<u8>), FsError> {
        let (dir, name) = self.resolve_parent(path)?;
        self.check_touchable(&dir, path)?;
        if self.find_entry(&dir, &name)?.is_some() {
            return Err(self.path_err(path, PathProblem::Exists));
        }
        Ok((dir, name))
    }

    /// On extent filesystems, new files get the extents flag and an empty tree.
    fn use_extents(&self, inode: &mut Inode) {
        if self.sb.has_extents() {
            inode.set_flags(inode.flags() | FL_EXTENTS);
            super::extents::write_header(inode.i_block_mut(), 0, 4, 0);
        }
    }

    fn generation(&self, ino: u32) -> u32 {
        let t = super::now() as u32;
        t.wrapping_mul(2_654_435_761) ^ ino.rotate_left(16)
    }

    /// Creates a regular file; it must not exist.
    pub fn create_file(&mut self, path: &str, data: &[u8], perm: u16, uid: u32, gid: u32) -> Result<(), FsError> {
        let (mut dir, name) = self.parent_for_new(path)?;
        let g = (dir.ino - 1) / self.sb.inodes_per_group;
        let ino = self.alloc_inode(g, false)?;
        let mut inode = self.new_inode(ino, 0o100000 | (perm & 0o7777), uid, gid, self.generation(ino));
        inode.set_links(1);
        self.use_extents(&mut inode);
        self.set_contents(&mut inode, data)?;
        self.write_inode(&mut inode)?;
        self.add_entry(&mut dir, &name, ino, FileKind::Regular.dirent_type())
    }

    /// Creates a symbolic link at `path` pointing to `target`.
    pub fn symlink(&mut self, path: &str, target: &str, uid: u32, gid: u32) -> Result<(), FsError> {
        let t = target.as_bytes();
        if t.is_empty() || t.len() > MAX_TARGET.min(self.sb.block_size as usize - 1) || t.contains(&0) {
            return Err(self.path_err(target, PathProblem::InvalidName));
        }
        let (mut dir, name) = self.parent_for_new(path)?;
        let g = (dir.ino - 1) / self.sb.inodes_per_group;
        let ino = self.alloc_inode(g, false)?;
        let mut inode = self.new_inode(ino, 0o120777, uid, gid, self.generation(ino));
        inode.set_links(1);
        if t.len() < 60 {
            inode.i_block_mut()[..t.len()].copy_from_slice(t);
            inode.set_size(t.len() as u64);
        } else {
            self.use_extents(&mut inode);
            self.set_contents(&mut inode, t)?;
        }
        self.write_inode(&mut inode)?;
        self.add_entry(&mut dir, &name, ino, FileKind::Symlink.dirent_type())
    }

    /// Creates a directory.
    pub fn mkdir(&mut self, path: &str, perm: u16, uid: u32, gid: u32) -> Result<(), FsError> {
        let (mut dir, name) = self.parent_for_new(path)?;
        let g = (dir.ino - 1) / self.sb.inodes_per_group;
        let ino = self.alloc_inode(g, true)?;
        let mut inode = self.new_inode(ino, 0o040000 | (perm & 0o7777), uid, gid, self.generation(ino));
        inode.set_links(2);
        self.use_extents(&mut inode);
        let goal = self.inode_goal(ino);
        let Some(&(pblk, _)) = self.alloc_blocks(1, goal)?.first() else {
            return Err(FsError::NoSpace { fs: self.name.clone(), what: "a directory block".into() });
        };
        let mut block = self.new_dir_block(ino, dir.ino);
        // The block checksum needs the inode's seed, which `inode` already determines.
        self.write_new_dir_block(&inode, pblk, &mut block)?;
        self.set_runs(&mut inode, &[super::filemap::Run { lblk: 0, pblk, len: 1, uninit: false }], 1)?;
        self.set_file_size(&mut inode, self.sb.block_size)?;
        self.write_inode(&mut inode)?;
        self.add_entry(&mut dir, &name, ino, FileKind::Directory.dirent_type())?;
        self.add_dir_link(&mut dir)
    }

    fn write_new_dir_block(&self, inode: &Inode, pblk: u64, block: &mut [u8]) -> Result<(), FsError> {
        if self.sb.has_csum() {
            let t = block.len() - 12;
            let c = super::bytes::crc32c_raw(self.seed_of(inode), &block[..t]);
            set32(block, t + 8, c);
        }
        self.write_block(pblk, block)
    }

    fn add_dir_link(&mut self, dir: &mut Inode) -> Result<(), FsError> {
        let links = dir.links();
        if links >= LINK_MAX - 1 || links == 1 {
            if self.sb.ro_compat & RO_DIR_NLINK == 0 {
                return Err(self.invalid("directory link count", links, "too many subdirectories without dir_nlink"));
            }
            dir.set_links(1);
        } else {
            dir.set_links(links + 1);
        }
        self.write_inode(dir)
    }

    fn drop_dir_link(&mut self, dir: &mut Inode) -> Result<(), FsError> {
        let links = dir.links();
        if links > 2 {
            dir.set_links(links - 1);
        }
        self.write_inode(dir)
    }

    /// Removes a non-directory; its inode and blocks are freed with the last link.
    pub fn unlink(&mut self, path: &str) -> Result<(), FsError> {
        let (mut dir, name) = self.resolve_parent(path)?;
        self.check_touchable(&dir, path)?;
        let Some(rec) = self.find_entry(&dir, &name)? else {
            return Err(self.path_err(path, PathProblem::NotFound));
        };
        let child = self.read_inode(rec.ino)?;
        if child.kind() == FileKind::Directory {
            return Err(self.path_err(path, PathProblem::IsDirectory));
        }
        self.check_touchable(&child, path)?;
        self.remove_entry(&dir, &name)?;
        let t = super::now();
        dir.set_time('m', t, 0);
        dir.set_time('c', t, 0);
        self.write_inode(&mut dir)?;
        self.drop_link(child)
    }

    /// One link fewer; the inode is released when none is left.
    fn drop_link(&mut self, mut inode: Inode) -> Result<(), FsError> {
        let links = inode.links().saturating_sub(1);
        inode.set_links(links);
        inode.set_time('c', super::now(), 0);
        if links > 0 {
            return self.write_inode(&mut inode);
        }
        self.release_inode(inode)
    }

    fn release_inode(&mut self, mut inode: Inode) -> Result<(), FsError> {
        let is_dir = inode.kind() == FileKind::Directory;
        inode.set_links(0);
        self.free_file_blocks(&mut inode)?;
        self.release_xattr_block(&mut inode)?;
        self.set_block_count(&mut inode, 0)?;
        inode.set_dtime(super::now());
        self.write_inode(&mut inode)?;
        self.free_inode(inode.ino, is_dir)
    }

    /// Removes an empty directory.
    pub fn rmdir(&mut self, path: &str) -> Result<(), FsError> {
        let (mut dir, name) = self.resolve_parent(path)?;
        self.check_touchable(&dir, path)?;
        let Some(rec) = self.find_entry(&dir, &name)? else {
            return Err(self.path_err(path, PathProblem::NotFound));
        };
        let child = self.read_inode(rec.ino)?;
        if child.kind() != FileKind::Directory {
            return Err(self.path_err(path, PathProblem::NotDirectory));
        }
        self.remove_dir_entry(&mut dir, &name, child, path)
    }

    fn remove_dir_entry(&mut self, dir: &mut Inode, name: &[u8], child: Inode, path: &str) -> Result<(), FsError> {
        if self.list_records(&child)?.iter().any(|r| r.name != b"." && r.name != b"..") {
            return Err(self.path_err(path, PathProblem::NotEmpty));
        }
        self.remove_entry(dir, name)?;
        let t = super::now();
        dir.set_time('m', t, 0);
        dir.set_time('c', t, 0);
        self.drop_dir_link(dir)?;
        self.release_inode(child)
    }

    /// Sets the permission bits (the file type is kept). Symlinks followed.
    pub fn set_mode(&mut self, path: &str, perm: u16) -> Result<(), FsError> {
        let mut inode = self.resolve(path, true)?;
        inode.set_mode((inode.mode() & 0xF000) | (perm & 0o7777));
        inode.set_time('c', super::now(), 0);
        self.write_inode(&mut inode)
    }

    /// Sets owner and group (of the link itself, like `lchown`).
    pub fn set_owner(&mut self, path: &str, uid: u32, gid: u32) -> Result<(), FsError> {
        let mut inode = self.resolve(path, false)?;
        inode.set_owner(uid, gid);
        inode.set_time('c', super::now(), 0);
        self.write_inode(&mut inode)
    }

    /// Sets access and modification times (seconds since the epoch) of the link itself.
    pub fn set_times(&mut self, path: &str, atime: i64, mtime: i64) -> Result<(), FsError> {
        let mut inode = self.resolve(path, false)?;
        inode.set_time('a', atime, 0);
        inode.set_time('m', mtime, 0);
        inode.set_time('c', super::now(), 0);
        self.write_inode(&mut inode)
    }

    /// Moves `from` to `to` (within or across directories), replacing a file or an empty
    /// directory at `to` as rename(2) does.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), FsError> {
        let (src_dir, src_name) = self.resolve_parent(from)?;
        let (dst_dir, dst_name) = self.resolve_parent(to)?;
        self.check_touchable(&src_dir, from)?;
        self.check_touchable(&dst_dir, to)?;
        let Some(src) = self.find_entry(&src_dir, &src_name)? else {
            return Err(self.path_err(from, PathProblem::NotFound));
        };
        if src_name == b"." || src_dir.ino == dst_dir.ino && src_name == dst_name {
            return Ok(());
        }
        let moving = self.read_inode(src.ino)?;
        let is_dir = moving.kind() == FileKind::Directory;
        if is_dir {
            self.check_not_inside(src.ino, dst_dir.ino, to)?;
        }
        let same = src_dir.ino == dst_dir.ino;
        let mut dst_dir = dst_dir;
        if let Some(existing) = self.find_entry(&dst_dir, &dst_name)? {
            if existing.ino == src.ino {
                return Ok(());
            }
            let victim = self.read_inode(existing.ino)?;
            self.check_touchable(&victim, to)?;
            match (is_dir, victim.kind() == FileKind::Directory) {
                (false, true) => return Err(self.path_err(to, PathProblem::IsDirectory)),
                (true, false) => return Err(self.path_err(to, PathProblem::NotDirectory)),
                (true, true) => self.remove_dir_entry(&mut dst_dir, &dst_name, victim, to)?,
                (false, false) => {
                    self.remove_entry(&dst_dir, &dst_name)?;
                    self.drop_link(victim)?;
                }
            }
        }
        // Work on fresh copies: the steps above may have rewritten the directories.
        // remove_entry only rewrites a block, so one copy serves when both are the same.
        let mut dst_dir = self.read_inode(dst_dir.ino)?;
        let mut src_dir = if same { dst_dir.clone() } else { self.read_inode(src_dir.ino)? };
        self.remove_entry(&src_dir, &src_name)?;
        self.add_entry(&mut dst_dir, &dst_name, src.ino, moving.kind().dirent_type())?;
        let mut moving = self.read_inode(src.ino)?;
        moving.set_time('c', super::now(), 0);
        self.write_inode(&mut moving)?;
        if is_dir && !same {
            self.retarget_entry(&mut moving, b"..", dst_dir.ino, FileKind::Directory.dirent_type())?;
            src_dir = self.read_inode(src_dir.ino)?;
            let t = super::now();
            src_dir.set_time('m', t, 0);
            src_dir.set_time('c', t, 0);
            self.drop_dir_link(&mut src_dir)?;
            let mut dst_dir = self.read_inode(dst_dir.ino)?;
            self.add_dir_link(&mut dst_dir)?;
        } else if !same {
            src_dir = self.read_inode(src_dir.ino)?;
            let t = super::now();
            src_dir.set_time('m', t, 0);
            src_dir.set_time('c', t, 0);
            self.write_inode(&mut src_dir)?;
        }
        Ok(())
    }

    /// Refuses to move directory `moving` under itself: walks up from `target` via "..".
    fn check_not_inside(&self, moving: u32, target: u32, path: &str) -> Result<(), FsError> {
        let mut cur = target;
        for _ in 0..self.sb.inodes_count.min(1 << 16) {
            if cur == moving {
                return Err(self.path_err(path, PathProblem::IntoItself));
            }
            if cur == ROOT_INO {
                return Ok(());
            }
            let dir = self.read_inode(cur)?;
            match self.find_entry(&dir, b"..")? {
                Some(r) => cur = r.ino,
                None => return Err(self.invalid(&format!("directory {cur}"), "..", "missing")),
            }
        }
        Err(self.invalid(&format!("directory {target}"), "..", "parent chain does not reach the root"))
    }
}
