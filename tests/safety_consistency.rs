//! Same answer everywhere (issue 10 points 5 and 8): damaged ext4 superblocks are one-line
//! errors (no abort, no panic); `img check` refuses backing loops and over-deep chains as
//! `info` does; VMDK and qcow2 chains stop at the same depth; read errors of `inspect` go to
//! stderr with a non-zero exit.
mod img_support;
mod safety_support;
use img_support::{have_qemu, qemu_img, s};
use safety_support::*;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn patch(p: &Path, at: u64, bytes: &[u8]) {
    std::fs::OpenOptions::new().write(true).open(p).unwrap().write_all_at(bytes, at).unwrap();
}

/// A 16 MiB ext4 filesystem made by mkfs.ext4 (the whole disk, no partition table).
fn ext4(dir: &Path, name: &str, extra: &[&str]) -> Option<PathBuf> {
    let p = dir.join(name);
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(16 << 20).unwrap();
    let ok = Command::new("mkfs.ext4").args(["-q", "-F", "-b", "4096"]).args(extra).arg(&p).status().is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIP: mkfs.ext4 is not installed (tests/run.sh installs e2fsprogs)");
        return None;
    }
    Some(p)
}

#[test]
fn damaged_ext4_superblocks_are_one_line_errors() {
    let top = tempfile::tempdir().unwrap();
    let d = top.path();
    /// (image, mkfs.ext4 options, byte offset, bytes written there, expected field and value)
    type Case<'a> = (&'a str, &'a [&'a str], u64, Vec<u8>, &'a str);
    let cases: [Case; 3] = [
        ("first.img", &[], 1024 + 20, 0xffff_fff0u32.to_le_bytes().to_vec(), "s_first_data_block 4294967280"),
        ("bpg.img", &[], 1024 + 32, 0u32.to_le_bytes().to_vec(), "s_blocks_per_group 0"),
        ("count.img", &["-O", "64bit"], 1024 + 4, u32::MAX.to_le_bytes().to_vec(), "s_blocks_count 18446744073709551615"),
    ];
    for (name, extra, at, bytes, want) in cases {
        let Some(img) = ext4(d, name, extra) else { return };
        patch(&img, at, &bytes);
        if name == "count.img" {
            patch(&img, 1024 + 0x150, &u32::MAX.to_le_bytes());
        }
        let sum = sha(&img);
        for args in [vec!["inspect", s(&img)], vec!["inspect", "--json", s(&img)]] {
            let (code, out, err) = ferry_t(60, &args);
            assert_eq!(code, 1, "{name}: {err}");
            assert!(!err.contains("panicked") && !err.contains("memory allocation"), "{name}: {err}");
            let warn: Vec<&str> = err.lines().filter(|l| l.contains(want)).collect();
            assert_eq!(warn.len(), 1, "{name}: {err}");
            assert!(warn[0].starts_with("ferry: warning: /dev/sda: ext: /: invalid superblock:"), "{}", warn[0]);
            assert!(!out.contains("warning:") || args.contains(&"--json"), "read errors on stdout: {out}");
        }
        assert_eq!(sha(&img), sum);
    }
}

#[test]
fn check_refuses_what_info_refuses() {
    if !have_qemu() {
        return;
    }
    let top = tempfile::tempdir().unwrap();
    let d = top.path();
    // a -> b -> a.
    qemu_img(&["create", "-q", "-f", "qcow2", s(&d.join("b.qcow2")), "1M"]);
    qemu_img(&["create", "-q", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", s(&d.join("a.qcow2"))]);
    qemu_img(&["rebase", "-q", "-u", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", s(&d.join("b.qcow2"))]);
    let info = refused(ferry_t(30, &["img", "info", s(&d.join("a.qcow2"))]), 1, &["loops back"]);
    let check = refused(ferry_t(30, &["img", "check", s(&d.join("a.qcow2"))]), 1, &["loops back"]);
    assert_eq!(info, check);
    let (_, out, _) = ferry_t(30, &["img", "check", s(&d.join("a.qcow2"))]);
    assert!(!out.contains("No errors"), "{out}");
}

/// A chain of `n` images: `name0` the base, each next backed by the one before; returns the top.
fn chain(d: &Path, n: usize, fmt: &str) -> PathBuf {
    let p = |i: usize| d.join(format!("{fmt}{i}.{fmt}"));
    qemu_img(&["create", "-q", "-f", fmt, s(&p(0)), "1M"]);
    for i in 1..n {
        let b = format!("{fmt}{}.{fmt}", i - 1);
        qemu_img(&["create", "-q", "-f", fmt, "-b", &b, "-F", fmt, s(&p(i))]);
    }
    p(n - 1)
}

#[test]
fn chains_stop_at_the_same_depth() {
    if !have_qemu() {
        return;
    }
    for fmt in ["qcow2", "vmdk"] {
        let top = tempfile::tempdir().unwrap();
        let d = top.path();
        let ok = chain(d, 64, fmt);
        for verb in ["info", "check", "map"] {
            let (code, _, err) = ferry_t(60, &["img", verb, s(&ok)]);
            assert_eq!(code, 0, "{fmt} {verb} 64 images: {err}");
        }
        let next = d.join(format!("{fmt}64.{fmt}"));
        let b = format!("{fmt}63.{fmt}");
        qemu_img(&["create", "-q", "-f", fmt, "-b", &b, "-F", fmt, s(&next)]);
        for verb in ["info", "check", "map"] {
            refused(ferry_t(60, &["img", verb, s(&next)]), 1, &["chain depth", "more than 64 images"]);
        }
        let out = d.join("o.qcow2");
        refused(ferry_t(60, &["img", "convert", "-O", "qcow2", s(&next), s(&out)]), 1, &["chain depth"]);
        assert!(!out.exists() && temps(d).is_empty());
    }
}

#[test]
fn overlapping_partitions_are_warned_as_sfdisk_does() {
    let top = tempfile::tempdir().unwrap();
    let img = top.path().join("overlap.img");
    let mut d = vec![0u8; 64 * 512];
    d[510] = 0x55;
    d[511] = 0xaa;
    for (slot, lba, n) in [(0usize, 2u32, 20u32), (1, 10, 20), (2, 40, 4)] {
        let e = &mut d[446 + 16 * slot..446 + 16 * (slot + 1)];
        e[4] = 0x83;
        e[8..12].copy_from_slice(&lba.to_le_bytes());
        e[12..16].copy_from_slice(&n.to_le_bytes());
    }
    std::fs::write(&img, &d).unwrap();
    let Ok(o) = Command::new("sfdisk").arg("--verify").arg(&img).output() else {
        eprintln!("SKIP: sfdisk is not installed (tests/run.sh installs fdisk)");
        return;
    };
    // The oracle: sfdisk's "Partition 1: overlaps partition 2."
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let pairs: Vec<&str> = text.lines().filter(|l| l.contains("overlaps partition")).collect();
    assert_eq!(pairs, ["Partition 1: overlaps partition 2."], "{text}");
    let (code, out, err) = ferry_t(30, &["inspect", "--json", s(&img)]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let w = &v["disks"][0]["partition_table"]["warnings"];
    assert_eq!(w, &serde_json::json!(["/dev/sda: partitions 1 and 2 overlap (bytes 1024-11263 and 5120-15359)"]));
    assert!(err.contains("ferry: warning: /dev/sda: partitions 1 and 2 overlap"), "{err}");
}

#[test]
fn grain_inflating_past_its_size_is_refused_as_qemu_does() {
    if !have_qemu() {
        return;
    }
    let top = tempfile::tempdir().unwrap();
    let d = top.path();
    raw(&d.join("r.raw"), 1 << 20);
    let vmdk = d.join("s.vmdk");
    qemu_img(&["convert", "-q", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", s(&d.join("r.raw")), s(&vmdk)]);
    // Walk the markers from overHead to the first grain; replace its data with a zlib stream
    // of 65537 bytes (one more than the grain).
    let mut b = std::fs::read(&vmdk).unwrap();
    let u64at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let mut p = u64at(&b, 56) as usize * 512;
    loop {
        let (lba, size) = (u64at(&b, p), u32::from_le_bytes(b[p + 8..p + 12].try_into().unwrap()));
        if size > 0 {
            break;
        }
        p += 512 + lba as usize * 512;
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut z, &[0u8; 65537]).unwrap();
    let z = z.finish().unwrap();
    b[p + 8..p + 12].copy_from_slice(&(z.len() as u32).to_le_bytes());
    b[p + 12..p + 12 + z.len()].copy_from_slice(&z);
    std::fs::write(&vmdk, &b).unwrap();
    // The oracle refuses it.
    let q = Command::new("qemu-img").args(["convert", "-O", "raw", s(&vmdk), s(&d.join("q.raw"))]).output().unwrap();
    assert!(!q.status.success());
    let out = d.join("o.raw");
    refused(ferry_t(60, &["img", "convert", "-O", "raw", s(&vmdk), s(&out)]), 1, &["s.vmdk", "inflates past the grain's 65536 bytes"]);
    assert!(!out.exists() && temps(d).is_empty());
    let (code, _, err) = ferry_t(60, &["img", "check", s(&vmdk)]);
    assert_eq!(code, 2);
    assert!(err.contains("inflates past the grain"), "{err}");
}
