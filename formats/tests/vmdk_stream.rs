//! `StreamReader`: streamOptimized read front to back through real pipes (no seeking
//! possible), also through gzip as in an OVA; bytes equal qemu-img's reading.
mod vmdk_support;

use ferry_formats::disk::{ChunkData, StreamSource};
use ferry_formats::vmdk::StreamReader;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use vmdk_support::*;

/// The read end of a child's stdout; the child is reaped on drop.
struct Pipe {
    child: Child,
    out: ChildStdout,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.out.read(buf)
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `Read` that is only a pipe: `cat FILE` (optionally `| gzip -c`).
fn pipe(path: &Path, gzip: bool) -> Box<dyn Read + Send> {
    let cmd = if gzip { format!("gzip -1 -c '{}'", s(path)) } else { format!("cat '{}'", s(path)) };
    let mut child = Command::new("sh").args(["-c", &cmd]).stdout(Stdio::piped()).spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let p = Pipe { child, out };
    if gzip {
        Box::new(flate2::read::GzDecoder::new(p))
    } else {
        Box::new(p)
    }
}

/// Reads every chunk into a disk image, checking the order and kind of chunks.
fn assemble(mut r: StreamReader) -> Result<Vec<u8>, String> {
    let mut disk = vec![0u8; r.size() as usize];
    let mut end = 0;
    let path = PathBuf::from("stream");
    while let Some(c) = r.next_chunk().map_err(|e| e.to_string())? {
        assert!(c.offset >= end, "chunks in order");
        assert!(matches!(c.data, ChunkData::Grain(_)));
        end = c.offset + c.length;
        let off = c.offset as usize;
        let bytes = c.into_plain(&path).map_err(|e| e.to_string())?;
        disk[off..off + bytes.len()].copy_from_slice(&bytes);
    }
    Ok(disk)
}

#[test]
fn qemu_stream_through_a_pipe_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let raw = default_raw(dir.path());
    let p = dir.path().join("so.vmdk");
    qemu_img(&["convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", s(&raw), s(&p)]);
    let want = qemu_raw(&p);
    for gz in [false, true] {
        let r = StreamReader::new(pipe(&p, gz), p.clone()).unwrap();
        assert_eq!(r.size(), want.len() as u64);
        let got = assemble(r).unwrap();
        assert!(got == want, "gzip={gz}: differs at {:?}", first_diff(&got, &want));
    }
}

#[test]
fn vmware_stream_with_unknown_markers() {
    let dir = tempfile::tempdir().unwrap();
    let disk = std::fs::read(default_raw(dir.path())).unwrap();
    let p = dir.path().join("vmware.vmdk");
    std::fs::write(&p, synth::vmware_stream(&disk, false)).unwrap();
    let got = assemble(StreamReader::new(pipe(&p, false), p.clone()).unwrap()).unwrap();
    assert!(got == qemu_raw(&p));
    std::fs::write(&p, synth::vmware_stream(&disk, true)).unwrap();
    let got = assemble(StreamReader::new(pipe(&p, true), p.clone()).unwrap()).unwrap();
    assert!(got == disk, "raw deflate grains");
}

/// Header + overhead, then grain markers with the given LBAs (each grain 64 KiB of `fill`).
fn tiny_stream(lbas: &[u64], truncate: usize) -> Vec<u8> {
    let mut f = synth::kdmv_header(0x30001, 1024, 128, (0, 0), u64::MAX, 1, 1);
    for (i, &lba) in lbas.iter().enumerate() {
        let c = synth::compress(&vec![i as u8 + 1; 65536], false);
        f.extend_from_slice(&lba.to_le_bytes());
        f.extend_from_slice(&(c.len() as u32).to_le_bytes());
        f.extend_from_slice(&c);
        f.resize(f.len().div_ceil(512) * 512, 0);
    }
    f.extend_from_slice(&[0u8; 512]);
    f.truncate(f.len() - truncate);
    f
}

#[test]
fn out_of_order_and_truncated_streams_are_errors() {
    let name = PathBuf::from("t.vmdk");
    let open = |b: Vec<u8>| StreamReader::new(Box::new(std::io::Cursor::new(b)), name.clone()).unwrap();
    let ok = assemble(open(tiny_stream(&[0, 256], 0))).unwrap();
    assert_eq!((ok[0], ok[65536], ok[256 * 512]), (1, 0, 2));
    let e = assemble(open(tiny_stream(&[256, 0], 0))).unwrap_err();
    assert!(e.starts_with("t.vmdk: invalid grain marker LBA 0: at byte "), "{e}");
    assert!(e.ends_with(": out of order (previous grain ends at sector 384)"), "{e}");
    let e = assemble(open(tiny_stream(&[0, 2048], 0))).unwrap_err();
    assert!(e.starts_with("t.vmdk: invalid grain marker LBA 2048: at byte "), "{e}");
    assert!(e.ends_with(": past the disk's 1024 sectors"), "{e}");
    let e = assemble(open(tiny_stream(&[0], 700))).unwrap_err();
    assert!(e.starts_with("t.vmdk: invalid grain data at byte ") && e.contains(": stream ends after "), "{e}");
    // A flat (not stream) header is refused up front.
    let flat = synth::kdmv_header(1, 1024, 128, (0, 0), 1, 1, 0);
    let e = StreamReader::new(Box::new(std::io::Cursor::new(flat)), name.clone()).err().unwrap().to_string();
    assert_eq!(e, "t.vmdk: invalid flags 0x1: not a streamOptimized VMDK (needs compressed grains with markers)");
}

/// Random access to a stream stored inside a bigger file (an uncompressed OVA member): the
/// footer is found from the member's end, not the file's.
#[test]
fn stream_inside_an_archive_member() {
    let dir = tempfile::tempdir().unwrap();
    let disk = std::fs::read(default_raw(dir.path())).unwrap();
    let vmdk = synth::vmware_stream(&disk, false);
    let p = dir.path().join("disk.vmdk");
    std::fs::write(&p, &vmdk).unwrap();
    let want = qemu_raw(&p);
    let ova = dir.path().join("vm.ova");
    let mut bytes = vec![0x5a; 1536];
    bytes.extend_from_slice(&vmdk);
    bytes.extend_from_slice(&[0u8; 10240]);
    std::fs::write(&ova, &bytes).unwrap();
    let dev = ferry_formats::vmdk::open_slice(&ova, 1536, vmdk.len() as u64).unwrap();
    assert!(read_all(dev.as_ref(), MIB) == want);
    let e = ferry_formats::vmdk::open_slice(&ova, 1536, bytes.len() as u64).err().unwrap().to_string();
    assert!(e.contains("invalid member range 1536+"), "{e}");
}
