//! btrfs, read and written through the `btrfs-transaction` crate (copy-on-write tree blocks,
//! delayed refs, free-space tree, commit with superblock mirrors and backup roots) over a
//! [`Volume`]. Single device; one subvolume is the view paths start in (the default one, or
//! one named by id or path), and lookups cross into nested subvolumes as a mount does.
//!
//! Edits (create, replace, grow/shrink, unlink, rename, mkdir, symlink, chmod, chown, xattrs)
//! run in one transaction committed by [`Btrfs::commit`], which then re-reads what it wrote
//! and verifies its structure (`verify`): a broken block fails the commit in one line (the
//! pipeline then writes no output). A subvolume whose tree blocks are shared with a snapshot
//! is refused (the crate does not unshare them); on xxhash64, sha256
//! and blake2b filesystems new data is checksummed in that algorithm, but freeing an older
//! data extent is refused (the crate trims data checksums as 4-byte CRC32C). A panic inside
//! the crate on bad metadata comes back as an error and the filesystem is left unwritten.

mod dir;
mod error;
mod file;
mod inode;
mod io;
mod ops;
mod shared;
mod super_check;
mod tree;
mod verify;
mod xattr;

pub use ops::Metadata;
pub use verify::Stats as VerifyStats;

use crate::fs::{FsError, Volume};
use btrfs_disk::superblock::ChecksumType;
use btrfs_transaction::{Filesystem, Transaction};
use error::Error;
use io::VolIo;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

/// The top-level subvolume.
pub const TOP_LEVEL: u64 = 5;
/// A subvolume's root directory inode.
const ROOT_DIR: u64 = 256;

/// An inode: (its subvolume's tree, inode number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Loc {
    tree: u64,
    ino: u64,
}

/// The crate's filesystem and the open transaction.
struct Core<'a> {
    fs: Filesystem<VolIo<'a>>,
    tx: Option<Transaction<VolIo<'a>>>,
    csum_type: ChecksumType,
    /// Data extents written in this transaction → their checksum items' offsets.
    fresh: HashMap<u64, Vec<u64>>,
    /// Subvolumes checked for blocks shared with snapshots.
    unshared: HashSet<u64>,
}

impl<'a> Core<'a> {
    fn parts(&mut self) -> Result<(&mut Transaction<VolIo<'a>>, &mut Filesystem<VolIo<'a>>), Error> {
        self.begin()?;
        match self.tx.as_mut() {
            Some(tx) => Ok((tx, &mut self.fs)),
            None => Err(Error::Corrupt("no transaction".into())),
        }
    }
}

/// A btrfs filesystem opened for editing, viewed from one subvolume.
pub struct Btrfs<'a> {
    /// Shared by every view of the filesystem: one transaction per filesystem.
    core: Rc<RefCell<Core<'a>>>,
    name: String,
    subvol: u64,
    /// Set when an edit failed half-way or the crate panicked: nothing more is written.
    broken: Rc<Cell<bool>>,
}

/// Runs `f`, turning a panic into an error.
fn guarded<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_else(|| "panic".into());
            Err(Error::Corrupt(format!("btrfs-transaction gave up: {}", msg.lines().next().unwrap_or(""))))
        }
    }
}

impl<'a> Btrfs<'a> {
    /// Opens the filesystem in `vol` and views its default subvolume; `name` prefixes errors.
    pub fn open(vol: Volume<'a>, name: &str) -> Result<Self, FsError> {
        let csum_type = super_check::check(&vol, name)?;
        let fs = guarded(|| Ok(Filesystem::open(VolIo::new(vol, name))?)).map_err(|e| e.into_fs(name, "/"))?;
        let mut b = Btrfs { core: Rc::new(RefCell::new(Core { fs, tx: None, csum_type, fresh: HashMap::new(), unshared: HashSet::new() })), name: name.to_string(), subvol: TOP_LEVEL, broken: Rc::new(Cell::new(false)) };
        let def = b.run("/", |c| c.default_subvolume())?;
        b.view(def)?;
        Ok(b)
    }

    /// Views subvolume `id` (paths start at its root directory).
    pub fn view(&mut self, id: u64) -> Result<(), FsError> {
        let ok = self.run("/", |c| Ok(c.fs.root_bytenr(id).is_some_and(|b| b != 0) && (id == TOP_LEVEL || id >= 256)))?;
        if !ok {
            return Err(FsError::Invalid { fs: self.name.clone(), field: "subvolume".into(), value: id.to_string(), reason: "no such subvolume".into() });
        }
        self.subvol = id;
        Ok(())
    }

    /// Views the subvolume at `path` from the top level (`@`, `@/var`, `/.snapshots/1/snapshot`).
    pub fn view_path(&mut self, path: &str) -> Result<(), FsError> {
        let id = self.run(path, |c| {
            let at = c.walk(Loc { tree: TOP_LEVEL, ino: ROOT_DIR }, path)?;
            if at.ino != ROOT_DIR {
                return Err(Error::Unsupported(format!("subvolume path {path}: a directory, not a subvolume")));
            }
            Ok(at.tree)
        })?;
        self.view(id)
    }

    /// Another view of the same filesystem (same transaction), on the same subvolume until
    /// [`view`](Self::view)/[`view_path`](Self::view_path) moves it; `name` names it in errors.
    pub fn another_view(&self, name: &str) -> Self {
        Btrfs { core: self.core.clone(), name: name.to_string(), subvol: self.subvol, broken: self.broken.clone() }
    }

    /// The default subvolume's id (what mounting the device without options shows).
    pub fn default_subvolume(&self) -> Result<u64, FsError> {
        self.run("/", |c| c.default_subvolume())
    }

    /// The viewed subvolume's id.
    pub fn subvolume(&self) -> u64 {
        self.subvol
    }

    /// The filesystem's name in errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes every edit: the transaction's commit (tree blocks on all mirrors, superblock
    /// with backup roots on every superblock copy). With several views, the last one
    /// committed commits; the others only let go.
    pub fn commit(self) -> Result<(), FsError> {
        let Btrfs { core, name, broken, .. } = self;
        if broken.get() {
            return Err(FsError::Unclean { fs: name, reason: "btrfs: an edit failed half-way; nothing was committed".into() });
        }
        let Ok(core) = Rc::try_unwrap(core) else { return Ok(()) };
        let mut core = core.into_inner();
        let Some(tx) = core.tx.take() else { return Ok(()) };
        guarded(|| {
            tx.commit(&mut core.fs)?;
            verify::verify(&mut core.fs)
        })
        .map(|_| ())
        .map_err(|e| e.into_fs(&name, "/"))
    }

    /// Verifies the structure of the committed filesystem in `vol` as [`commit`](Self::commit)
    /// does after writing (trees whose roots are of the superblock's generation).
    pub fn verify_image(vol: Volume<'a>, name: &str) -> Result<VerifyStats, FsError> {
        super_check::check(&vol, name)?;
        guarded(|| {
            let mut fs = Filesystem::open(VolIo::new(vol, name))?;
            verify::verify(&mut fs)
        })
        .map_err(|e| e.into_fs(name, "/"))
    }

    /// Runs a read (`&self`) step, errors named for `path`.
    fn run<T>(&self, path: &str, f: impl FnOnce(&mut Core<'a>) -> Result<T, Error>) -> Result<T, FsError> {
        if self.broken.get() {
            return Err(FsError::Unclean { fs: self.name.clone(), reason: "btrfs: an earlier edit failed half-way".into() });
        }
        let mut core = self.core.borrow_mut();
        let r = guarded(|| f(&mut core));
        if let Err(Error::Corrupt(_) | Error::Io(_)) = &r {
            self.broken.set(true);
        }
        r.map_err(|e| e.into_fs(&self.name, path))
    }

    /// Runs an edit: a failure after the first change leaves the transaction unusable.
    fn edit<T>(&mut self, path: &str, f: impl FnOnce(&mut Core<'a>) -> Result<T, Error>) -> Result<T, FsError> {
        let r = self.run(path, f);
        if let Err(e) = &r {
            if e.path_problem().is_none() && !matches!(e, FsError::Unsupported { .. }) {
                self.broken.set(true);
            }
        }
        r
    }
}
