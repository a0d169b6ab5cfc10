//! The deferred [`ChangeKind::InitramfsRebuild`] steps of a plan, done host-side: the guest's
//! initramfs and its modules tree are read through the [`GuestFs`], the virtio modules (and
//! their dependencies, from the guest's own `modules.dep` / `.modinfo`) are injected with
//! [`crate::initramfs::add_modules`], the old image is kept as `<initrd>.pre-ferry` and the
//! new one written in its place with the old one's permissions.
//!
//! Running it again is safe: when `<initrd>.pre-ferry` exists the image is rebuilt from it,
//! so modules are never injected twice and the pristine image is never lost.

use super::plan::{Change, ChangeKind};
use crate::guestfs::{FileKind, GuestFs, GuestFsError};
use crate::initramfs::{add_modules, Flavor, Initramfs, InitramfsError, Limits};
use crate::kmod::GuestFiles;
use serde::Serialize;
use std::io;

/// Errors of an initramfs rebuild.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// Reading or writing a guest file failed.
    #[error(transparent)]
    Fs(#[from] GuestFsError),
    /// The image could not be read or the modules not injected.
    #[error(transparent)]
    Initramfs(#[from] InitramfsError),
    /// The change given is not an initramfs rebuild.
    #[error("{path}: not an initramfs rebuild step")]
    NotARebuild { path: String },
    /// The initramfs is not a regular file.
    #[error("{path}: the initramfs is not a regular file")]
    NotAFile { path: String },
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RebuildReport {
    /// The initramfs rewritten (symlinks resolved).
    pub initrd: String,
    /// Where the original image is kept.
    pub backup: String,
    /// Kernel version.
    pub kernel_version: String,
    /// `initramfs-tools`, `dracut` or `unknown`: what built the image.
    pub flavor: String,
    /// Modules added, in load order.
    pub added: Vec<String>,
    /// Modules the image already had.
    pub already_present: Vec<String>,
    /// Requested modules built into the kernel.
    pub builtin: Vec<String>,
    /// Requested modules the kernel does not have.
    pub missing: Vec<String>,
    /// Sizes of the old and the new image.
    pub old_size: u64,
    pub new_size: u64,
}

/// [`GuestFiles`] (what the module resolver reads) over a [`GuestFs`].
struct Files<'a>(&'a dyn GuestFs);

fn io_err(e: GuestFsError) -> io::Error {
    match e {
        GuestFsError::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e.to_string()),
        other => io::Error::other(other.to_string()),
    }
}

impl GuestFiles for Files<'_> {
    fn read(&self, path: &str, limit: u64) -> io::Result<Vec<u8>> {
        match self.0.stat(path).map_err(io_err)? {
            Some(st) if st.kind == FileKind::File && st.size > limit => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{path}: {} bytes is more than the {limit} allowed", st.size),
            )),
            Some(st) if st.kind == FileKind::File => self.0.read_file(path).map_err(io_err),
            Some(_) => Err(io::Error::other(format!("{path}: not a regular file"))),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{path}: not found"),
            )),
        }
    }
    fn exists(&self, path: &str) -> bool {
        self.0.exists(path).unwrap_or(false)
    }
    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        self.0.read_dir(dir).map_err(io_err)
    }
}

/// Performs one deferred rebuild step of [`super::apply`]'s report.
pub fn rebuild_initramfs(
    fs: &mut dyn GuestFs,
    change: &Change,
) -> Result<RebuildReport, RebuildError> {
    let ChangeKind::InitramfsRebuild {
        kernel_version,
        modules,
        ..
    } = &change.kind
    else {
        return Err(RebuildError::NotARebuild {
            path: change.path.clone(),
        });
    };
    let initrd = fs.canonicalize(&change.path)?;
    let backup = format!("{initrd}.pre-ferry");
    let st = match fs.lstat(&initrd)? {
        Some(st) if st.kind == FileKind::File => st,
        Some(_) => return Err(RebuildError::NotAFile { path: initrd }),
        None => return Err(GuestFsError::NotFound { path: initrd }.into()),
    };
    let have_backup = fs.lstat(&backup)?.is_some();
    let original = if have_backup { &backup } else { &initrd };
    let raw = fs.read_file(original)?;
    let old_size = raw.len() as u64;
    let image = Initramfs::parse(original, raw, Limits::default()).map_err(InitramfsError::from)?;
    let wanted: Vec<&str> = modules.iter().map(String::as_str).collect();
    let (new, report) = add_modules(&Files(&*fs), kernel_version, &image, &wanted)?;
    drop(image);
    if !have_backup {
        fs.rename(&initrd, &backup)?;
    }
    fs.write_file(&initrd, &new, st.mode)?;
    // A new file gets `st.mode` (and owner root); an image that existed keeps its own.
    fs.set_mode(&initrd, st.mode)?;
    fs.set_owner(&initrd, st.uid, st.gid)?;
    Ok(RebuildReport {
        initrd,
        backup,
        kernel_version: kernel_version.clone(),
        flavor: match report.flavor {
            Flavor::InitramfsTools => "initramfs-tools",
            Flavor::Dracut => "dracut",
            Flavor::Unknown => "unknown",
        }
        .into(),
        added: report.added,
        already_present: report.already_present,
        builtin: report.builtin,
        missing: report.missing,
        old_size,
        new_size: new.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guestfs::MemFs;
    use crate::linux::InitramfsGenerator;

    #[test]
    fn refuses_other_changes() {
        let mut fs = MemFs::new();
        let c = Change {
            path: "/etc/fstab".into(),
            kind: ChangeKind::Delete,
            reason: String::new(),
        };
        assert!(matches!(
            rebuild_initramfs(&mut fs, &c),
            Err(RebuildError::NotARebuild { .. })
        ));
    }

    fn step(path: &str) -> Change {
        Change {
            path: path.into(),
            kind: ChangeKind::InitramfsRebuild {
                kernel_version: "6.1.0-27-amd64".into(),
                generator: InitramfsGenerator::InitramfsTools,
                modules: vec!["virtio_blk".into()],
            },
            reason: String::new(),
        }
    }

    #[test]
    fn a_bad_image_changes_nothing() {
        let mut fs = MemFs::new();
        fs.mkdir_p("/boot", 0o755).unwrap();
        assert!(matches!(
            rebuild_initramfs(&mut fs, &step("/boot/initrd.img")),
            Err(RebuildError::Fs(_))
        ));
        fs.write_file(
            "/boot/initrd.img",
            b"\x1f\x8b garbage, not an initramfs",
            0o600,
        )
        .unwrap();
        let e = rebuild_initramfs(&mut fs, &step("/boot/initrd.img")).unwrap_err();
        assert!(matches!(e, RebuildError::Initramfs(_)), "{e}");
        assert_eq!(fs.read_dir("/boot").unwrap(), ["initrd.img"]);
    }
}
