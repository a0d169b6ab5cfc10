//! qcow2 v2/v3: reading (zero clusters, zlib/zstd compressed clusters, backing chains),
//! the one-pass writer used by the conversion engine, and a consistency checker.
pub mod check;
pub mod codec;
pub mod header;
mod reader;
mod refblocks;
pub mod table;
pub mod rw;
pub mod writer;

pub use header::{CompressionType, Header};
pub use reader::{open, Qcow2Image, MAX_CHAIN};
pub use rw::{HostFile, Qcow2Rw};
pub use writer::{Preallocation, Qcow2Writer, WriterOptions};

/// Parses `bytes` as a whole qcow2 file and reads everything it maps. For fuzzing: any
/// input must give `Ok` or an error, never a panic or an unbounded allocation.
pub fn fuzz_image(bytes: &[u8]) -> Result<(), crate::disk::DiskError> {
    use crate::disk::BlockDevice;
    let dir = std::env::temp_dir();
    let path = dir.join(format!("ferry-fuzz-{}.qcow2", std::process::id()));
    std::fs::write(&path, bytes).map_err(|e| crate::disk::DiskError::io(&path, "write", e))?;
    let result = (|| {
        let img = Qcow2Image::open_no_backing(&path)?;
        let size = img.size().min(64 << 20);
        let map = img.map(0, size)?;
        let mut buf = vec![0u8; 65536];
        for e in map.iter().filter(|e| e.kind == crate::disk::ExtentKind::Data).take(64) {
            let n = e.length.min(buf.len() as u64) as usize;
            img.read_at(&mut buf[..n], e.offset)?;
        }
        check::check(&path).map(|_| ())
    })();
    let _ = std::fs::remove_file(&path);
    result
}
