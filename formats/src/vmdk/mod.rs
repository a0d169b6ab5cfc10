//! VMDK: every flavour a user brings, read-only.
//!
//! - descriptors (standalone or embedded, any length, CRLF, unquoted values, version 1-3)
//!   with FLAT, SPARSE, ZERO, VMFS, VMFSSPARSE and SESPARSE extents, RW / RDONLY / NOACCESS
//!   (sizes always kept);
//! - KDMV sparse extents (monolithicSparse, twoGbMaxExtentSparse, streamOptimized in both the
//!   VMware layout with its footer and qemu's layout), zeroed-grain GTEs, partial last grain;
//! - COWD (vmfsSparse) and seSparse deltas;
//! - parent chains through parentCID / parentFileNameHint;
//! - [`StreamReader`]: streamOptimized read front to back from a non-seekable stream.
//!
//! Grain tables are cached in one bounded cache per opened chain; reads are `&self` and may
//! run from many threads at once.

mod cache;
mod chain;
mod cowd;
pub mod descriptor;
mod extent;
pub mod header;
mod layer;
mod sesparse;
mod source;
mod sparse;
mod stream;
mod tables;

pub use chain::VmdkDevice;
pub use stream::StreamReader;

use crate::disk::{BlockDevice, DiskError, ReadOnlyFile};
use source::{MemSource, Source};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn open_file(path: &Path) -> Result<Arc<dyn Source>, DiskError> {
    Ok(Arc::new(ReadOnlyFile::open(path)?))
}

/// Opens a VMDK (descriptor or monolithic file) and its whole parent chain, read-only.
pub fn open(path: &Path) -> Result<Box<dyn BlockDevice>, DiskError> {
    Ok(Box::new(open_device(path)?))
}

/// Like [`open`], returning the concrete type.
pub fn open_device(path: &Path) -> Result<VmdkDevice, DiskError> {
    let cache = cache::GtCache::new(cache::DEFAULT_BUDGET);
    VmdkDevice::open(open_file(path)?, cache, &open_file)
}

/// Opens a single-file VMDK (streamOptimized, monolithicSparse, COWD, seSparse) stored as
/// the byte range `[offset, offset + len)` of `path`, e.g. a member of an uncompressed OVA
/// tar: the footer of a VMware stream is found from the member's end. Descriptors naming
/// other files cannot be opened this way.
pub fn open_slice(path: &Path, offset: u64, len: u64) -> Result<Box<dyn BlockDevice>, DiskError> {
    let file = ReadOnlyFile::open(path)?;
    if offset.checked_add(len).is_none_or(|end| end > file.len()) {
        return Err(DiskError::invalid(
            path,
            "member range",
            format!("{offset}+{len}"),
            format!("past end of file ({} bytes)", file.len()),
        ));
    }
    let src: Arc<dyn Source> = Arc::new(source::SliceSource { file, offset, len, path: path.to_path_buf() });
    let no_files = |p: &Path| -> Result<Arc<dyn Source>, DiskError> {
        Err(DiskError::unsupported(p, "extent files outside the archive member"))
    };
    Ok(Box::new(VmdkDevice::open(src, cache::GtCache::new(cache::DEFAULT_BUDGET), &no_files)?))
}

/// Entry points of the fuzz targets (`formats/fuzz`), kept here so tests can run them.
pub mod fuzzing {
    use super::*;
    use crate::disk::StreamSource;

    /// Parses `data` as a descriptor.
    pub fn descriptor(data: &[u8]) {
        let _ = super::descriptor::parse(Path::new("fuzz.vmdk"), data);
    }

    /// Opens `data` as a VMDK image (every extent it names is `data` again), then reads its
    /// first MiB and its last 64 KiB, and maps its first 256 MiB.
    pub fn sparse(data: &[u8]) {
        let data: Arc<[u8]> = data.into();
        let open = |p: &Path| -> Result<Arc<dyn Source>, DiskError> {
            Ok(Arc::new(MemSource { data: data.clone(), path: p.to_path_buf() }))
        };
        let src: Arc<dyn Source> = Arc::new(MemSource { data: data.clone(), path: PathBuf::from("fuzz.vmdk") });
        let Ok(dev) = VmdkDevice::open(src, cache::GtCache::new(1 << 20), &open) else { return };
        let size = dev.size();
        let mut buf = vec![0u8; 65536];
        for off in (0..size.min(1 << 20)).step_by(65536).chain([size.saturating_sub(65536)]) {
            let n = (size - off).min(65536) as usize;
            let _ = dev.read_at(&mut buf[..n], off);
            let _ = dev.read_at(&mut buf[..n.min(777)], off);
        }
        let _ = dev.map(0, size.min(256 << 20));
        let _ = dev.info();
    }

    /// Reads `data` as a streamOptimized stream to the end, inflating every grain.
    pub fn stream(data: &[u8]) {
        let reader = Box::new(std::io::Cursor::new(data.to_vec()));
        let Ok(mut s) = StreamReader::new(reader, PathBuf::from("fuzz.vmdk")) else { return };
        let path = PathBuf::from("fuzz.vmdk");
        while let Ok(Some(chunk)) = s.next_chunk() {
            let _ = chunk.into_plain(&path);
        }
    }
}
