//! Helpers of the `ferry img` integration tests: running the binary and qemu-img / qemu-io
//! (the oracle), and writing deterministic test disks.
#![allow(dead_code)]
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `ferry ARGS`.
pub fn ferry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry")).args(args).output().expect("run ferry")
}

/// True when qemu-img is installed; prints why a test is skipped otherwise.
pub fn have_qemu() -> bool {
    let ok = Command::new("qemu-img").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP: qemu-img is not installed (tests/run.sh installs qemu-utils)");
    }
    ok
}

/// Runs `qemu-img ARGS`, asserting success.
pub fn qemu_img(args: &[&str]) -> Output {
    let out = Command::new("qemu-img").args(args).output().expect("run qemu-img");
    assert!(out.status.success(), "qemu-img {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs `qemu-io -c CMD... FILE` (with `-f FMT`), asserting success.
pub fn qemu_io(file: &Path, fmt: &str, cmds: &[&str]) {
    let mut c = Command::new("qemu-io");
    c.args(["-f", fmt]);
    for cmd in cmds {
        c.args(["-c", cmd]);
    }
    let out = c.arg(file).output().expect("run qemu-io");
    assert!(out.status.success(), "qemu-io {cmds:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Runs a command and returns (exit code, stdout, stderr).
pub fn run(out: Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `path` as &str.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Bytes that are half random-looking, half compressible.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|i| {
            if (i / 512) % 2 == 0 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            } else {
                b"ferry carries disks "[i % 20]
            }
        })
        .collect()
}

/// Writes a sparse raw disk of `size` bytes with pattern data at each `(offset, length)`.
pub fn make_raw(path: &Path, size: u64, extents: &[(u64, usize)]) {
    let f = std::fs::File::create(path).expect("create raw");
    f.set_len(size).expect("size raw");
    for (i, &(off, len)) in extents.iter().enumerate() {
        f.write_all_at(&pattern(len, i as u64 + 1), off).expect("write raw");
    }
}

/// The standard small test disk: 64 MiB with data in odd places (unaligned, straddling
/// clusters and L2 ranges of 4 KiB-cluster images, a whole-zero written block, the last byte).
pub fn standard_raw(dir: &Path) -> PathBuf {
    let p = dir.join("src.raw");
    let size = 64u64 << 20;
    make_raw(
        &p,
        size,
        &[(0, 4096), (65536 * 3 + 100, 200_000), (5 << 20, 1 << 20), (33 << 20, 3000), (size - 513, 513)],
    );
    // A written block of zeros: data in the map, zeros in content.
    let f = std::fs::OpenOptions::new().write(true).open(&p).expect("open raw");
    f.write_all_at(&vec![0u8; 131072], 20 << 20).expect("write zeros");
    p
}

/// Asserts `qemu-img check` is clean (exit 0, no leaks, no corruptions).
pub fn assert_check_clean(path: &Path) {
    let out = Command::new("qemu-img").args(["check", "--output=json", s(path)]).output().expect("qemu-img check");
    assert_eq!(out.status.code(), Some(0), "qemu-img check {}: {}", path.display(), String::from_utf8_lossy(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("check json");
    assert!(v.get("leaks").is_none_or(|l| l == 0), "{v}");
    assert!(v.get("corruptions").is_none_or(|c| c == 0), "{v}");
}

/// Asserts `qemu-img compare` finds `a` and `b` identical.
pub fn assert_same(a: &Path, b: &Path) {
    let out = Command::new("qemu-img").args(["compare", s(a), s(b)]).output().expect("qemu-img compare");
    assert_eq!(
        out.status.code(),
        Some(0),
        "qemu-img compare {} {}: {}{}",
        a.display(),
        b.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// [`standard_raw`] (named `raw`) followed by its [`qemu_variants`].
pub fn standard_images(dir: &Path) -> Vec<(String, PathBuf)> {
    let raw = standard_raw(dir);
    let mut files = vec![("raw".to_string(), raw.clone())];
    files.extend(qemu_variants(dir, &raw));
    files
}

/// The qcow2 variants qemu-img makes of a raw disk, by name.
pub fn qemu_variants(dir: &Path, raw: &Path) -> Vec<(String, PathBuf)> {
    let mut v = Vec::new();
    for (name, args) in [
        ("v3", vec!["-O", "qcow2"]),
        ("v2", vec!["-O", "qcow2", "-o", "compat=0.10"]),
        ("zlib", vec!["-O", "qcow2", "-c"]),
        ("zstd", vec!["-O", "qcow2", "-c", "-o", "compression_type=zstd"]),
        ("c4k", vec!["-O", "qcow2", "-o", "cluster_size=4096"]),
        ("c2m", vec!["-O", "qcow2", "-o", "cluster_size=2M"]),
    ] {
        let p = dir.join(format!("{name}.qcow2"));
        let mut a = vec!["convert"];
        a.extend(args);
        a.extend([s(raw), s(&p)]);
        qemu_img(&a);
        v.push((name.to_string(), p));
    }
    // Zero clusters (v3 zero flag) over data, made by qemu-io.
    let z = dir.join("zeroflag.qcow2");
    qemu_img(&["convert", "-O", "qcow2", s(raw), s(&z)]);
    qemu_io(&z, "qcow2", &["write -z 5M 256k", "write -z -u 0 64k"]);
    v.push(("zeroflag".into(), z));
    // A backing chain: qcow2 base, qcow2 overlay with new data and zeroed ranges.
    let base = dir.join("base.qcow2");
    qemu_img(&["convert", "-O", "qcow2", s(raw), s(&base)]);
    let top = dir.join("overlay.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", s(&top)]);
    qemu_io(&top, "qcow2", &["write -P 0x3c 4k 8k", "write -z 5M 64k", "write -P 0x11 40M 1M"]);
    v.push(("overlay".into(), top));
    // A raw backing file.
    let top_raw = dir.join("overlay-raw.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", "-b", s(raw), "-F", "raw", s(&top_raw)]);
    qemu_io(&top_raw, "qcow2", &["write -P 0x77 1M 128k"]);
    v.push(("overlay-raw".into(), top_raw));
    v
}
