//! Malformed inputs: each gives a one-line error naming the file, the field and the value.
mod vmdk_support;

use std::path::{Path, PathBuf};
use vmdk_support::*;

/// A qemu monolithicSparse of the default pattern, and its bytes.
fn sparse(dir: &Path, opts: &str) -> (PathBuf, Vec<u8>) {
    let raw = default_raw(dir);
    let p = dir.join("s.vmdk");
    qemu_img(&["convert", "-f", "raw", "-O", "vmdk", "-o", opts, s(&raw), s(&p)]);
    let b = std::fs::read(&p).unwrap();
    (p, b)
}

fn patched(p: &Path, bytes: &[u8], at: usize, patch: &[u8]) -> String {
    let mut b = bytes.to_vec();
    b[at..at + patch.len()].copy_from_slice(patch);
    std::fs::write(p, b).unwrap();
    let e = open_err(p);
    assert!(!e.contains('\n'), "one line: {e}");
    e
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// qemu tolerates a gdOffset (and an rgdOffset) past the end of the file: the directory
/// reads as zeros, so the disk reads as zeros. Ferry reads it the same way.
#[test]
fn gd_offset_past_the_end_is_tolerated_like_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let (p, b) = sparse(dir.path(), "subformat=monolithicSparse");
    let mut g = b.clone();
    g[56..64].copy_from_slice(&1_000_000u64.to_le_bytes());
    g[48..56].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&p, &g).unwrap();
    let qemu = dir.path().join("qemu.raw");
    qemu_img(&["convert", "-f", "vmdk", "-O", "raw", s(&p), s(&qemu)]);
    let want = std::fs::read(&qemu).unwrap();
    assert!(want.iter().all(|&x| x == 0));
    let dev = ferry_formats::vmdk::open(&p).unwrap();
    assert_eq!(read_all(dev.as_ref(), 2 * MIB), want);
    // Only the redundant directory past the end: the data reads as the original.
    g[56..64].copy_from_slice(&b[56..64]);
    std::fs::write(&p, &g).unwrap();
    let qemu2 = dir.path().join("qemu2.raw");
    qemu_img(&["convert", "-f", "vmdk", "-O", "raw", s(&p), s(&qemu2)]);
    let dev = ferry_formats::vmdk::open(&p).unwrap();
    assert_eq!(read_all(dev.as_ref(), 2 * MIB), std::fs::read(&qemu2).unwrap());
}

#[test]
fn bad_sparse_headers() {
    let dir = tempfile::tempdir().unwrap();
    let (p, b) = sparse(dir.path(), "subformat=monolithicSparse");
    let name = p.display().to_string();
    let e = patched(&p, &b, 20, &(1u64 << 40).to_le_bytes());
    assert_eq!(e, format!("{name}: invalid grainSize 1099511627776: must be 1..4096 sectors"));
    let e = patched(&p, &b, 44, &100_000u32.to_le_bytes());
    assert_eq!(e, format!("{name}: invalid numGTEsPerGT 100000: must be 1..512"));
    let e = patched(&p, &b, 12, &(1u64 << 50).to_le_bytes());
    assert_eq!(e, format!("{name}: invalid capacity 1125899906842624: larger than 2^46 sectors"));
    let e = patched(&p, &b, 12, &(1u64 << 45).to_le_bytes());
    assert_eq!(e, format!("{name}: invalid capacity 35184372088832: needs more than 4194304 grain tables"));
    let e = patched(&p, &b, 4, &7u32.to_le_bytes());
    assert_eq!(e, format!("{name}: invalid version 7: expected 1, 2 or 3"));
    let e = patched(&p, &b, 77, &9u16.to_le_bytes());
    assert_eq!(e, format!("{name}: invalid compressAlgorithm 9: only 0 (none) and 1 (deflate) exist"));
    let e = patched(&p, &b, 73, b"\n \n\n");
    assert!(e.starts_with(&format!("{name}: invalid newline check bytes")), "{e}");
    // A grain-directory entry pointing past the end of the file.
    let gd = u64::from_le_bytes(b[56..64].try_into().unwrap()) as usize * 512;
    let e = patched(&p, &b, gd, &0x00ff_ffffu32.to_le_bytes());
    assert!(
        e.starts_with(&format!("{name}: invalid grain directory entry 0 16777215: grain table runs past end of file")),
        "{e}"
    );
    // Truncated inside the header.
    std::fs::write(&p, &b[..300]).unwrap();
    assert_eq!(open_err(&p), format!("{name}: invalid header 300 bytes: file shorter than one sector"));
}

#[test]
fn grains_past_eof_and_truncated_files_fail_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let (p, b) = sparse(dir.path(), "subformat=monolithicSparse");
    let name = p.display().to_string();
    // Cut the file inside its grains: the header is fine, the last grains are gone.
    std::fs::write(&p, &b[..b.len() - 65536 * 4]).unwrap();
    let dev = ferry_formats::vmdk::open(&p).unwrap();
    let mut buf = vec![0u8; SIZE as usize];
    let e = dev.read_at(&mut buf, 0).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{name}: invalid grain offset ")) && e.contains("past end of file"), "{e}");
    // A grain-table entry pointing far away.
    let gd = u64::from_le_bytes(b[56..64].try_into().unwrap()) as usize * 512;
    let gt = le32(&b, gd) as usize * 512;
    let mut c = b.clone();
    c[gt..gt + 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    std::fs::write(&p, c).unwrap();
    let dev = ferry_formats::vmdk::open(&p).unwrap();
    let e = dev.read_at(&mut buf[..4096], 0).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{name}: invalid grain offset {} length 4096: past end of file ({} bytes)",
            0x7fff_0000u64 * 512,
            b.len()
        )
    );
}

#[test]
fn corrupt_stream_grain_and_footer() {
    let dir = tempfile::tempdir().unwrap();
    let disk = std::fs::read(default_raw(dir.path())).unwrap();
    let p = dir.path().join("v.vmdk");
    let good = synth::vmware_stream(&disk, false);
    let name = p.display().to_string();
    // Garbage in the first grain's compressed bytes (after the 12-byte marker at sector 128).
    let mut b = good.clone();
    b[128 * 512 + 12..128 * 512 + 40].fill(0xff);
    std::fs::write(&p, &b).unwrap();
    let dev = ferry_formats::vmdk::open(&p).unwrap();
    let mut buf = vec![0u8; 65536];
    let e = dev.read_at(&mut buf, 0).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{name}: invalid compressed grain at sector 0: ")), "{e}");
    // A broken footer marker.
    let n = good.len();
    let e = patched(&p, &good, n - 1536 + 12, &7u32.to_le_bytes());
    assert!(e.starts_with(&format!("{name}: invalid footer marker size 0 type 7")), "{e}");
    // An absurd compressed size in a grain marker.
    let mut b = good.clone();
    b[128 * 512 + 8..128 * 512 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&p, &b).unwrap();
    let dev = ferry_formats::vmdk::open(&p).unwrap();
    let e = dev.read_at(&mut buf, 0).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{name}: invalid compressed grain size 4294967295: at sector 128")), "{e}");
}

#[test]
fn descriptor_problems() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let desc = d.join("d.vmdk");
    let name = desc.display().to_string();
    write_text(&desc, "version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"vmfs\"\nRW 100 VMFS \"gone-flat.vmdk\"\n");
    assert_eq!(
        open_err(&desc),
        format!(
            "{name}: invalid extent file {}: No such file or directory (os error 2)",
            d.join("gone-flat.vmdk").display()
        )
    );
    write_text(&d.join("short-flat.vmdk"), &"x".repeat(1024));
    write_text(&desc, "version=1\ncreateType=\"vmfs\"\nRW 100 VMFS \"short-flat.vmdk\"\n");
    assert_eq!(
        open_err(&desc),
        format!(
            "{}: invalid flat extent offset 0 sectors 100: runs past end of file (1024 bytes)",
            d.join("short-flat.vmdk").display()
        )
    );
    write_text(&desc, "version=1\ncreateType=\"vmfsRawDeviceMap\"\nRW 100 VMFSRDM \"x-rdm.vmdk\"\n");
    assert_eq!(
        open_err(&desc),
        format!("{name}: unsupported createType vmfsRawDeviceMap (a raw device mapping: copy the device itself)")
    );
    write_text(&desc, "version=1\ncreateType=\"custom\"\nRW 100 VMFSRAW \"x-raw.vmdk\"\n");
    assert_eq!(
        open_err(&desc),
        format!("{name}: unsupported raw device mapping extent \"x-raw.vmdk\" (VmfsRaw): copy the device itself")
    );
    write_text(&desc, "version=1\ncreateType=\"custom\"\nRW 10 SPARSE \"short-flat.vmdk\"\n");
    assert_eq!(
        open_err(&desc),
        format!(
            "{}: invalid magic [78, 78, 78, 78]: not a KDMV, COWD or seSparse extent",
            d.join("short-flat.vmdk").display()
        )
    );
    write_text(&desc, "version=1\ncreateType=\"custom\"\nRW ten FLAT \"short-flat.vmdk\" 0\n");
    assert_eq!(
        open_err(&desc),
        format!("{name}: invalid extent line \"RW ten FLAT \\\"short-flat.vmdk\\\" 0\": sector count is not a number")
    );
    write_text(&desc, "hello\n");
    assert!(open_err(&desc).starts_with(&format!("{name}: invalid descriptor")));
    write_text(&desc, "ab");
    assert_eq!(open_err(&desc), format!("{name}: invalid file size 2: too small to be a VMDK"));
}

#[test]
fn bad_cowd_and_sesparse_headers() {
    let dir = tempfile::tempdir().unwrap();
    let disk = vec![7u8; 1 << 20];
    let p = dir.path().join("x.vmdk");
    let name = p.display().to_string();
    let c = synth::cowd(&disk, 1);
    let e = patched(&p, &c, 16, &0u32.to_le_bytes());
    assert_eq!(e, format!("{name}: invalid COWD grainSize 0: must be 1..4096 sectors"));
    let e = patched(&p, &c, 24, &0u32.to_le_bytes());
    assert_eq!(e, format!("{name}: invalid COWD numGDEntries 0: capacity needs 1 (at most 4194304)"));
    let e = patched(&p, &c, 20, &u32::MAX.to_le_bytes());
    assert!(e.starts_with(&format!("{name}: invalid COWD gdOffset 4294967295: outside the file")), "{e}");
    let se = synth::sesparse(&disk, false);
    let e = patched(&p, &se, 24, &16u64.to_le_bytes());
    assert_eq!(e, format!("{name}: invalid seSparse grain size 0x10: expected 0x8"));
    let e = patched(&p, &se, 8, &1u64.to_le_bytes());
    assert_eq!(e, format!("{name}: invalid seSparse version 0x1: expected 0x200000001"));
    let e = patched(&p, &se, 512, &1u64.to_le_bytes());
    assert_eq!(e, format!("{name}: invalid seSparse volatile magic 0x1: expected 0xcafecafe"));
    let e = patched(&p, &se, 1024, &0x2000_0000_0000_0000u64.to_le_bytes());
    assert_eq!(
        e,
        format!("{name}: invalid grain directory entry 0 0x2000000000000000: not an allocated seSparse grain table")
    );
}
