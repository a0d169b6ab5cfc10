//! Every subformat qemu-img writes: our reader equals `qemu-img convert -O raw` byte for byte
//! and our map agrees with `qemu-img map` on which ranges hold data.
mod vmdk_support;

use ferry_formats::disk::{BlockDevice, ExtentKind};
use std::path::Path;
use vmdk_support::*;

fn convert(dir: &Path, raw: &Path, name: &str, opts: &str) -> std::path::PathBuf {
    let out = dir.join(name);
    qemu_img(&["convert", "-f", "raw", "-O", "vmdk", "-o", opts, s(raw), s(&out)]);
    out
}

#[test]
fn monolithic_sparse() {
    let dir = tempfile::tempdir().unwrap();
    let raw = default_raw(dir.path());
    let p = convert(dir.path(), &raw, "ms.vmdk", "subformat=monolithicSparse");
    assert_like_qemu(&p);
    let dev = ferry_formats::vmdk::open(&p).unwrap();
    let info = dev.info();
    assert_eq!(info.format, "vmdk");
    assert_eq!(info.cluster_size, Some(65536));
    assert_eq!(info.details["create_type"], "monolithicSparse");
    assert_eq!(std::fs::read(&raw).unwrap(), read_all(dev.as_ref(), 2 * MIB));
}

#[test]
fn monolithic_flat() {
    let dir = tempfile::tempdir().unwrap();
    let raw = default_raw(dir.path());
    let p = convert(dir.path(), &raw, "mf.vmdk", "subformat=monolithicFlat");
    assert_like_qemu(&p);
    let info = ferry_formats::vmdk::open(&p).unwrap().info();
    assert_eq!(info.files.len(), 2, "{:?}", info.files);
}

#[test]
fn two_gb_max_extent_sparse_and_flat() {
    let dir = tempfile::tempdir().unwrap();
    let raw = default_raw(dir.path());
    for (name, sub) in [("ts.vmdk", "twoGbMaxExtentSparse"), ("tf.vmdk", "twoGbMaxExtentFlat")] {
        let p = convert(dir.path(), &raw, name, &format!("subformat={sub}"));
        assert_like_qemu(&p);
    }
}

#[test]
fn stream_optimized_qemu_layout() {
    let dir = tempfile::tempdir().unwrap();
    let raw = default_raw(dir.path());
    let p = convert(dir.path(), &raw, "so.vmdk", "subformat=streamOptimized");
    assert_like_qemu(&p);
    let dev = ferry_formats::vmdk::open(&p).unwrap();
    assert_eq!(dev.info().details["create_type"], "streamOptimized");
    // Sub-grain and grain-straddling reads.
    let want = std::fs::read(&raw).unwrap();
    for (off, len) in [(512u64, 512usize), (65536 - 512, 1024), (MIB + 7 * 512, 200_000), (SIZE - 1024, 1024)] {
        let mut buf = vec![0u8; len];
        dev.read_at(&mut buf, off).unwrap();
        assert!(buf == want[off as usize..off as usize + len], "at {off}");
    }
}

#[test]
fn zeroed_grain_and_compat6() {
    let dir = tempfile::tempdir().unwrap();
    let raw = default_raw(dir.path());
    let p = convert(dir.path(), &raw, "zg.vmdk", "subformat=monolithicSparse,zeroed_grain=on");
    assert_like_qemu(&p);
    // Zero a grain that holds data: it becomes a zeroed GTE (flag bit 2).
    run("qemu-io", &["-f", "vmdk", "-c", "write -z 0 64k", s(&p)]);
    assert_like_qemu(&p);
    let dev = ferry_formats::vmdk::open(&p).unwrap();
    assert_eq!(dev.map(0, 65536).unwrap()[0].kind, ExtentKind::Zero);
    let p6 = convert(dir.path(), &raw, "c6.vmdk", "compat6=on,adapter_type=lsilogic");
    assert_like_qemu(&p6);
}

#[test]
fn parallel_reads_agree() {
    use rayon::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let raw = default_raw(dir.path());
    let want = std::fs::read(&raw).unwrap();
    for sub in ["monolithicSparse", "streamOptimized"] {
        let p = convert(dir.path(), &raw, &format!("{sub}.vmdk"), &format!("subformat={sub}"));
        let dev = ferry_formats::vmdk::open(&p).unwrap();
        let chunk = 65536 * 2;
        let chunks: Vec<u64> = (0..SIZE).step_by(chunk).collect();
        chunks.par_iter().for_each(|&off| {
            let n = (SIZE - off).min(chunk as u64) as usize;
            let mut buf = vec![0u8; n];
            dev.read_at(&mut buf, off).unwrap();
            assert!(buf == want[off as usize..off as usize + n], "{sub} at {off}");
        });
    }
}

/// Data past 4 GiB (GD entries beyond the first 128, sector numbers above 2^23).
#[test]
fn data_past_4_gib() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("big.raw");
    let g = 1u64 << 30;
    pattern(
        &raw,
        5 * g + 65536 * 5,
        &[(4096, 65536), (4 * g - 512, 4096), (4 * g + 3 * MIB, MIB), (5 * g + 65536 * 4, 65536)],
    );
    for sub in ["monolithicSparse", "streamOptimized", "twoGbMaxExtentSparse"] {
        let p = convert(dir.path(), &raw, &format!("{sub}.vmdk"), &format!("subformat={sub}"));
        let dev = ferry_formats::vmdk::open(&p).unwrap();
        let ours = our_data_ranges(dev.as_ref());
        assert_eq!(ours, qemu_data_ranges(&p, "vmdk"), "{sub}");
        // Compare each data range (and a margin) with qemu-io's reading through the raw source.
        let want = std::fs::File::open(&raw).unwrap();
        for (off, len) in ours {
            let start = off.saturating_sub(65536);
            let end = (off + len + 65536).min(dev.size());
            let mut a = vec![0u8; (end - start) as usize];
            let mut b = vec![0u8; a.len()];
            dev.read_at(&mut a, start).unwrap();
            std::os::unix::fs::FileExt::read_exact_at(&want, &mut b, start).unwrap();
            assert!(a == b, "{sub}: differs near {off}");
        }
        std::fs::remove_file(&p).ok();
    }
    // The raw source is the same bytes qemu-img reads from each vmdk: check one directly.
    let p = convert(dir.path(), &raw, "check.vmdk", "subformat=monolithicSparse");
    let q = dir.path().join("q.raw");
    qemu_img(&["convert", "-f", "vmdk", "-O", "raw", s(&p), s(&q)]);
    qemu_img(&["compare", "-f", "raw", "-F", "raw", s(&raw), s(&q)]);
}

/// The extents of a split sparse disk have an empty descriptor area: each opens on its own.
#[test]
fn split_sparse_extent_opens_alone() {
    let dir = tempfile::tempdir().unwrap();
    let raw = default_raw(dir.path());
    let p = convert(dir.path(), &raw, "ts.vmdk", "subformat=twoGbMaxExtentSparse");
    let extent = dir.path().join("ts-s001.vmdk");
    let dev = ferry_formats::vmdk::open(&extent).unwrap_or_else(|e| panic!("{e}"));
    let whole = ferry_formats::vmdk::open(&p).unwrap();
    assert!(read_all(dev.as_ref(), MIB) == read_all(whole.as_ref(), MIB));
}
