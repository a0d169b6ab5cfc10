//! Malformed qcow2 files get a one-line error naming the file, the field and the value
//! (never a panic); a conversion that fails half-way leaves nothing at the output path.
mod img_support;
use img_support::*;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A small valid qcow2 made by qemu-img, with data.
fn valid(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    qemu_img(&["create", "-q", "-f", "qcow2", s(&p), "64M"]);
    qemu_io(&p, "qcow2", &["write -P 0x61 0 1M", "write -P 0x62 20M 64k"]);
    p
}

fn patch(p: &Path, at: u64, bytes: &[u8]) {
    std::fs::OpenOptions::new().write(true).open(p).unwrap().write_all_at(bytes, at).unwrap();
}

/// Runs `ferry img info -f qcow2 FILE`, expecting failure with exactly one line on stderr.
fn one_line_error(p: &Path) -> String {
    let (code, _, err) = run(ferry(&["img", "info", "-f", "qcow2", s(p)]));
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err.trim_end().to_string()
}

#[test]
fn bad_headers_give_one_line_errors() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    type Damage = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Damage, String)> = vec![
        ("magic", Box::new(|p| patch(p, 0, b"QFIX")), "invalid magic 0x51464958: not a qcow2 image (expected QFI\\xfb)".into()),
        ("version", Box::new(|p| patch(p, 4, &7u32.to_be_bytes())), "invalid version 7: only qcow2 versions 2 and 3 exist".into()),
        ("cbits", Box::new(|p| patch(p, 20, &30u32.to_be_bytes())), "invalid cluster_bits 30: must be between 9 and 21".into()),
        (
            "l1huge",
            Box::new(|p| patch(p, 36, &0x1000_0000u32.to_be_bytes())),
            "invalid l1_size 268435456: larger than the 32 MiB L1 table limit".into(),
        ),
        ("l1small", Box::new(|p| patch(p, 36, &0u32.to_be_bytes())), "invalid l1_size 0: too small for the virtual size (needs 1)".into()),
        (
            "l1eof",
            Box::new(|p| patch(p, 40, &0x7fff_0000u64.to_be_bytes())),
            "invalid l1_table_offset 2147418112: table of 8 bytes lies outside the file".into(),
        ),
        (
            "l1unaligned",
            Box::new(|p| patch(p, 40, &0x30008u64.to_be_bytes())),
            "invalid l1_table_offset 196616: not aligned to the cluster size 65536".into(),
        ),
        ("crypt", Box::new(|p| patch(p, 32, &1u32.to_be_bytes())), "unsupported encryption (crypt_method 1)".into()),
        (
            "corrupt",
            Box::new(|p| patch(p, 72, &2u64.to_be_bytes())),
            "invalid incompatible_features 0x2: the image is marked corrupt".into(),
        ),
        ("datafile", Box::new(|p| patch(p, 72, &4u64.to_be_bytes())), "unsupported external data file (incompatible feature bit 2)".into()),
        ("extl2", Box::new(|p| patch(p, 72, &16u64.to_be_bytes())), "unsupported extended L2 entries (incompatible feature bit 4)".into()),
        ("unknown", Box::new(|p| patch(p, 72, &0x100u64.to_be_bytes())), "unsupported incompatible feature bits 0x100".into()),
        (
            "truncated",
            Box::new(|p| std::fs::OpenOptions::new().write(true).open(p).unwrap().set_len(50).unwrap()),
            "invalid header length 50: file is shorter than a qcow2 header (72 bytes)".into(),
        ),
        (
            "tablescut",
            Box::new(|p| std::fs::OpenOptions::new().write(true).open(p).unwrap().set_len(0x20000).unwrap()),
            "invalid l1_table_offset 196608: table of 8 bytes lies outside the file (131072 bytes)".into(),
        ),
    ];
    for (name, damage, want) in cases {
        let p = valid(d, &format!("{name}.qcow2"));
        damage(&p);
        let err = one_line_error(&p);
        let prefix = format!("ferry: {}: ", p.display());
        assert!(err.starts_with(&prefix), "{name}: {err}");
        assert!(err[prefix.len()..].starts_with(&want), "{name}: got {err:?}, want {want:?}");
    }
    // A dirty image opens (read-only), as qemu does.
    let dirty = valid(d, "dirty.qcow2");
    patch(&dirty, 72, &1u64.to_be_bytes());
    let (code, out, err) = run(ferry(&["img", "info", "--json", s(&dirty)]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"dirty-flag\": true"), "{out}");
}

#[test]
fn backing_loops_and_missing_backing_files() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = d.join("a.qcow2");
    let b = d.join("b.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", "-u", "-b", "b.qcow2", "-F", "qcow2", s(&a), "64M"]);
    qemu_img(&["create", "-q", "-f", "qcow2", "-u", "-b", "a.qcow2", "-F", "qcow2", s(&b), "64M"]);
    let err = one_line_error(&a);
    assert!(err.contains("invalid backing chain"), "{err}");
    assert!(err.ends_with("loops back to an image already in the chain"), "{err}");
    let c = d.join("c.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", "-u", "-b", "gone.qcow2", "-F", "qcow2", s(&c), "64M"]);
    let err = one_line_error(&c);
    assert!(err.ends_with(&format!("invalid backing file gone.qcow2: {} does not exist", d.join("gone.qcow2").display())), "{err}");
}

#[test]
fn failed_conversion_leaves_no_output() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = valid(d, "cut.qcow2");
    // qemu puts its tables first: cutting the file keeps them and loses the data at 20M.
    let len = std::fs::metadata(&p).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(len - 65536).unwrap();
    let before: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
    for fmt in ["qcow2", "raw"] {
        let out = d.join(format!("out.{fmt}"));
        let (code, _, err) = run(ferry(&["img", "convert", "-O", fmt, s(&p), s(&out)]));
        assert_eq!(code, 1);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("invalid data cluster offset"), "{err}");
        assert!(err.contains("past end of file"), "{err}");
        assert!(!out.exists());
        let after: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(before, after, "temporary files left behind");
    }
}
