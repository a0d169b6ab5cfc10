//! NTFS writes, first piece: a file's data replaced in place, through the clusters its
//! unnamed `$DATA` attribute already owns (the size unchanged, so no MFT record, bitmap or
//! index changes). This is what a registry hive edited within its free cells needs. Volumes
//! that are dirty or hibernated (hiberfil.sys starting "hibr", Fast Startup included) are
//! refused in one line, as virt-v2v refuses them. Metadata is read with the `ntfs` crate;
//! its panics on corrupt metadata become errors.

use crate::fs::fat::VolumeStream;
use crate::fs::{FsError, Volume};
use ntfs::indexes::NtfsFileNameIndex;
use ntfs::structured_values::NtfsVolumeFlags;
use ntfs::attribute_value::NtfsAttributeValue;
use ntfs::{Ntfs, NtfsAttributeFlags, NtfsFile, NtfsReadSeek};
use std::io::{Seek, SeekFrom, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Every way an NTFS edit fails; one line naming the volume and the path.
#[derive(Debug, thiserror::Error)]
pub enum NtfsWriteError {
    #[error(transparent)]
    Fs(#[from] FsError),

    #[error("{volume}: {path}: {reason}")]
    Read { volume: String, path: String, reason: String },

    #[error("{volume}: {reason}: start Windows and shut it down fully (no hibernation, Fast Startup off)")]
    Unsafe { volume: String, reason: String },

    #[error("{volume}: {path}: {what} is not supported")]
    Unsupported { volume: String, path: String, what: String },
}

/// An NTFS volume opened for in-place edits.
pub struct NtfsWriter<'a> {
    io: VolumeStream<'a>,
    ntfs: Ntfs,
    name: String,
}

type R<T> = Result<T, String>;

fn guard<T>(f: impl FnOnce() -> R<T>) -> R<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err("corrupt metadata (the NTFS reader gave up)".into()))
}

fn lookup<'n>(ntfs: &'n Ntfs, io: &mut VolumeStream<'_>, path: &str) -> R<Option<NtfsFile<'n>>> {
    let mut file = ntfs.root_directory(io).map_err(|e| e.to_string())?;
    for name in path.split(['/', '\\']).filter(|c| !c.is_empty()) {
        if !file.is_directory() {
            return Ok(None);
        }
        let index = file.directory_index(io).map_err(|e| e.to_string())?;
        let mut finder = index.finder();
        file = match NtfsFileNameIndex::find(&mut finder, ntfs, io, name) {
            None => return Ok(None),
            Some(e) => e.map_err(|e| e.to_string())?.to_file(ntfs, io).map_err(|e| e.to_string())?,
        };
    }
    Ok(Some(file))
}

impl<'a> NtfsWriter<'a> {
    /// Opens the NTFS volume in `vol`; refuses a dirty or hibernated one.
    pub fn open(vol: Volume<'a>, name: &str) -> Result<Self, NtfsWriteError> {
        let mut io = VolumeStream::new(vol, name);
        let bad = |reason: String| NtfsWriteError::Read { volume: name.into(), path: "/".into(), reason };
        let ntfs = guard(|| {
            let mut n = Ntfs::new(&mut io).map_err(|e| e.to_string())?;
            n.read_upcase_table(&mut io).map_err(|e| e.to_string())?;
            Ok(n)
        })
        .map_err(bad)?;
        let mut w = NtfsWriter { io, ntfs, name: name.into() };
        let dirty = guard(|| {
            let info = w.ntfs.volume_info(&mut w.io).map_err(|e| e.to_string())?;
            Ok(info.flags().contains(NtfsVolumeFlags::IS_DIRTY))
        })
        .map_err(bad)?;
        if dirty {
            return Err(NtfsWriteError::Unsafe { volume: name.into(), reason: "the NTFS volume is marked dirty".into() });
        }
        match w.read_head("/hiberfil.sys", 4) {
            Ok(Some(h)) if h.eq_ignore_ascii_case(b"hibr") => {
                return Err(NtfsWriteError::Unsafe { volume: name.into(), reason: "Windows is hibernated (hiberfil.sys)".into() })
            }
            Ok(_) => {}
            Err(e) => return Err(e),
        }
        Ok(w)
    }

    fn err(&self, path: &str, reason: String) -> NtfsWriteError {
        NtfsWriteError::Read { volume: self.name.clone(), path: path.into(), reason }
    }

    fn read_head(&mut self, path: &str, max: u64) -> Result<Option<Vec<u8>>, NtfsWriteError> {
        let (ntfs, io) = (&self.ntfs, &mut self.io);
        guard(|| {
            let Some(f) = lookup(ntfs, io, path)? else { return Ok(None) };
            let Some(item) = f.data(io, "") else { return Ok(Some(Vec::new())) };
            let item = item.map_err(|e| e.to_string())?;
            let attr = item.to_attribute().map_err(|e| e.to_string())?;
            let mut value = attr.value(io).map_err(|e| e.to_string())?;
            if value.len() > max && max > 4 {
                return Err(format!("{} bytes, more than the {max} read", value.len()));
            }
            let mut out = vec![0u8; value.len().min(max) as usize];
            let mut got = 0;
            while got < out.len() {
                let n = value.read(io, &mut out[got..]).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            out.truncate(got);
            Ok(Some(out))
        })
        .map_err(|e| self.err(path, e))
    }

    /// The whole data of the file at `path` (`/` or `\` separated, case-insensitive),
    /// refused above `limit` bytes; `None` if it does not exist.
    pub fn read_file(&mut self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, NtfsWriteError> {
        self.read_head(path, limit.max(5))
    }

    /// Replaces the data of the file at `path` with `data` of the same length, written into
    /// the clusters the file already owns.
    pub fn replace_data(&mut self, path: &str, data: &[u8]) -> Result<(), NtfsWriteError> {
        let unsupported = |what: String| NtfsWriteError::Unsupported { volume: self.name.clone(), path: path.into(), what };
        let (ntfs, io) = (&self.ntfs, &mut self.io);
        // (position, length) of each run holding the file's bytes, or what is unsupported.
        let runs = guard(|| {
            let f = lookup(ntfs, io, path)?.ok_or("no such file")?;
            let item = f.data(io, "").ok_or("no unnamed $DATA attribute")?.map_err(|e| e.to_string())?;
            let attr = item.to_attribute().map_err(|e| e.to_string())?;
            let flags = attr.flags();
            if flags.intersects(NtfsAttributeFlags::COMPRESSED | NtfsAttributeFlags::ENCRYPTED | NtfsAttributeFlags::SPARSE) {
                return Ok(Err(format!("writing a compressed, encrypted or sparse file ({flags:?})")));
            }
            let value = attr.value(io).map_err(|e| e.to_string())?;
            if value.len() != data.len() as u64 {
                return Ok(Err(format!("changing the file's size ({} to {} bytes)", value.len(), data.len())));
            }
            let NtfsAttributeValue::NonResident(nr) = value else {
                return Ok(Err("writing resident data (inside the MFT record)".to_string()));
            };
            let mut runs = Vec::new();
            let mut left = data.len() as u64;
            for run in nr.data_runs() {
                if left == 0 {
                    break;
                }
                let run = run.map_err(|e| e.to_string())?;
                let Some(pos) = run.data_position().value() else {
                    return Ok(Err("writing into a sparse run".to_string()));
                };
                let n = run.allocated_size().min(left);
                runs.push((pos.get(), n));
                left -= n;
            }
            if left != 0 {
                return Err(format!("data runs end {left} bytes before the file's size"));
            }
            Ok(Ok(runs))
        })
        .map_err(|e| self.err(path, e))?
        .map_err(unsupported)?;
        let mut at = 0usize;
        for (pos, n) in runs {
            let n = n as usize;
            let io_err = |e: std::io::Error| NtfsWriteError::Read { volume: self.name.clone(), path: path.into(), reason: e.to_string() };
            self.io.seek(SeekFrom::Start(pos)).map_err(io_err)?;
            self.io.write_all(&data[at..at + n]).map_err(io_err)?;
            at += n;
        }
        Ok(())
    }
}
