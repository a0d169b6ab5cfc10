//! NTFS writer: files and directories created, written (resident or in clusters), renamed
//! and deleted on NTFS 3.x volumes as Windows leaves them, host-side.
//!
//! - `boot`: geometry from the boot sector; `record`: MFT records with their fixups;
//!   `runs`: runlists; `alloc`: clusters through `$Bitmap`, MFT records through `$MFT`'s
//!   `$BITMAP` (`$MFT` extended when it is full), `$MFTMirr` kept equal; `data`: attribute
//!   values read and written; `name`: `$UpCase` collation, Win32 and DOS 8.3 names;
//!   `index`: `$I30` B-trees (index root, INDX blocks with their `$BITMAP`, node splits);
//!   `ops`: the path operations; `usn`: the change journal's reset.
//! - Refused in one line: a dirty or hibernated volume (also Fast Startup, which leaves
//!   hiberfil.sys "hibr"), a journal with pending transactions (`logfile`), compressed,
//!   encrypted or sparse targets, records that would need an attribute list (a fragmented
//!   `$MFT` that has one is mapped through it and written, never extended). The USN
//!   change journal gets no records: it is reset instead (`usn`: a new journal id, so that
//!   its readers rescan the volume), which Windows tolerates; `$LogFile` is left clean as
//!   found.

mod alloc;
mod boot;
mod bytes;
mod data;
mod index;
mod logfile;
mod name;
mod ops;
mod record;
mod runs;
mod usn;

use super::{FsError, Volume};
pub use ops::DirEntry;
pub use usn::UsnReset;

/// An NTFS volume opened for editing.
pub struct Ntfs<'a> {
    vol: Volume<'a>,
    name: String,
    geo: boot::Geometry,
    /// `$MFT`'s data runs and size in bytes.
    mft_runs: Vec<runs::Run>,
    mft_size: u64,
    /// `$MFT`'s `$DATA` continues in other records (its attribute list): never extended.
    mft_list: bool,
    /// Records mirrored in `$MFTMirr`.
    mirr: u64,
    /// The cluster bitmap (`$Bitmap`'s data) and its runs.
    bitmap: Vec<u8>,
    bitmap_runs: Vec<runs::Run>,
    /// Next cluster to try.
    hint: u64,
    /// No MFT record below this one is free (from the user records on).
    mft_hint: u64,
    upcase: Vec<u16>,
    /// The directory indexes used last (most recent last), cached.
    cache: Vec<index::Index>,
}

impl<'a> Ntfs<'a> {
    /// Opens the NTFS volume in `vol`; `name` prefixes errors. A dirty or hibernated
    /// volume is refused.
    pub fn open(vol: Volume<'a>, name: &str) -> Result<Self, FsError> {
        let geo = boot::Geometry::read(&vol, name)?;
        let mut fs = Ntfs {
            vol,
            name: name.into(),
            geo,
            mft_runs: Vec::new(),
            mft_size: 0,
            mft_list: false,
            mirr: 0,
            bitmap: Vec::new(),
            bitmap_runs: Vec::new(),
            hint: 0,
            mft_hint: 0,
            upcase: Vec::new(),
            cache: Vec::new(),
        };
        fs.load_mft()?;
        fs.check_clean()?;
        fs.check_logfile()?;
        fs.load_bitmap()?;
        fs.load_upcase()?;
        if let Some(h) = fs.read_head("/hiberfil.sys", 4)? {
            if h.eq_ignore_ascii_case(b"hibr") {
                return Err(FsError::Unclean {
                    fs: name.into(),
                    reason: "Windows is hibernated (hiberfil.sys): start Windows and shut it down fully (no hibernation, Fast Startup off)".into(),
                });
            }
        }
        Ok(fs)
    }

    fn bad(&self, field: &str, value: impl Into<String>, reason: impl Into<String>) -> FsError {
        FsError::Invalid { fs: self.name.clone(), field: field.into(), value: value.into(), reason: reason.into() }
    }

    fn unsupported(&self, path: &str, what: impl std::fmt::Display) -> FsError {
        FsError::Unsupported { fs: self.name.clone(), what: format!("{path}: {what}") }
    }

    fn read(&self, buf: &mut [u8], off: u64) -> Result<(), FsError> {
        self.vol.read(buf, off, &self.name)
    }

    fn write(&self, buf: &[u8], off: u64) -> Result<(), FsError> {
        self.vol.write(buf, off, &self.name)
    }
}
