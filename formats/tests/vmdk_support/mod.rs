//! Shared helpers of the VMDK tests: test patterns, qemu-img as the oracle, comparisons.
#![allow(dead_code)]

pub mod synth;

use ferry_formats::disk::{BlockDevice, ExtentKind};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const MIB: u64 = 1 << 20;

/// Runs qemu-img (or qemu-io) with `args`, panicking with its stderr on failure.
pub fn run(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog).args(args).output().unwrap_or_else(|e| panic!("{prog}: {e}"));
    assert!(out.status.success(), "{prog} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn qemu_img(args: &[&str]) -> String {
    run("qemu-img", args)
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Deterministic pseudo-random bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Writes a raw file of `size` bytes with data at `blocks` (offset, length), holes elsewhere.
/// Odd blocks are random, even ones compressible text.
pub fn pattern(path: &Path, size: u64, blocks: &[(u64, u64)]) {
    let f = File::create(path).unwrap();
    f.set_len(size).unwrap();
    for (i, &(off, len)) in blocks.iter().enumerate() {
        let data = if i % 2 == 0 {
            noise(off ^ 0x5a5a, len as usize)
        } else {
            (0..len).map(|j| b"ferry vmdk test "[(j % 16) as usize] ^ (i as u8)).collect()
        };
        f.write_all_at(&data, off).unwrap();
    }
}

/// The default pattern: 6 MiB + 3 sectors (a partial last grain), holes, unaligned blocks.
pub const SIZE: u64 = 6 * MIB + 1536;
pub const BLOCKS: &[(u64, u64)] = &[
    (0, 65536),
    (65536 * 3 + 512, 4096),
    (MIB, 300 * 1024),
    (3 * MIB - 4096, 8192),
    (5 * MIB, 512 * 1024),
    (6 * MIB, 1536),
];

pub fn default_raw(dir: &Path) -> PathBuf {
    let p = dir.join("src.raw");
    pattern(&p, SIZE, BLOCKS);
    p
}

/// qemu-img's reading of `path` as raw bytes.
pub fn qemu_raw(path: &Path) -> Vec<u8> {
    let out = path.with_extension("qemu.raw");
    qemu_img(&["convert", "-f", "vmdk", "-O", "raw", s(path), s(&out)]);
    let data = fs::read(&out).unwrap();
    fs::remove_file(&out).unwrap();
    data
}

/// Reads the whole device in `chunk`-byte pieces.
pub fn read_all(dev: &dyn BlockDevice, chunk: u64) -> Vec<u8> {
    let size = dev.size();
    let mut out = vec![0u8; size as usize];
    let mut off = 0;
    while off < size {
        let n = chunk.min(size - off);
        dev.read_at(&mut out[off as usize..(off + n) as usize], off).unwrap();
        off += n;
    }
    out
}

/// Ranges holding data according to `qemu-img map --output=json` (`data` and not `zero`:
/// qemu reports the holes of flat extents as data that reads as zeros).
pub fn qemu_data_ranges(path: &Path, fmt: &str) -> Vec<(u64, u64)> {
    let json = qemu_img(&["map", "--output=json", "-f", fmt, s(path)]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for e in v.as_array().unwrap() {
        if e["data"].as_bool() == Some(true) && e["zero"].as_bool() != Some(true) {
            merge(&mut out, e["start"].as_u64().unwrap(), e["length"].as_u64().unwrap());
        }
    }
    out
}

fn merge(out: &mut Vec<(u64, u64)>, start: u64, len: u64) {
    match out.last_mut() {
        Some(last) if last.0 + last.1 == start => last.1 += len,
        _ => out.push((start, len)),
    }
}

/// Ranges holding data according to our `map`.
pub fn our_data_ranges(dev: &dyn BlockDevice) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let map = dev.map(0, dev.size()).unwrap();
    let mut pos = 0;
    for e in &map {
        assert_eq!(e.offset, pos, "map must be contiguous: {map:?}");
        pos += e.length;
        if e.kind == ExtentKind::Data {
            merge(&mut out, e.offset, e.length);
        }
    }
    assert_eq!(pos, dev.size(), "map must cover the disk");
    out
}

/// Asserts our reader equals qemu-img's reading byte for byte and the maps agree on data.
pub fn assert_like_qemu(path: &Path) {
    let dev = ferry_formats::vmdk::open(path).unwrap_or_else(|e| panic!("{e}"));
    let want = qemu_raw(path);
    assert_eq!(dev.size(), want.len() as u64, "size of {}", path.display());
    for chunk in [MIB, 65536 * 3 + 512] {
        let got = read_all(dev.as_ref(), chunk);
        assert!(
            got == want,
            "{}: bytes differ from qemu-img (chunk {chunk}) at {:?}",
            path.display(),
            first_diff(&got, &want)
        );
    }
    assert_eq!(our_data_ranges(dev.as_ref()), qemu_data_ranges(path, "vmdk"), "map of {}", path.display());
}

pub fn first_diff(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y).or((a.len() != b.len()).then_some(a.len().min(b.len())))
}

/// Writes `bytes` at `off` of `path`, creating it.
pub fn write_at(path: &Path, off: u64, bytes: &[u8]) {
    let f = OpenOptions::new().create(true).write(true).truncate(false).open(path).unwrap();
    f.write_all_at(bytes, off).unwrap();
}

/// Writes a text file.
pub fn write_text(path: &Path, text: &str) {
    File::create(path).unwrap().write_all(text.as_bytes()).unwrap();
}

/// The error text of opening `path`.
pub fn open_err(path: &Path) -> String {
    match ferry_formats::vmdk::open(path) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e.to_string(),
    }
}
