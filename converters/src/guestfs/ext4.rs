//! [`Ext4GuestFs`]: the guest's filesystems, opened for editing with the host-side writers
//! ([`crate::fs::open`]: ext2/3/4, XFS, btrfs, FAT), mounted at their guest mountpoints (`/`, and e.g.
//! a separate `/boot`) and seen through the [`GuestFs`] interface the Linux conversion uses.
//!
//! Every path is first resolved with the shared [`resolve`] rules over the whole mount tree
//! (so a symlink on the root filesystem into `/boot` lands in the `/boot` filesystem); the
//! canonical path then goes to the filesystem of the longest mountpoint that contains it.

use super::btrfs as gbtrfs;
use super::fat as vfat;
use super::xfs as gxfs;
use super::fs_error::{self, not_found};
use super::{resolve, FileKind, GuestFs, GuestFsError, Stat};
use crate::fs::ext4::{Ext4, FileKind as ExtKind};
use crate::fs::fat::Fat;
use crate::fs::FsError;
use crate::fs::Filesystem as Mount;

/// Largest file `read_file` returns (initramfs images are tens of MiB).
pub const MAX_READ: u64 = 1 << 30;

/// Guest filesystems mounted for editing: the ext root, further ext filesystems (`/boot`,
/// `/usr`) and FAT ones (`/boot/efi`).
pub struct Ext4GuestFs<'a> {
    /// (mountpoint, filesystem), the root first.
    mounts: Vec<(String, Mount<'a>)>,
}

impl<'a> Ext4GuestFs<'a> {
    /// The guest whose root filesystem is `root`.
    pub fn new(root: Ext4<'a>) -> Self {
        Self::with_root(Mount::Ext(root))
    }

    /// The guest whose root filesystem is `root`, of any type [`crate::fs::open`] returns.
    pub fn with_root(root: Mount<'a>) -> Self {
        Ext4GuestFs {
            mounts: vec![("/".to_string(), root)],
        }
    }

    /// Mounts `fs`, of any type, at the guest directory `mountpoint`.
    pub fn mount_fs(&mut self, mountpoint: &str, fs: Mount<'a>) -> Result<(), GuestFsError> {
        self.attach(mountpoint, fs)
    }

    /// Mounts `fs` at the guest directory `mountpoint` (which must exist, as in `mount`).
    pub fn mount(&mut self, mountpoint: &str, fs: Ext4<'a>) -> Result<(), GuestFsError> {
        self.attach(mountpoint, Mount::Ext(fs))
    }

    /// Mounts the FAT filesystem `fs` (the ESP) at the guest directory `mountpoint`.
    pub fn mount_fat(&mut self, mountpoint: &str, fs: Fat<'a>) -> Result<(), GuestFsError> {
        self.attach(mountpoint, Mount::Fat(fs))
    }

    /// Unmounts everything, writing FAT's FSInfo and clean-volume flag (ext changes are
    /// already written). Dropping the guest without this leaves FAT volumes marked dirty.
    pub fn unmount(self) -> Result<(), GuestFsError> {
        for (mp, m) in self.mounts {
            match m {
                Mount::Fat(f) => f.unmount().map_err(|e| fs_err(&mp, "unmount", e))?,
                Mount::Btrfs(b) => b.commit().map_err(|e| fs_err(&mp, "commit", e))?,
                _ => {}
            }
        }
        Ok(())
    }

    fn attach(&mut self, mountpoint: &str, fs: Mount<'a>) -> Result<(), GuestFsError> {
        let canon = self.canonicalize(mountpoint)?;
        if canon == "/" || !self.is_dir(&canon)? {
            return Err(GuestFsError::NotADirectory {
                path: mountpoint.into(),
            });
        }
        if self.mounts.iter().any(|(m, _)| *m == canon) {
            return Err(GuestFsError::AlreadyExists { path: canon });
        }
        self.mounts.push((canon, fs));
        Ok(())
    }

    /// The mountpoints, root first.
    pub fn mountpoints(&self) -> Vec<String> {
        self.mounts.iter().map(|(m, _)| m.clone()).collect()
    }

    /// Index of the mount holding the canonical path `canon`, and the path inside it.
    fn locate(&self, canon: &str) -> (usize, String) {
        let mut best = (0, canon.to_string(), 1usize);
        for (i, (mp, _)) in self.mounts.iter().enumerate().skip(1) {
            let inside = canon
                .strip_prefix(mp.as_str())
                .filter(|r| r.is_empty() || r.starts_with('/'));
            if let Some(rest) = inside {
                if mp.len() > best.2 {
                    let inner = if rest.is_empty() {
                        "/".to_string()
                    } else {
                        rest.to_string()
                    };
                    best = (i, inner, mp.len());
                }
            }
        }
        (best.0, best.1)
    }

    fn fs(&self, i: usize) -> &Mount<'a> {
        &self.mounts[i].1
    }

    fn fs_mut(&mut self, i: usize) -> &mut Mount<'a> {
        &mut self.mounts[i].1
    }

    /// The canonical path, following (or not) the final component.
    fn canon(&self, path: &str, follow_last: bool) -> Result<String, GuestFsError> {
        resolve(path, follow_last, |p| {
            let (i, inner) = self.locate(p);
            let fs = match self.fs(i) {
                Mount::Ext(fs) => fs,
                Mount::Xfs(x) => return gxfs::link_of(x, &inner, p),
                Mount::Btrfs(b) => return gbtrfs::link_of(b, &inner, p),
                Mount::Fat(_) => return Ok(None),
                Mount::Ntfs(_) => return Ok(None),
            };
            match fs.symlink_metadata(&inner) {
                Ok(md) if md.kind == ExtKind::Symlink => {
                    let t = fs
                        .read_link(&inner)
                        .map_err(|e| fs_err(p, "readlink", e))?;
                    Ok(Some(String::from_utf8_lossy(&t).into_owned()))
                }
                Ok(_) => Ok(None),
                Err(e) if not_found(&e) => Ok(None),
                Err(e) => Err(fs_err(p, "lstat", e)),
            }
        })
    }

    /// The mount and inner path of `path` (the final component followed or not).
    fn place(
        &self,
        path: &str,
        follow_last: bool,
    ) -> Result<(usize, String, String), GuestFsError> {
        let canon = self.canon(path, follow_last)?;
        let (i, inner) = self.locate(&canon);
        Ok((i, inner, canon))
    }

    /// A path that is itself a mountpoint cannot be removed or renamed.
    fn check_not_mountpoint(&self, canon: &str) -> Result<(), GuestFsError> {
        if canon == "/" || self.mounts.iter().any(|(m, _)| m == canon) {
            return Err(GuestFsError::Unsupported {
                path: canon.into(),
                reason: "is a mountpoint".into(),
            });
        }
        Ok(())
    }
}

/// Maps a filesystem error onto the [`GuestFsError`] for the guest path `path`.
fn fs_err(path: &str, op: &'static str, e: FsError) -> GuestFsError {
    fs_error::fs_err(path, op, e, "not a valid file name on ext4")
}

fn kind_of(k: ExtKind) -> FileKind {
    match k {
        ExtKind::Regular => FileKind::File,
        ExtKind::Directory => FileKind::Dir,
        ExtKind::Symlink => FileKind::Symlink,
        _ => FileKind::Other,
    }
}

/// Permission bits as the ext4 writer takes them.
fn perm(mode: u32) -> u16 {
    (mode & 0o7777) as u16
}

impl GuestFs for Ext4GuestFs<'_> {
    fn lstat(&self, path: &str) -> Result<Option<Stat>, GuestFsError> {
        let (i, inner, canon) = self.place(path, false)?;
        let fs = match self.fs(i) {
            Mount::Ext(fs) => fs,
            Mount::Fat(f) => return vfat::lstat(f, &inner, &canon),
            Mount::Ntfs(_) => return Err(vfat::unsupported(&canon, "NTFS in a Linux guest")),
            Mount::Xfs(x) => return gxfs::lstat(x, &inner, &canon),
            Mount::Btrfs(b) => return gbtrfs::lstat(b, &inner, &canon),
        };
        match fs.symlink_metadata(&inner) {
            Ok(md) => Ok(Some(Stat {
                kind: kind_of(md.kind),
                mode: u32::from(md.perm),
                uid: md.uid,
                gid: md.gid,
                size: md.size,
            })),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(fs_err(&canon, "lstat", e)),
        }
    }

    fn read_file(&self, path: &str) -> Result<Vec<u8>, GuestFsError> {
        let (i, inner, canon) = self.place(path, true)?;
        match self.fs(i) {
            Mount::Ext(fs) => fs
                .read_file(&inner, MAX_READ)
                .map_err(|e| fs_err(&canon, "read", e)),
            Mount::Fat(f) => vfat::read_file(f, &inner, &canon, MAX_READ),
            Mount::Ntfs(_) => Err(vfat::unsupported(&canon, "NTFS in a Linux guest")),
            Mount::Xfs(x) => gxfs::read_file(x, &inner, &canon, MAX_READ),
            Mount::Btrfs(b) => gbtrfs::read_file(b, &inner, &canon, MAX_READ),
        }
    }

    fn write_file(&mut self, path: &str, data: &[u8], mode: u32) -> Result<(), GuestFsError> {
        let (i, inner, canon) = self.place(path, true)?;
        match self.fs_mut(i) {
            Mount::Ext(fs) => fs
                .write_file(&inner, data, perm(mode), 0, 0)
                .map_err(|e| fs_err(&canon, "write", e)),
            Mount::Fat(f) => vfat::write_file(f, &inner, &canon, data),
            Mount::Ntfs(_) => Err(vfat::unsupported(&canon, "NTFS in a Linux guest")),
            Mount::Xfs(x) => gxfs::write_file(x, &inner, &canon, data, mode),
            Mount::Btrfs(b) => gbtrfs::write_file(b, &inner, &canon, data, mode),
        }
    }

    fn read_dir(&self, path: &str) -> Result<Vec<String>, GuestFsError> {
        let (i, inner, canon) = self.place(path, true)?;
        let fs = match self.fs(i) {
            Mount::Ext(fs) => fs,
            Mount::Fat(f) => return vfat::read_dir(f, &inner, &canon),
            Mount::Ntfs(_) => return Err(vfat::unsupported(&canon, "NTFS in a Linux guest")),
            Mount::Xfs(x) => return gxfs::read_dir(x, &inner, &canon),
            Mount::Btrfs(b) => return gbtrfs::read_dir(b, &inner, &canon),
        };
        let mut names: Vec<String> = fs
            .read_dir(&inner)
            .map_err(|e| fs_err(&canon, "read directory", e))?
            .into_iter()
            .map(|e| String::from_utf8_lossy(&e.name).into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    fn read_link(&self, path: &str) -> Result<String, GuestFsError> {
        let (i, inner, canon) = self.place(path, false)?;
        let fs = match self.fs(i) {
            Mount::Ext(fs) => fs,
            Mount::Xfs(x) => return gxfs::read_link(x, &inner, &canon),
            Mount::Btrfs(b) => return gbtrfs::read_link(b, &inner, &canon),
            Mount::Fat(_) => return Err(vfat::unsupported(&canon, "symbolic links")),
            Mount::Ntfs(_) => return Err(vfat::unsupported(&canon, "NTFS in a Linux guest")),
        };
        let t = fs
            .read_link(&inner)
            .map_err(|e| fs_err(&canon, "readlink", e))?;
        Ok(String::from_utf8_lossy(&t).into_owned())
    }

    fn symlink(&mut self, target: &str, path: &str) -> Result<(), GuestFsError> {
        let (i, inner, canon) = self.place(path, false)?;
        let fs = match self.fs_mut(i) {
            Mount::Ext(fs) => fs,
            Mount::Xfs(x) => return gxfs::symlink(x, target, &inner, &canon),
            Mount::Btrfs(b) => return gbtrfs::symlink(b, target, &inner, &canon),
            Mount::Fat(_) => return Err(vfat::unsupported(&canon, "symbolic links")),
            Mount::Ntfs(_) => return Err(vfat::unsupported(&canon, "NTFS in a Linux guest")),
        };
        fs.symlink(&inner, target, 0, 0)
            .map_err(|e| fs_err(&canon, "symlink", e))
    }

    fn unlink(&mut self, path: &str) -> Result<(), GuestFsError> {
        let (i, inner, canon) = self.place(path, false)?;
        self.check_not_mountpoint(&canon)?;
        match self.fs_mut(i) {
            Mount::Ext(fs) => fs
                .unlink(&inner)
                .map_err(|e| fs_err(&canon, "unlink", e)),
            Mount::Fat(f) => vfat::unlink(f, &inner, &canon),
            Mount::Ntfs(_) => Err(vfat::unsupported(&canon, "NTFS in a Linux guest")),
            Mount::Xfs(x) => gxfs::unlink(x, &inner, &canon),
            Mount::Btrfs(b) => gbtrfs::unlink(b, &inner, &canon),
        }
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), GuestFsError> {
        let (i, inner_from, canon_from) = self.place(from, false)?;
        let (j, inner_to, canon_to) = self.place(to, false)?;
        self.check_not_mountpoint(&canon_from)?;
        self.check_not_mountpoint(&canon_to)?;
        if i != j {
            return Err(GuestFsError::Unsupported {
                path: canon_from,
                reason: format!("cannot rename across filesystems to {canon_to}"),
            });
        }
        match self.fs_mut(i) {
            Mount::Ext(fs) => fs
                .rename(&inner_from, &inner_to)
                .map_err(|e| fs_err(&canon_from, "rename", e)),
            Mount::Fat(f) => vfat::rename(f, &inner_from, &inner_to, &canon_from),
            Mount::Ntfs(_) => Err(vfat::unsupported(&canon_from, "NTFS in a Linux guest")),
            Mount::Xfs(x) => gxfs::rename(x, &inner_from, &inner_to, &canon_from),
            Mount::Btrfs(b) => gbtrfs::rename(b, &inner_from, &inner_to, &canon_from),
        }
    }

    fn mkdir(&mut self, path: &str, mode: u32) -> Result<(), GuestFsError> {
        let (i, inner, canon) = self.place(path, false)?;
        match self.fs_mut(i) {
            Mount::Ext(fs) => fs
                .mkdir(&inner, perm(mode), 0, 0)
                .map_err(|e| fs_err(&canon, "mkdir", e)),
            Mount::Fat(f) => vfat::mkdir(f, &inner, &canon),
            Mount::Ntfs(_) => Err(vfat::unsupported(&canon, "NTFS in a Linux guest")),
            Mount::Xfs(x) => gxfs::mkdir(x, &inner, &canon, mode),
            Mount::Btrfs(b) => gbtrfs::mkdir(b, &inner, &canon, mode),
        }
    }

    fn set_mode(&mut self, path: &str, mode: u32) -> Result<(), GuestFsError> {
        let (i, inner, canon) = self.place(path, false)?;
        let fs = match self.fs_mut(i) {
            Mount::Ext(fs) => fs,
            Mount::Xfs(x) => return gxfs::set_mode(x, &inner, &canon, mode),
            Mount::Btrfs(b) => return gbtrfs::set_mode(b, &inner, &canon, mode),
            Mount::Fat(_) => return Err(vfat::unsupported(&canon, "permission bits")),
            Mount::Ntfs(_) => return Err(vfat::unsupported(&canon, "NTFS in a Linux guest")),
        };
        fs.set_mode(&inner, perm(mode))
            .map_err(|e| fs_err(&canon, "chmod", e))
    }

    fn set_owner(&mut self, path: &str, uid: u32, gid: u32) -> Result<(), GuestFsError> {
        let (i, inner, canon) = self.place(path, false)?;
        let fs = match self.fs_mut(i) {
            Mount::Ext(fs) => fs,
            Mount::Xfs(x) => return gxfs::set_owner(x, &inner, &canon, uid, gid),
            Mount::Btrfs(b) => return gbtrfs::set_owner(b, &inner, &canon, uid, gid),
            Mount::Fat(_) => return Err(vfat::unsupported(&canon, "owners")),
            Mount::Ntfs(_) => return Err(vfat::unsupported(&canon, "NTFS in a Linux guest")),
        };
        fs.set_owner(&inner, uid, gid)
            .map_err(|e| fs_err(&canon, "chown", e))
    }

    fn get_xattr(&self, path: &str, name: &str) -> Result<Option<Vec<u8>>, GuestFsError> {
        let (i, inner, canon) = self.place(path, false)?;
        match self.fs(i) {
            Mount::Xfs(x) => gxfs::get_xattr(x, &inner, &canon, name),
            Mount::Btrfs(b) => gbtrfs::get_xattr(b, &inner, &canon, name),
            _ => Ok(None),
        }
    }

    /// Written on XFS (shortform attribute forks) and btrfs mounts; the ext writer writes no attributes.
    fn set_xattr(&mut self, path: &str, name: &str, value: &[u8]) -> Result<(), GuestFsError> {
        let (i, inner, canon) = self.place(path, false)?;
        match self.fs_mut(i) {
            Mount::Xfs(x) => gxfs::set_xattr(x, &inner, &canon, name, value),
            Mount::Btrfs(b) => gbtrfs::set_xattr(b, &inner, &canon, name, value),
            _ => Err(GuestFsError::Unsupported { path: canon, reason: format!("extended attribute {name}: the ext4/FAT writers do not write attributes") }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::Volume;
    use ferry_formats::disk::{BlockDevice, CowOverlay, RawImage};
    use std::path::Path;
    use std::process::Command;

    /// An ext4 image of `tree` (mkfs.ext4 -d), under an overlay; None without mkfs.ext4.
    fn image(
        dir: &Path,
        name: &str,
        files: &[(&str, &str)],
        links: &[(&str, &str)],
    ) -> Option<CowOverlay<RawImage>> {
        let tree = dir.join(format!("{name}.d"));
        for (p, text) in files {
            let host = tree.join(p);
            std::fs::create_dir_all(host.parent()?).ok()?;
            std::fs::write(host, text).ok()?;
        }
        std::fs::create_dir_all(&tree).ok()?;
        for (p, target) in links {
            std::os::unix::fs::symlink(target, tree.join(p)).ok()?;
        }
        let img = dir.join(format!("{name}.img"));
        let ok = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-d"])
            .arg(&tree)
            .arg(&img)
            .arg("8M")
            .status()
            .ok()?;
        if !ok.success() {
            return None;
        }
        CowOverlay::new(RawImage::open(&img).ok()?).ok()
    }

    /// Writes the overlay's view to a file and runs `e2fsck -fn` on it.
    fn fsck(dev: &CowOverlay<RawImage>, dir: &Path, name: &str) {
        let mut buf = vec![0u8; dev.size() as usize];
        dev.read_at(&mut buf, 0).unwrap();
        let out = dir.join(format!("{name}.check"));
        std::fs::write(&out, buf).unwrap();
        let o = Command::new("e2fsck")
            .arg("-fn")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }

    #[test]
    fn root_and_separate_boot_through_one_namespace() {
        let t = tempfile::tempdir().unwrap();
        let root_files = [
            ("etc/fstab", "/dev/sda1 / ext4 defaults 0 1\n"),
            ("boot/.keep", ""),
        ];
        let Some(root) = image(
            t.path(),
            "root",
            &root_files,
            &[("vmlinuz", "boot/vmlinuz-6.1")],
        ) else {
            eprintln!("skipped: mkfs.ext4 not available");
            return;
        };
        let boot_files = [
            ("vmlinuz-6.1", "kernel"),
            ("grub/grub.cfg", "linux /vmlinuz-6.1 root=/dev/sda1\n"),
        ];
        let boot = image(t.path(), "boot", &boot_files, &[]).unwrap();
        {
            let r =
                Ext4::open(Volume::new(&root, 0, root.size(), "root").unwrap(), "root").unwrap();
            let b =
                Ext4::open(Volume::new(&boot, 0, boot.size(), "boot").unwrap(), "boot").unwrap();
            let mut g = Ext4GuestFs::new(r);
            g.mount("/boot", b).unwrap();
            assert_eq!(g.read_file("/vmlinuz").unwrap(), b"kernel");
            assert_eq!(
                g.read_dir("/boot").unwrap(),
                ["grub", "lost+found", "vmlinuz-6.1"]
            );
            assert_eq!(g.stat("/vmlinuz").unwrap().unwrap().kind, FileKind::File);
            assert_eq!(
                g.lstat("/vmlinuz").unwrap().unwrap().kind,
                FileKind::Symlink
            );
            g.write_file(
                "/boot/grub/grub.cfg",
                b"linux /vmlinuz-6.1 root=/dev/vda1\n",
                0o644,
            )
            .unwrap();
            g.rename("/boot/vmlinuz-6.1", "/boot/vmlinuz-6.1.old")
                .unwrap();
            g.write_file("/boot/vmlinuz-6.1", b"new kernel", 0o600)
                .unwrap();
            assert!(matches!(
                g.rename("/etc/fstab", "/boot/fstab"),
                Err(GuestFsError::Unsupported { .. })
            ));
            assert!(matches!(
                g.unlink("/boot"),
                Err(GuestFsError::Unsupported { .. })
            ));
            g.mkdir_p("/etc/initramfs-tools/conf.d", 0o755).unwrap();
            g.symlink("/dev/null", "/etc/initramfs-tools/conf.d/x")
                .unwrap();
            assert!(matches!(
                g.symlink("/x", "/etc/fstab"),
                Err(GuestFsError::AlreadyExists { .. })
            ));
            assert!(g.lstat("/nope/x").unwrap().is_none());
            assert_eq!(g.read_file("/vmlinuz").unwrap(), b"new kernel");
            assert_eq!(g.stat("/boot/vmlinuz-6.1").unwrap().unwrap().mode, 0o600);
        }
        assert!(root.overlay_bytes() > 0 && boot.overlay_bytes() > 0);
        fsck(&root, t.path(), "root");
        fsck(&boot, t.path(), "boot");
    }
}
