//! btrfs, read-only: superblock (crc32c, xxhash64, sha256, blake2b checksums verified on
//! the superblock and on every tree block), `sys_chunk_array` + chunk tree (single device,
//! SINGLE/DUP), root tree, fs trees, inodes, directory items, file extents (inline,
//! regular, prealloc, holes; zlib, lzo, zstd), symlinks, and subvolumes: one
//! [`BtrfsFs`] is the view of one subvolume, crossing into nested subvolumes as a mount of
//! the filesystem does.

mod chunk;
mod file;
mod lzo;
mod sb;
mod subvol;
mod tree;

pub use file::decompress;
pub use sb::CsumType;
pub use subvol::{snapper_number, BtrfsReport, Subvolume};

use super::{components, FileKind, FileSystem, FsError, Meta};
use crate::device::Device;
use file::{DirEntry, Extent, Inode, DIR_INDEX, DIR_ITEM, EXTENT_DATA, FIRST_FREE_OBJECTID, INODE_ITEM, ROOT_ITEM, ROOT_REF};
use std::rc::Rc;
use tree::{Core, Key, Root};

/// The top-level subvolume (`BTRFS_FS_TREE_OBJECTID`).
pub const TOP_LEVEL: u64 = 5;
/// Most path components and subvolume crossings followed in one lookup.
const MAX_DEPTH: usize = 256;
/// Symlink size bound.
const MAX_LINK: u64 = 4096;
/// The inode a snapshot shows where its origin had a nested subvolume: an empty directory
/// (`BTRFS_EMPTY_SUBVOL_DIR_OBJECTID`; real inodes start at 256).
const EMPTY_SUBVOL_DIR: u64 = 2;

/// An inode as `lstat` sees it on a mount of the subvolume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BtrfsStat {
    /// The subvolume holding the inode (a nested subvolume's root is in that subvolume).
    pub subvolume: u64,
    /// Inode number (`st_ino`): 256 for a subvolume's root directory.
    pub ino: u64,
    /// `st_mode`: type and permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub size: u64,
}

/// A subvolume of an opened btrfs filesystem, read as a filesystem of its own.
#[derive(Clone)]
pub struct BtrfsFs {
    core: Rc<Core>,
    subvol: u64,
    root: Root,
    name: String,
}

/// Where an inode lives: (subvolume, its tree, inode number).
#[derive(Clone, Copy)]
struct Loc {
    subvol: u64,
    root: Root,
    ino: u64,
}

impl BtrfsFs {
    /// Opens the filesystem on `dev` and views its default subvolume.
    pub fn open(dev: &Device) -> Result<Self, FsError> {
        let core = Core::open(dev).map_err(|r| FsError::Read { device: dev.name.clone(), fstype: "btrfs", path: "/".into(), reason: r })?;
        let top = BtrfsFs { core: Rc::new(core), subvol: TOP_LEVEL, root: Root { bytenr: 0, level: 0 }, name: dev.name.clone() };
        let top = top.subvolume(TOP_LEVEL)?;
        let def = top.default_subvolume()?;
        top.subvolume(def)
    }

    /// The view of subvolume `id` of the same filesystem.
    pub fn subvolume(&self, id: u64) -> Result<Self, FsError> {
        let root = self.subvol_root(id).map_err(|r| self.err("/", r))?;
        Ok(BtrfsFs { core: self.core.clone(), subvol: id, root, name: self.core.dev.name.clone() })
    }

    /// Names this view in errors and reports (`btrfsvol:/dev/sda2/@home` style).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// This view's subvolume id.
    pub fn subvolume_id(&self) -> u64 {
        self.subvol
    }

    /// The filesystem's checksum algorithm.
    pub fn csum_type(&self) -> CsumType {
        self.core.sb.csum
    }

    /// The superblock's feature names (incompat and compat_ro flags).
    pub fn features(&self) -> Vec<&'static str> {
        self.core.sb.features()
    }

    fn err(&self, path: &str, reason: impl Into<String>) -> FsError {
        FsError::Read { device: self.name.clone(), fstype: "btrfs", path: path.into(), reason: reason.into() }
    }

    fn root_tree(&self) -> Root {
        Root { bytenr: self.core.sb.root, level: self.core.sb.root_level }
    }

    /// The tree root of subvolume `id` from its ROOT_ITEM (the newest, for snapshots).
    fn subvol_root(&self, id: u64) -> Result<Root, String> {
        let mut items = Vec::new();
        self.core.search(self.root_tree(), Key::new(id, ROOT_ITEM, 0), Key::new(id, ROOT_ITEM, u64::MAX), &mut items)?;
        let (_, d) = items.pop().ok_or_else(|| format!("subvolume {id} has no root item"))?;
        if d.len() < 239 {
            return Err(format!("subvolume {id} root item of {} bytes", d.len()));
        }
        let level = d[238];
        if level >= 8 {
            return Err(format!("subvolume {id} root item level {level} exceeds 7"));
        }
        Ok(Root { bytenr: crate::bytes::u64le(&d, 176), level })
    }

    fn inode_at(&self, loc: Loc) -> Result<Option<Inode>, String> {
        if loc.ino == EMPTY_SUBVOL_DIR {
            return Ok(Some(Inode { size: 0, nlink: 1, uid: 0, gid: 0, mode: 0o40755 }));
        }
        match self.core.get(loc.root, Key::new(loc.ino, INODE_ITEM, 0))? {
            Some(d) => Inode::parse(&d).map(Some).map_err(|e| format!("inode {} of subvolume {}: {e}", loc.ino, loc.subvol)),
            None => Ok(None),
        }
    }

    /// Follows a directory entry, into the subvolume's root directory if it is one.
    fn enter(&self, from: Loc, e: &DirEntry) -> Result<Loc, String> {
        if e.location_type == ROOT_ITEM {
            // Only the subvolume the child was made in holds it (ROOT_REF parent → child);
            // a snapshot of that parent shows an empty directory there.
            if self.core.get(self.root_tree(), Key::new(from.subvol, ROOT_REF, e.location_id))?.is_none() {
                return Ok(Loc { ino: EMPTY_SUBVOL_DIR, ..from });
            }
            let root = self.subvol_root(e.location_id)?;
            return Ok(Loc { subvol: e.location_id, root, ino: FIRST_FREE_OBJECTID });
        }
        Ok(Loc { ino: e.location_id, ..from })
    }

    fn find(&self, dir: Loc, name: &[u8]) -> Result<Option<DirEntry>, String> {
        let key = Key::new(dir.ino, DIR_ITEM, file::name_hash(name));
        let Some(d) = self.core.get(dir.root, key)? else { return Ok(None) };
        Ok(file::dir_entries(&d)?.into_iter().find(|e| e.name == name))
    }

    /// The inode at `path` (the last component not followed if a symlink).
    fn lookup(&self, path: &str) -> Result<Option<(Loc, Inode)>, FsError> {
        let mut loc = Loc { subvol: self.subvol, root: self.root, ino: FIRST_FREE_OBJECTID };
        let mut ino = self.inode_at(loc).map_err(|r| self.err(path, r))?.ok_or_else(|| self.err(path, "subvolume has no root directory"))?;
        for (i, name) in components(path).enumerate() {
            if i >= MAX_DEPTH {
                return Err(self.err(path, "too many components"));
            }
            if FileKind::from_mode(ino.mode as u16) != FileKind::Dir {
                return Ok(None);
            }
            let Some(e) = self.find(loc, name.as_bytes()).map_err(|r| self.err(path, r))? else { return Ok(None) };
            loc = self.enter(loc, &e).map_err(|r| self.err(path, r))?;
            let Some(next) = self.inode_at(loc).map_err(|r| self.err(path, r))? else {
                return Err(self.err(path, format!("directory entry {name} points to missing inode {}", loc.ino)));
            };
            ino = next;
        }
        Ok(Some((loc, ino)))
    }

    /// The directory entries of `dir` in index order.
    fn entries(&self, dir: Loc) -> Result<Vec<DirEntry>, String> {
        if dir.ino == EMPTY_SUBVOL_DIR {
            return Ok(Vec::new());
        }
        let mut items = Vec::new();
        self.core.search(dir.root, Key::new(dir.ino, DIR_INDEX, 0), Key::new(dir.ino, DIR_INDEX, u64::MAX), &mut items)?;
        let mut out = Vec::with_capacity(items.len());
        for (_, d) in items {
            out.extend(file::dir_entries(&d)?);
        }
        Ok(out)
    }

    /// File bytes `[0, want)`; holes and preallocated ranges read as zeros.
    fn read_data(&self, loc: Loc, want: u64, path: &str) -> Result<Vec<u8>, FsError> {
        let mut out = vec![0u8; want as usize];
        if want == 0 {
            return Ok(out);
        }
        let mut items = Vec::new();
        self.core
            .search(loc.root, Key::new(loc.ino, EXTENT_DATA, 0), Key::new(loc.ino, EXTENT_DATA, want - 1), &mut items)
            .map_err(|r| self.err(path, r))?;
        let sectorsize = self.core.sb.sectorsize;
        for (k, d) in items {
            let at = k.offset;
            let ext = Extent::parse(&d).map_err(|r| self.err(path, format!("extent at file offset {at}: {r}")))?;
            let bytes = match ext {
                Extent::Inline { compression: 0, data, .. } => data,
                Extent::Inline { compression, ram_bytes, data } => file::decompress(compression, &data, ram_bytes, sectorsize)
                    .map_err(|r| self.err(path, format!("inline extent at file offset {at}: {r}")))?,
                Extent::Regular { prealloc: true, .. } | Extent::Regular { disk_bytenr: 0, .. } => continue,
                Extent::Regular { compression: 0, disk_bytenr, offset, num_bytes, .. } => {
                    let n = num_bytes.min(want.saturating_sub(at));
                    let start = disk_bytenr.checked_add(offset).ok_or_else(|| self.err(path, "extent address overflows"))?;
                    self.core.read_logical(start, n as usize).map_err(|r| self.err(path, r))?
                }
                Extent::Regular { compression, disk_bytenr, disk_num_bytes, offset, num_bytes, ram_bytes, .. } => {
                    if disk_num_bytes > file::MAX_UNCOMPRESSED {
                        return Err(self.err(path, format!("compressed extent disk_num_bytes {disk_num_bytes} exceeds 131072")));
                    }
                    let raw = self.core.read_logical(disk_bytenr, disk_num_bytes as usize).map_err(|r| self.err(path, r))?;
                    let all = file::decompress(compression, &raw, ram_bytes, sectorsize)
                        .map_err(|r| self.err(path, format!("extent at file offset {at}: {r}")))?;
                    let s = usize::try_from(offset).unwrap_or(usize::MAX).min(all.len());
                    let e = s.saturating_add(usize::try_from(num_bytes).unwrap_or(usize::MAX)).min(all.len());
                    all[s..e].to_vec()
                }
            };
            if at >= want {
                continue;
            }
            let n = (bytes.len() as u64).min(want - at) as usize;
            out[at as usize..at as usize + n].copy_from_slice(&bytes[..n]);
        }
        Ok(out)
    }
}

impl BtrfsFs {
    /// The inode at `path` (a final symlink not followed); `None` if it does not exist.
    pub fn stat(&self, path: &str) -> Result<Option<BtrfsStat>, FsError> {
        Ok(self.lookup(path)?.map(|(loc, i)| BtrfsStat {
            subvolume: loc.subvol,
            ino: loc.ino,
            mode: i.mode,
            uid: i.uid,
            gid: i.gid,
            nlink: i.nlink,
            size: i.size,
        }))
    }
}

impl FileSystem for BtrfsFs {
    fn device(&self) -> &str {
        &self.name
    }

    fn metadata(&self, path: &str) -> Result<Option<Meta>, FsError> {
        Ok(self.lookup(path)?.map(|(_, i)| Meta { kind: FileKind::from_mode(i.mode as u16), size: i.size }))
    }

    fn read_dir(&self, path: &str) -> Result<Vec<(String, FileKind)>, FsError> {
        let (loc, ino) = self.lookup(path)?.ok_or_else(|| self.err(path, "no such directory"))?;
        if FileKind::from_mode(ino.mode as u16) != FileKind::Dir {
            return Err(self.err(path, "not a directory"));
        }
        let entries = self.entries(loc).map_err(|r| self.err(path, r))?;
        Ok(entries
            .into_iter()
            .map(|e| (String::from_utf8_lossy(&e.name).into_owned(), FileKind::from_dirent_type(e.file_type)))
            .collect())
    }

    fn read_link(&self, path: &str) -> Result<String, FsError> {
        let (loc, ino) = self.lookup(path)?.ok_or_else(|| self.err(path, "no such symlink"))?;
        if FileKind::from_mode(ino.mode as u16) != FileKind::Symlink || ino.size > MAX_LINK {
            return Err(self.err(path, "not a symlink"));
        }
        let b = self.read_data(loc, ino.size, path)?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    fn read_head(&self, path: &str, max: u64) -> Result<Vec<u8>, FsError> {
        let (loc, ino) = self.lookup(path)?.ok_or_else(|| self.err(path, "no such file"))?;
        if FileKind::from_mode(ino.mode as u16) != FileKind::File {
            return Err(self.err(path, "not a regular file"));
        }
        self.read_data(loc, ino.size.min(max).min(1 << 30), path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;
    use std::sync::Arc;

    /// The fuzz seeds (`testdata/inspect/btrfs-fuzz-seeds.sh`: `mkfs.btrfs --rootdir` of a
    /// known tree, one per checksum type and compression), decoded and read back.
    #[test]
    fn mkfs_seeds_read_back_the_tree_they_were_made_from() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/inspect/fuzz-seeds/btrfs_reader");
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let mut img = vec![0u8; 16 << 20];
            let mut p = 0;
            while p < data.len() {
                let off = crate::bytes::u32le(&data, p) as usize;
                let len = usize::from(crate::bytes::u16le(&data, p + 4));
                img[off..off + len].copy_from_slice(&data[p + 6..p + 6 + len]);
                p += 6 + len;
            }
            let fs = BtrfsFs::open(&Device::new("/dev/vda", Arc::new(MemDevice(img)))).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(name.contains(fs.csum_type().name()), "{name}");
            assert_eq!(fs.read_file("/etc/hostname", 100).unwrap(), b"guest\n");
            let text = fs.read_file("/etc/text", 1 << 20).unwrap();
            assert_eq!(text.len(), 40000);
            assert!(text.chunks(18).all(|c| b"compressible line\n".starts_with(c)), "{name}");
            assert_eq!(fs.read_link("/bin/link").unwrap(), "../etc/hostname");
            let sparse = fs.read_file("/sub/sparse", 1 << 20).unwrap();
            assert_eq!(sparse.len(), 65536 + 4);
            assert!(sparse[..65536].iter().all(|&b| b == 0) && &sparse[65536..] == b"end\n");
            assert_eq!(fs.metadata("/sub/dir/random").unwrap().unwrap().size, 3000);
            let subs = fs.subvolumes().unwrap();
            assert_eq!(subs.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(), ["", "sub"]);
            let comp = name.rsplit('-').next().unwrap();
            let (found, complete) = fs.compression(&subs).unwrap();
            assert!(complete);
            assert_eq!(found, if comp == "no" { vec![] } else { vec![comp.to_string()] }, "{name}");
            n += 1;
        }
        assert_eq!(n, 4);
    }

    #[test]
    fn name_hash_is_btrfs_crc32c() {
        // btrfs_name_hash("default"), as `btrfs inspect-internal dump-tree` prints the
        // root tree directory's DIR_ITEM key offset.
        assert_eq!(file::name_hash(b"default"), 0x8dbf_c2d2);
    }
}
