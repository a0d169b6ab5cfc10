//! `ferry img convert` against qemu-img: every source variant (raw, qemu-made qcow2 v2/v3,
//! zlib/zstd compressed, 4 KiB and 2 MiB clusters, zero clusters, backing chains) converted
//! to qcow2 in every mode must pass `qemu-img check` and equal the source for
//! `qemu-img compare`; Ferry's reading must match `qemu-img convert -O raw` byte for byte.
mod img_support;
use img_support::*;

const MODES: &[&[&str]] = &[
    &[],
    &["-c"],
    &["--compression", "zstd"],
    &["-o", "preallocation=metadata"],
    &["-o", "preallocation=full"],
    &["-o", "cluster_size=4k"],
];

#[test]
fn every_source_to_qcow2_in_every_mode() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sources = standard_images(dir.path());
    for (name, src) in &sources {
        for (i, mode) in MODES.iter().enumerate() {
            let out = dir.path().join(format!("out-{name}-{i}.qcow2"));
            let mut args = vec!["img", "convert", "-O", "qcow2"];
            args.extend_from_slice(mode);
            args.extend([s(src), s(&out)]);
            let (code, _, err) = run(ferry(&args));
            assert_eq!(code, 0, "ferry {args:?}: {err}");
            assert_check_clean(&out);
            assert_same(src, &out);
            std::fs::remove_file(&out).unwrap();
        }
    }
}

#[test]
fn reader_matches_qemu_byte_for_byte() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = standard_raw(dir.path());
    for (name, src) in qemu_variants(dir.path(), &raw) {
        let ours = dir.path().join(format!("{name}.ferry.raw"));
        let theirs = dir.path().join(format!("{name}.qemu.raw"));
        let (code, _, err) = run(ferry(&["img", "convert", "-O", "raw", s(&src), s(&ours)]));
        assert_eq!(code, 0, "{name}: {err}");
        qemu_img(&["convert", "-O", "raw", s(&src), s(&theirs)]);
        assert!(std::fs::read(&ours).unwrap() == std::fs::read(&theirs).unwrap(), "{name}: bytes differ");
    }
}

#[test]
fn round_trip_raw_qcow2_raw() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = standard_raw(dir.path());
    for mode in [&[][..], &["-c"][..], &["--compression", "zstd"][..]] {
        let q = dir.path().join("rt.qcow2");
        let back = dir.path().join("rt.raw");
        let mut args = vec!["img", "convert", "-O", "qcow2"];
        args.extend_from_slice(mode);
        args.extend([s(&raw), s(&q)]);
        assert_eq!(run(ferry(&args)).0, 0);
        assert_eq!(run(ferry(&["img", "convert", "-O", "qcow2", s(&q), s(&dir.path().join("rt2.qcow2"))])).0, 0);
        assert_eq!(run(ferry(&["img", "convert", "-f", "qcow2", "-O", "raw", s(&q), s(&back)])).0, 0);
        assert!(std::fs::read(&raw).unwrap() == std::fs::read(&back).unwrap(), "round trip {mode:?} differs");
        assert_same(&raw, &dir.path().join("rt2.qcow2"));
    }
}

#[test]
fn zstd_header_and_compressed_clusters() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = standard_raw(dir.path());
    let out = dir.path().join("z.qcow2");
    assert_eq!(run(ferry(&["img", "convert", "-O", "qcow2", "--compression", "zstd", s(&raw), s(&out)])).0, 0);
    let info: serde_json::Value =
        serde_json::from_slice(&qemu_img(&["info", "--output=json", s(&out)]).stdout).unwrap();
    assert_eq!(info["format-specific"]["data"]["compression-type"], "zstd");
    let check: serde_json::Value =
        serde_json::from_slice(&qemu_img(&["check", "--output=json", s(&out)]).stdout).unwrap();
    assert!(check["compressed-clusters"].as_u64().unwrap() > 0, "{check}");
}

#[test]
fn raw_output_sparse_and_preallocated() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = standard_raw(dir.path());
    let q = dir.path().join("src.qcow2");
    qemu_img(&["convert", "-O", "qcow2", s(&raw), s(&q)]);
    let sparse = dir.path().join("sparse.raw");
    let full = dir.path().join("full.raw");
    assert_eq!(run(ferry(&["img", "convert", "-O", "raw", s(&q), s(&sparse)])).0, 0);
    assert_eq!(run(ferry(&["img", "convert", "-O", "raw", "-o", "preallocation=full", s(&q), s(&full)])).0, 0);
    use std::os::unix::fs::MetadataExt;
    let (ms, mf) = (std::fs::metadata(&sparse).unwrap(), std::fs::metadata(&full).unwrap());
    assert_eq!(ms.len(), 64 << 20);
    assert!(ms.blocks() * 512 < 8 << 20, "sparse output allocates {} bytes", ms.blocks() * 512);
    assert!(mf.blocks() * 512 >= 64 << 20, "full output allocates only {} bytes", mf.blocks() * 512);
    assert_same(&raw, &sparse);
    assert_same(&raw, &full);
}

#[test]
fn big_sparse_disk_with_data_past_4g() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("big.raw");
    let size = 6u64 << 30;
    make_raw(&raw, size, &[(1 << 20, 65536), ((4u64 << 30) + 12345, 300_000), (size - 4096, 4096)]);
    let q = dir.path().join("big.qcow2");
    let back = dir.path().join("back.raw");
    assert_eq!(run(ferry(&["img", "convert", "-O", "qcow2", s(&raw), s(&q)])).0, 0);
    assert_check_clean(&q);
    assert_same(&raw, &q);
    assert_eq!(run(ferry(&["img", "convert", "-O", "raw", s(&q), s(&back)])).0, 0);
    assert_same(&raw, &back);
    // qemu's own >4 GiB qcow2, read by Ferry.
    let theirs = dir.path().join("theirs.qcow2");
    qemu_img(&["convert", "-O", "qcow2", s(&raw), s(&theirs)]);
    let ours = dir.path().join("ours.qcow2");
    assert_eq!(run(ferry(&["img", "convert", "-O", "qcow2", "-c", s(&theirs), s(&ours)])).0, 0);
    assert_check_clean(&ours);
    assert_same(&raw, &ours);
}
