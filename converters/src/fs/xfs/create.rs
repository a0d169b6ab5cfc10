//! Creating and removing names: new regular files, directories and symlinks (inline and
//! remote), unlink and rename, in shortform and block directories. Each operation gathers every
//! change in a [`Txn`] (free space and inode indexes of the AGs touched, inodes, data
//! blocks), checks it all in memory, then writes: a refusal leaves the volume untouched.

use super::alloc::AgSpace;
use super::bmap::Extent;
use super::file::Blocks;
use super::bytes::set32;
use super::bytes::{set64, set_crc};
use super::dir_write::ftype_of;
use super::ialloc::AgInodes;
use super::inode::{FileKind, Inode, FMT_BTREE, FMT_EXTENTS, FMT_LOCAL, MTIME};
use super::release::{Fork, Mapping};
use super::Xfs;
use crate::fs::{FsError, PathProblem};
use std::collections::BTreeMap;

const MAX_TARGET: usize = 1024;
const SYMLINK_HDR: usize = 56;

/// Everything one operation changes, applied by [`Xfs::commit`].
#[derive(Default)]
pub(super) struct Txn {
    pub spaces: BTreeMap<u64, AgSpace>,
    pub inodes: BTreeMap<u64, AgInodes>,
    /// Inodes to write, in order (a later copy of the same inode wins).
    pub nodes: Vec<Inode>,
    /// Blocks to write: (filesystem block, bytes).
    pub data: Vec<(u64, Vec<u8>)>,
}

impl Txn {
    /// Lays the blocks this transaction will write over `buf`, read from block `fsb` on.
    pub fn overlay(&self, buf: &mut [u8], fsb: u64, bs: usize) {
        for (k, chunk) in buf.chunks_mut(bs).enumerate() {
            if let Some((_, b)) = self.data.iter().rev().find(|(f, _)| *f == fsb + k as u64) {
                let n = chunk.len().min(b.len());
                chunk[..n].copy_from_slice(&b[..n]);
            }
        }
    }
}

fn split(path: &str) -> (String, Vec<u8>) {
    let t = path.trim_end_matches('/');
    match t.rfind('/') {
        Some(k) => (if k == 0 { "/".to_string() } else { t[..k].to_string() }, t[k + 1..].as_bytes().to_vec()),
        None => ("/".to_string(), t.as_bytes().to_vec()),
    }
}

impl Xfs<'_> {
    fn ag_of_ino(&self, ino: u64) -> u64 {
        ino >> (self.sb.agblklog + self.sb.inopblog)
    }

    fn inodes_entry<'t>(&self, t: &'t mut Txn, ag: u64) -> Result<&'t mut AgInodes, FsError> {
        if !t.inodes.contains_key(&ag) {
            let ai = self.inodes_load(ag)?;
            t.inodes.insert(ag, ai);
        }
        t.inodes.get_mut(&ag).ok_or_else(|| self.invalid("AG", ag, "not loaded"))
    }

    /// Checks every AG's plan, then writes data, free space, inode indexes, superblock
    /// counters and inodes.
    pub(super) fn commit(&mut self, mut t: Txn) -> Result<(), FsError> {
        for (ag, ai) in t.inodes.iter_mut() {
            if !t.spaces.contains_key(ag) {
                let sp = self.space_load(*ag)?;
                t.spaces.insert(*ag, sp);
            }
            let sp = t.spaces.get_mut(ag).ok_or_else(|| self.invalid("AG", ag, "not loaded"))?;
            self.inodes_prepare(ai, sp)?;
        }
        for sp in t.spaces.values_mut() {
            self.space_prepare(sp)?;
        }
        for (fsb, b) in &t.data {
            self.write_fsb(b, *fsb, "new data")?;
        }
        let mut free = 0;
        for sp in t.spaces.values_mut() {
            free += self.space_write(sp)?;
        }
        let (mut ifree, mut icount) = (0, 0);
        for ai in t.inodes.values_mut() {
            let (f, c) = self.inodes_write(ai)?;
            ifree += f;
            icount += c;
        }
        self.sb_add_free(free)?;
        self.sb_add_inodes(ifree, icount)?;
        for mut n in t.nodes {
            self.write_inode(&mut n)?;
        }
        Ok(())
    }

    /// The parent directory of `path` and the new name, which must not exist yet.
    fn new_name(&self, path: &str) -> Result<(Inode, Vec<u8>), FsError> {
        let (dir, name) = split(path);
        if name.is_empty() || name == b"." || name == b".." || name.len() > 255 || name.contains(&b'/') || name.contains(&0) {
            return Err(self.path_err(path, PathProblem::InvalidName));
        }
        let parent = self.resolve(&dir, true)?;
        if parent.kind() != FileKind::Directory {
            return Err(self.path_err(path, PathProblem::NotDirectory));
        }
        if self.dir_lookup(&parent, &name)?.is_some() {
            return Err(self.path_err(path, PathProblem::Exists));
        }
        Ok((parent, name))
    }

    /// Allocates `data.len()` bytes of blocks for new inode `i` and queues the data.
    fn plan_data(&self, t: &mut Txn, i: &mut Inode, data: &[u8]) -> Result<Vec<Extent>, FsError> {
        let bs = self.sb.block as usize;
        let need = data.len().div_ceil(bs) as u64;
        let mut ext = Vec::new();
        if need > 0 {
            self.plan_file_blocks(i.ino, &[], need, Blocks::Data(0), &mut ext, &mut t.spaces)?;
        }
        for e in &ext {
            let start = e.off as usize * bs;
            let mut b = vec![0u8; e.len as usize * bs];
            let have = data.len().saturating_sub(start).min(b.len());
            b[..have].copy_from_slice(&data[start..start + have]);
            t.data.push((e.fsb, b));
        }
        let bmbt = self.plan_data_fork(i, &ext, &[], &mut t.spaces, &format!("inode {}", i.ino))?;
        i.set_nblocks(ext.iter().map(|e| e.len).sum::<u64>() + bmbt.len() as u64);
        t.data.extend(bmbt);
        Ok(ext)
    }

    /// Takes a new inode near `parent` and links it there under `name`.
    fn plan_new(&self, t: &mut Txn, parent: &mut Inode, name: &[u8], mode: u16, uid: u32, gid: u32, what: &str) -> Result<Inode, FsError> {
        self.check_can_allocate(what)?;
        let ag = self.ag_of_ino(parent.ino);
        let ino = self.inode_alloc(ag, t)?;
        let mut i = self.new_inode(ino, mode, uid, gid)?;
        self.inherit_label(parent, &mut i)?;
        self.dir_add(t, parent, name, ino, ftype_of(i.kind(), mode), what)?;
        parent.touch_ctime();
        let (s, ns) = super::now();
        parent.set_time(MTIME, s, ns);
        Ok(i)
    }

    /// Creates regular file `path` holding `data`.
    pub fn create_file(&mut self, path: &str, data: &[u8], perm: u16, uid: u32, gid: u32) -> Result<(), FsError> {
        let (mut parent, name) = self.new_name(path)?;
        let mut t = Txn::default();
        let mut i = self.plan_new(&mut t, &mut parent, &name, 0o100000 | (perm & 0o7777), uid, gid, path)?;
        self.plan_data(&mut t, &mut i, data)?;
        i.set_size(data.len() as u64);
        t.nodes.push(parent);
        t.nodes.push(i);
        self.commit(t)
    }

    /// Creates directory `path` (empty, shortform).
    pub fn mkdir(&mut self, path: &str, perm: u16, uid: u32, gid: u32) -> Result<(), FsError> {
        let (mut parent, name) = self.new_name(path)?;
        let mut t = Txn::default();
        let mut i = self.plan_new(&mut t, &mut parent, &name, 0o040000 | (perm & 0o7777), uid, gid, path)?;
        self.sf_init(&mut i, parent.ino, path)?;
        i.set_nlink(2);
        parent.set_nlink(parent.nlink() + 1);
        t.nodes.push(parent);
        t.nodes.push(i);
        self.commit(t)
    }

    /// Creates symbolic link `path` -> `target`: inline when it fits the inode, else in
    /// blocks (v5: each with its XSLM header).
    pub fn symlink(&mut self, path: &str, target: &[u8], uid: u32, gid: u32) -> Result<(), FsError> {
        if target.is_empty() || target.len() > MAX_TARGET {
            return Err(self.path_err(path, PathProblem::InvalidName));
        }
        let (mut parent, name) = self.new_name(path)?;
        let mut t = Txn::default();
        let mut i = self.plan_new(&mut t, &mut parent, &name, 0o120777, uid, gid, path)?;
        if target.len() <= i.data_fork().len() {
            i.set_local_data(target);
        } else {
            let bs = self.sb.block as usize;
            let per = if self.sb.v5 { bs - SYMLINK_HDR } else { bs };
            let nblocks = target.len().div_ceil(per);
            let ext = self.plan_data(&mut t, &mut i, &vec![0u8; nblocks * bs])?;
            t.data.retain(|(fsb, _)| !ext.iter().any(|e| e.fsb == *fsb));
            let mut k = 0usize;
            for e in &ext {
                for j in 0..e.len {
                    let part = &target[(k * per).min(target.len())..((k + 1) * per).min(target.len())];
                    let mut b = vec![0u8; bs];
                    if self.sb.v5 {
                        b[0..4].copy_from_slice(b"XSLM");
                        set32(&mut b, 4, (k * per) as u32);
                        set32(&mut b, 8, part.len() as u32);
                        b[16..32].copy_from_slice(&self.sb.meta_uuid);
                        set64(&mut b, 32, i.ino);
                        let fsb = e.fsb + j;
                        let ag = fsb >> self.sb.agblklog;
                        set64(&mut b, 40, self.daddr(ag, fsb & ((1 << self.sb.agblklog) - 1)));
                        b[SYMLINK_HDR..SYMLINK_HDR + part.len()].copy_from_slice(part);
                        set_crc(&mut b, 12);
                    } else {
                        b[..part.len()].copy_from_slice(part);
                    }
                    t.data.push((e.fsb + j, b));
                    k += 1;
                }
            }
            i.set_size(target.len() as u64);
        }
        t.nodes.push(parent);
        t.nodes.push(i);
        self.commit(t)
    }

    /// Drops one link to `i`; at zero, frees its blocks and the inode.
    fn plan_unlink_inode(&self, t: &mut Txn, mut i: Inode) -> Result<(), FsError> {
        let links = i.nlink();
        if links > 1 {
            i.set_nlink(links - 1);
            i.touch_ctime();
            t.nodes.push(i);
            return Ok(());
        }
        if !i.attr_fork().is_empty() && i.aformat() != FMT_LOCAL {
            // Leaf/node attribute blocks and remote values, and the fork's bmbt blocks.
            let (ext, bmbt) = self.attr_map(&i)?;
            self.release_fork(t, i.ino, Fork::Attr, &ext, &bmbt)?;
        }
        match i.format() {
            FMT_LOCAL => {}
            FMT_EXTENTS | FMT_BTREE => {
                // Reflinked extents lose one reference; only unshared blocks become free.
                let (ext, bmbt) = self.data_map(&i)?;
                self.release_fork(t, i.ino, Fork::Data, &ext, &bmbt)?;
            }
            f => return Err(self.invalid(&format!("inode {} di_format", i.ino), f, "unknown")),
        }
        let ai = self.inodes_entry(t, self.ag_of_ino(i.ino))?;
        self.inode_give(ai, i.ino)?;
        let gen = i.generation();
        let mut dead = Inode { ino: i.ino, raw: i.raw.clone() };
        dead.set_mode(0);
        dead.set_nlink(0);
        dead.set_data_extents(&[]);
        dead.set_size(0);
        dead.set_nblocks(0);
        dead.set_reflinked(false);
        dead.clear_attr_fork();
        set32(&mut dead.raw, 92, gen.wrapping_add(1));
        t.nodes.push(dead);
        Ok(())
    }

    /// Releases every extent and bmbt block of `ino`'s `fork`.
    fn release_fork(&self, t: &mut Txn, ino: u64, fork: Fork, ext: &[Extent], bmbt: &[u64]) -> Result<(), FsError> {
        for e in ext {
            self.release(&mut t.spaces, Mapping { ino, fork, off: Some(e.off), fsb: e.fsb, len: e.len, unwritten: e.unwritten })?;
        }
        for &b in bmbt {
            self.release(&mut t.spaces, Mapping { ino, fork, off: None, fsb: b, len: 1, unwritten: false })?;
        }
        Ok(())
    }

    /// Removes the name `path` (not a directory).
    pub fn unlink(&mut self, path: &str) -> Result<(), FsError> {
        let (dir, name) = split(path);
        let mut parent = self.resolve(&dir, true)?;
        let i = self.resolve(path, false)?;
        if i.kind() == FileKind::Directory {
            return Err(self.path_err(path, PathProblem::IsDirectory));
        }
        self.check_can_allocate(path)?;
        let mut t = Txn::default();
        self.dir_remove(&mut t, &mut parent, &name, path)?;
        parent.touch_ctime();
        let (s, ns) = super::now();
        parent.set_time(MTIME, s, ns);
        t.nodes.push(parent);
        self.plan_unlink_inode(&mut t, i)?;
        self.commit(t)
    }

    /// Renames `from` to `to` (a file there is replaced; a directory there is refused).
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), FsError> {
        let (fdir, fname) = split(from);
        let (tdir, tname) = split(to);
        let moving = self.resolve(from, false)?;
        if tname.is_empty() || tname == b"." || tname == b".." || tname.len() > 255 || tname.contains(&0) {
            return Err(self.path_err(to, PathProblem::InvalidName));
        }
        let src_parent = self.resolve(&fdir, true)?;
        let dst_parent = self.resolve(&tdir, true)?;
        if dst_parent.kind() != FileKind::Directory {
            return Err(self.path_err(to, PathProblem::NotDirectory));
        }
        if src_parent.ino == dst_parent.ino && fname == tname {
            return Ok(());
        }
        if moving.kind() == FileKind::Directory {
            // Never into itself: no directory on the way to the destination is the one moved.
            let mut at = String::new();
            for c in tdir.split('/').filter(|c| !c.is_empty()) {
                at.push('/');
                at.push_str(c);
                if self.resolve(&at, true)?.ino == moving.ino {
                    return Err(self.path_err(to, PathProblem::IntoItself));
                }
            }
        }
        self.check_can_allocate(from)?;
        let mut t = Txn::default();
        let mut src = src_parent;
        let same = src.ino == dst_parent.ino;
        let mut dst = if same { None } else { Some(dst_parent) };
        if let Some(old) = self.dir_lookup(dst.as_ref().unwrap_or(&src), &tname)? {
            if old == moving.ino {
                // Two names of one inode: rename(2) leaves both.
                return Ok(());
            }
            let victim = self.read_inode(old)?;
            if victim.kind() == FileKind::Directory {
                return Err(self.path_err(to, PathProblem::Exists));
            }
            self.dir_remove(&mut t, dst.as_mut().unwrap_or(&mut src), &tname, to)?;
            self.plan_unlink_inode(&mut t, victim)?;
        }
        self.dir_remove(&mut t, &mut src, &fname, from)?;
        let ft = ftype_of(moving.kind(), moving.mode());
        self.dir_add(&mut t, dst.as_mut().unwrap_or(&mut src), &tname, moving.ino, ft, to)?;
        let (s, ns) = super::now();
        let mut moved = moving;
        if moved.kind() == FileKind::Directory {
            if let Some(d) = dst.as_mut() {
                self.dir_set_parent(&mut t, &mut moved, d.ino, from)?;
                d.set_nlink(d.nlink() + 1);
                src.set_nlink(src.nlink().saturating_sub(1));
            }
        }
        moved.touch_ctime();
        for p in std::iter::once(&mut src).chain(dst.as_mut()) {
            p.touch_ctime();
            p.set_time(MTIME, s, ns);
        }
        t.nodes.push(src);
        t.nodes.extend(dst);
        t.nodes.push(moved);
        self.commit(t)
    }
}
