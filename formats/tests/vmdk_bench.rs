//! Read throughput of our VMDK reader against qemu-img (not a timed test: `#[ignore]`d).
//! Run: cargo test --release -p ferry-formats --test vmdk_bench -- --ignored --nocapture
mod vmdk_support;

use rayon::prelude::*;
use std::time::Instant;
use vmdk_support::*;

/// 1 GiB disk with 256 MiB of data in 200 extents, half random and half compressible.
fn source(dir: &std::path::Path) -> std::path::PathBuf {
    let raw = dir.join("bench.raw");
    let mut blocks = Vec::new();
    let mut x = 0x1234_5678u64;
    for i in 0..200u64 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let len = ((x >> 33) % (2 * MIB) + 65536) & !4095;
        blocks.push((i * (1 << 30) / 200, len.min(5 * MIB)));
    }
    pattern(&raw, 1 << 30, &blocks);
    raw
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

#[test]
#[ignore = "benchmark: run explicitly in release mode"]
fn read_throughput_vs_qemu_img() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let raw = source(dir.path());
    for sub in ["monolithicSparse", "streamOptimized"] {
        let p = dir.path().join(format!("{sub}.vmdk"));
        qemu_img(&["convert", "-f", "raw", "-O", "vmdk", "-o", &format!("subformat={sub}"), s(&raw), s(&p)]);
        let (mut ours, mut qemu) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            let t = Instant::now();
            let dev = ferry_formats::vmdk::open(&p).unwrap();
            let size = dev.size();
            let chunk = 2 * MIB;
            let chunks: Vec<u64> = (0..size).step_by(chunk as usize).collect();
            let sum: u64 = chunks
                .par_iter()
                .map(|&off| {
                    let n = (size - off).min(chunk) as usize;
                    // Only allocated ranges are read, as the conversion engine does.
                    let mut total = 0u64;
                    for e in dev.map(off, n as u64).unwrap() {
                        if e.kind == ferry_formats::disk::ExtentKind::Data {
                            let mut buf = vec![0u8; e.length as usize];
                            dev.read_at(&mut buf, e.offset).unwrap();
                            total += u64::from(buf[buf.len() / 2]);
                        }
                    }
                    total
                })
                .sum();
            std::hint::black_box(sum);
            ours.push(t.elapsed().as_secs_f64());
            let out = dir.path().join("q.raw");
            let t = Instant::now();
            qemu_img(&["convert", "-f", "vmdk", "-O", "raw", "-m", "8", "-W", s(&p), s(&out)]);
            qemu.push(t.elapsed().as_secs_f64());
            std::fs::remove_file(&out).ok();
        }
        let (o, q) = (median(ours), median(qemu));
        println!("{sub}: ours {o:.3} s, qemu-img convert -O raw -m 8 -W {q:.3} s, ratio {:.2}", o / q);
    }
}
