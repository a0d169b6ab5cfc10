//! Runs the VHD, VHDX and VDI fuzz entry points (`formats/fuzz`) over qemu-img-made seeds
//! and deterministic mutations of them (header and table fields set to extreme values,
//! checksums recomputed where the format has them, truncations): never a panic.
use std::path::Path;
use std::process::Command;

fn qemu_img(args: &[&str]) -> bool {
    Command::new("qemu-img").args(args).output().is_ok_and(|o| o.status.success())
}

/// A small raw disk with data, converted to `fmt` with `opts`.
fn seed(dir: &Path, fmt: &str, opts: &str) -> Option<Vec<u8>> {
    let raw = dir.join("r.raw");
    let mut data = vec![0u8; 2 << 20];
    for (i, b) in data.iter_mut().enumerate().take(200_000) {
        *b = (i * 7 % 251) as u8;
    }
    data[(1 << 20) + 5] = 1;
    std::fs::write(&raw, &data).unwrap();
    let out = dir.join(format!("seed.{fmt}"));
    let _ = std::fs::remove_file(&out);
    qemu_img(&["convert", "-f", "raw", "-O", fmt, "-o", opts, raw.to_str()?, out.to_str()?]).then(|| std::fs::read(&out).unwrap())
}

/// Copies of `seed` with 4- and 8-byte fields at `offsets` set to extreme values; `fix` runs
/// on each mutant (to recompute a checksum).
fn mutants(seed: &[u8], offsets: impl Iterator<Item = usize>, fix: &dyn Fn(&mut [u8])) -> Vec<Vec<u8>> {
    let mut out = vec![seed.to_vec(), seed[..seed.len() / 2].to_vec(), seed[..seed.len().min(700)].to_vec()];
    let extremes: [&[u8]; 5] = [&[0xff; 8], &[0; 8], &[0, 0, 0, 0x80, 0, 0, 0, 0], &[0, 0, 0x10, 0, 0, 0, 0, 0], &[1, 0, 0, 0, 0, 0, 0, 0]];
    for at in offsets {
        for x in extremes {
            for width in [4, 8] {
                if at + width > seed.len() {
                    continue;
                }
                let mut m = seed.to_vec();
                m[at..at + width].copy_from_slice(&x[..width]);
                fix(&mut m);
                out.push(m);
            }
        }
    }
    out
}

fn vhd_fix(m: &mut [u8]) {
    for at in [0, m.len().saturating_sub(512)] {
        if m.len() >= at + 512 && &m[at..at + 8] == b"conectix" {
            m[at + 64..at + 68].fill(0);
            let sum = !m[at..at + 512].iter().fold(0u32, |s, &x| s.wrapping_add(x as u32));
            m[at + 64..at + 68].copy_from_slice(&sum.to_be_bytes());
        }
    }
}

#[test]
fn vhd_seeds_and_mutants() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for opts in ["subformat=dynamic", "subformat=fixed"] {
        let Some(s) = seed(dir.path(), "vpc", opts) else { return eprintln!("SKIP: qemu-img missing") };
        let footer = s.len() - 512;
        // The dynamic header's fields (BAT offset, entries, block size, parent locators), then
        // the footer's; a fixed disk has only the footer.
        let dynh: Vec<usize> = if opts.ends_with("dynamic") { (512..600).step_by(4).chain((1088..1280).step_by(24)).collect() } else { vec![] };
        let offsets = dynh.into_iter().chain((footer + 16..footer + 96).step_by(4));
        for m in mutants(&s, offsets, &vhd_fix) {
            let _ = ferry_formats::vhd::fuzz_image(&m);
            n += 1;
        }
        assert!(ferry_formats::vhd::fuzz_image(&s).is_ok());
    }
    assert!(n > 100);
}

#[test]
fn vdi_seeds_and_mutants() {
    let dir = tempfile::tempdir().unwrap();
    for opts in ["static=off", "static=on"] {
        let Some(s) = seed(dir.path(), "vdi", opts) else { return eprintln!("SKIP: qemu-img missing") };
        assert!(ferry_formats::vdi::fuzz_image(&s).is_ok());
        for m in mutants(&s, (0x40..0x1d0).step_by(4).chain((0x200..0x220).step_by(4)), &|_| {}) {
            let _ = ferry_formats::vdi::fuzz_image(&m);
        }
    }
}

#[test]
fn vhdx_seeds_and_mutants() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = seed(dir.path(), "vhdx", "block_size=1M,log_size=1M") else { return eprintln!("SKIP: qemu-img missing") };
    assert!(ferry_formats::vhdx::fuzz_image(&s).is_ok());
    // Headers and region tables carry CRC-32C: recomputed so the mutants reach the parsers
    // behind them. The metadata table and the BAT have none.
    let fix = |m: &mut [u8]| {
        for (at, len) in [(64usize << 10, 4096usize), (128 << 10, 4096), (192 << 10, 65536), (256 << 10, 65536)] {
            if m.len() >= at + len {
                m[at + 4..at + 8].fill(0);
                let c = crc32c::crc32c(&m[at..at + len]);
                m[at + 4..at + 8].copy_from_slice(&c.to_le_bytes());
            }
        }
    };
    let meta = (3usize << 20..(3 << 20) + 256).step_by(16);
    let bat = (2usize << 20..(2 << 20) + 64).step_by(16);
    let offsets = (65536 + 48..65536 + 80).step_by(8).chain(((192 << 10) + 8..(192 << 10) + 80).step_by(8)).chain(meta).chain(bat);
    for m in mutants(&s, offsets, &fix) {
        let _ = ferry_formats::vhdx::fuzz_image(&m);
    }
}
