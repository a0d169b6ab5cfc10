//! `ferry img info|compare|check|map` against qemu-img's answers on the same files.
mod img_support;
use img_support::*;
use serde_json::Value;
use std::os::unix::fs::FileExt;
use std::path::Path;

fn json(out: std::process::Output) -> Value {
    assert!(out.status.code().is_some(), "killed");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("bad json ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// `ferry img VERB --json FILE` and `qemu-img VERB --output=json FILE`, parsed.
fn ours_and_qemus(verb: &str, f: &Path) -> (Value, Value) {
    (json(ferry(&["img", verb, "--json", s(f)])), json(qemu_img(&[verb, "--output=json", s(f)])))
}

/// A map as `(start, length, present, zero, data)` with neighbours of the same kind merged.
fn normalize(v: &Value) -> Vec<(u64, u64, bool, bool, bool)> {
    let mut out: Vec<(u64, u64, bool, bool, bool)> = Vec::new();
    for e in v.as_array().unwrap() {
        let t = (
            e["start"].as_u64().unwrap(),
            e["length"].as_u64().unwrap(),
            e["present"].as_bool().unwrap(),
            e["zero"].as_bool().unwrap(),
            e["data"].as_bool().unwrap(),
        );
        match out.last_mut() {
            Some(l) if (l.2, l.3, l.4) == (t.2, t.3, t.4) && l.0 + l.1 == t.0 => l.1 += t.1,
            _ => out.push(t),
        }
    }
    out
}

#[test]
fn map_matches_qemu() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, f) in standard_images(dir.path()) {
        let (ours, theirs) = ours_and_qemus("map", &f);
        assert_eq!(normalize(&ours), normalize(&theirs), "map of {name}");
    }
}

#[test]
fn info_matches_qemu() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, f) in standard_images(dir.path()) {
        let (ours, theirs) = ours_and_qemus("info", &f);
        for key in ["virtual-size", "format", "cluster-size", "backing-filename", "backing-filename-format", "dirty-flag"] {
            assert_eq!(ours.get(key), theirs.get(key), "{name}: {key}");
        }
        for key in ["compat", "compression-type", "refcount-bits", "lazy-refcounts", "corrupt", "extended-l2"] {
            let (o, t) = (&ours["format-specific"]["data"][key], &theirs["format-specific"]["data"][key]);
            assert_eq!(o, t, "{name}: format-specific {key}");
        }
        let (code, text, _) = run(ferry(&["img", "info", s(&f)]));
        assert_eq!(code, 0);
        assert!(text.contains(&format!("virtual size: 64 MiB ({} bytes)", 64 << 20)), "{text}");
    }
}

fn check_fields(v: &Value) -> Vec<u64> {
    ["image-end-offset", "total-clusters", "allocated-clusters", "fragmented-clusters", "compressed-clusters", "leaks", "corruptions"]
        .iter()
        .map(|k| v.get(*k).and_then(Value::as_u64).unwrap_or(0))
        .collect()
}

fn compare_check(f: &Path, expect_code: i32) {
    let ours = ferry(&["img", "check", "--json", s(f)]);
    let theirs = std::process::Command::new("qemu-img").args(["check", "--output=json", s(f)]).output().unwrap();
    assert_eq!(theirs.status.code(), Some(expect_code), "qemu-img check {}", f.display());
    assert_eq!(ours.status.code(), Some(expect_code), "ferry img check {}", f.display());
    assert_eq!(check_fields(&json(ours)), check_fields(&json(theirs)), "check of {}", f.display());
}

#[test]
fn check_matches_qemu_on_clean_and_damaged_images() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = standard_raw(dir.path());
    for (_, f) in qemu_variants(dir.path(), &raw) {
        compare_check(&f, 0);
    }
    let ours = dir.path().join("ours.qcow2");
    assert_eq!(run(ferry(&["img", "convert", "-O", "qcow2", "-c", s(&raw), s(&ours)])).0, 0);
    compare_check(&ours, 0);
    let (code, text, _) = run(ferry(&["img", "check", s(&ours)]));
    assert_eq!(code, 0);
    assert!(text.starts_with("No errors were found on the image.\n"), "{text}");

    // Find the first refcount block.
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&ours).unwrap();
    let mut b = [0u8; 8];
    file.read_exact_at(&mut b, 48).unwrap();
    let rt = u64::from_be_bytes(b);
    file.read_exact_at(&mut b, rt).unwrap();
    let rb0 = u64::from_be_bytes(b);
    // A leak: one more cluster at the end of the file with refcount 1.
    let len = file.metadata().unwrap().len();
    file.set_len(len + 65536).unwrap();
    file.write_all_at(&1u16.to_be_bytes(), rb0 + 2 * (len / 65536)).unwrap();
    compare_check(&ours, 3);
    let (code, text, err) = run(ferry(&["img", "check", s(&ours)]));
    assert_eq!(code, 3);
    assert!(text.contains("1 leaked clusters were found on the image."), "{text}");
    assert!(err.contains(&format!("Leaked cluster {} refcount=1 reference=0", len / 65536)), "{err}");
    // A corruption: the header cluster's refcount dropped to 0.
    file.write_all_at(&0u16.to_be_bytes(), rb0).unwrap();
    compare_check(&ours, 2);
    let (code, _, err) = run(ferry(&["img", "check", s(&ours)]));
    assert_eq!(code, 2);
    assert!(err.contains("ERROR cluster 0 refcount=0 reference=1"), "{err}");
}

#[test]
fn check_raw_has_no_checks() {
    let dir = tempfile::tempdir().unwrap();
    let raw = standard_raw(dir.path());
    let (code, text, err) = run(ferry(&["img", "check", s(&raw)]));
    // qemu-img: "This image format does not support checks", exit 63.
    if have_qemu() {
        let theirs = std::process::Command::new("qemu-img").args(["check", s(&raw)]).output().unwrap();
        assert_eq!(theirs.status.code(), Some(63));
    }
    assert_eq!((code, text.as_str()), (63, ""));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(s(&raw)) && err.contains("raw images have no metadata to check"), "{err}");
}

fn compare_both(a: &Path, b: &Path) -> (i32, String) {
    let ours = run(ferry(&["img", "compare", s(a), s(b)]));
    let theirs = std::process::Command::new("qemu-img").args(["compare", s(a), s(b)]).output().unwrap();
    let theirs = run(theirs);
    assert_eq!(ours.0, theirs.0, "exit codes of compare {} {}", a.display(), b.display());
    let mismatch = |t: &str| t.lines().find(|l| l.starts_with("Content mismatch")).map(str::to_string);
    assert_eq!(mismatch(&ours.1), mismatch(&theirs.1));
    (ours.0, ours.1)
}

#[test]
fn compare_matches_qemu() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = standard_raw(dir.path());
    let q = dir.path().join("q.qcow2");
    qemu_img(&["convert", "-O", "qcow2", "-c", s(&raw), s(&q)]);
    let (code, text) = compare_both(&raw, &q);
    assert_eq!((code, text.as_str()), (0, "Images are identical.\n"));
    // One byte changed in the middle of a data range, and one in a hole.
    for off in [(5u64 << 20) + 70_001, (50u64 << 20) + 3] {
        let changed = dir.path().join("changed.raw");
        std::fs::copy(&raw, &changed).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&changed).unwrap();
        f.write_all_at(b"!", off).unwrap();
        let (code, text) = compare_both(&q, &changed);
        assert_eq!(code, 1);
        assert_eq!(text, format!("Content mismatch at offset {}!\n", off / 512 * 512));
    }
    // A longer image: identical while the tail is zeros, different once it is not.
    let longer = dir.path().join("longer.raw");
    std::fs::copy(&raw, &longer).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&longer).unwrap();
    f.set_len(80 << 20).unwrap();
    assert_eq!(compare_both(&q, &longer).0, 0);
    f.write_all_at(b"x", (70 << 20) + 600).unwrap();
    assert_eq!(compare_both(&q, &longer).0, 1);
    // Errors are exit 2.
    let (code, _, err) = run(ferry(&["img", "compare", s(&raw), s(&dir.path().join("missing"))]));
    assert_eq!(code, 2);
    assert!(err.contains("missing"), "{err}");
}
