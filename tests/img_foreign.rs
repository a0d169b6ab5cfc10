//! VHD (fixed, dynamic, differencing), VHDX and VDI: detected, read by `ferry img
//! info|convert|map|compare|check` and as `convert` sources, checked with `qemu-img compare`
//! against qemu-img's own conversion of the same files. Formats Ferry cannot read are
//! refused by name in one line, never read as raw.
mod img_support;
use img_support::*;
use serde_json::Value;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

fn json(out: std::process::Output) -> Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("bad json ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// `(start, length, data)` runs of a map, neighbours of the same kind merged; "data" is
/// data not known to be zero (qemu marks a raw hole of a fixed VHD data and zero).
fn data_runs(v: &Value) -> Vec<(u64, u64, bool)> {
    let mut out: Vec<(u64, u64, bool)> = Vec::new();
    for e in v.as_array().unwrap() {
        let t = (e["start"].as_u64().unwrap(), e["length"].as_u64().unwrap(), e["data"].as_bool().unwrap() && !e["zero"].as_bool().unwrap());
        match out.last_mut() {
            Some(l) if l.2 == t.2 && l.0 + l.1 == t.0 => l.1 += t.1,
            _ => out.push(t),
        }
    }
    out
}

fn is_data_at(runs: &[(u64, u64, bool)], off: u64) -> bool {
    runs.iter().any(|r| r.2 && r.0 <= off && off < r.0 + r.1)
}

/// Every subformat, made by qemu-img from the standard disk and written to by qemu-io.
fn foreign_images(dir: &Path, raw: &Path) -> Vec<(&'static str, &'static str, PathBuf)> {
    let mut v = Vec::new();
    for (name, fmt, opts, io) in [
        ("fixed.vhd", "vpc", "subformat=fixed", "write -P 0x46 30M 100k"),
        ("dynamic.vhd", "vpc", "subformat=dynamic", "write -P 0x46 30M 100k"),
        ("hyperv.vhd", "vpc", "subformat=dynamic,force_size=on", "write -P 0x47 7M 3k"),
        ("default.vhdx", "vhdx", "subformat=dynamic", "write -P 0x45 20M 100k"),
        ("small-blocks.vhdx", "vhdx", "block_size=1M,log_size=1M", "write -z 5M 1M"),
        ("fixed.vhdx", "vhdx", "subformat=fixed", "write -P 0x48 9M 4k"),
        ("normal.vdi", "vdi", "static=off", "write -P 0x44 10M 100k"),
        ("static.vdi", "vdi", "static=on", "write -P 0x44 10M 100k"),
    ] {
        let p = dir.join(name);
        qemu_img(&["convert", "-f", "raw", "-O", fmt, "-o", opts, s(raw), s(&p)]);
        qemu_io(&p, fmt, &[io]);
        v.push((name, fmt, p));
    }
    v
}

#[test]
fn read_like_qemu() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = standard_raw(dir.path());
    for (name, fmt, f) in foreign_images(dir.path(), &raw) {
        // Detected (qemu itself probes a fixed VHD as raw; Ferry reads its footer).
        let ours = json(ferry(&["img", "info", "--json", s(&f)]));
        let theirs = json(qemu_img(&["info", "-f", fmt, "--output=json", s(&f)]));
        assert_eq!(ours["format"], fmt, "{name}");
        assert_eq!(ours["virtual-size"], theirs["virtual-size"], "{name}: virtual size");

        // Content: ours and qemu-img's conversions are identical, and equal the source.
        let (o, t) = (dir.path().join(format!("{name}.ours.qcow2")), dir.path().join(format!("{name}.qemu.qcow2")));
        let (code, _, err) = run(ferry(&["img", "convert", "-O", "qcow2", s(&f), s(&o)]));
        assert_eq!(code, 0, "{name}: {err}");
        qemu_img(&["convert", "-f", fmt, "-O", "qcow2", s(&f), s(&t)]);
        assert_same(&o, &t);
        assert_check_clean(&o);
        let (code, text, err) = run(ferry(&["img", "compare", s(&f), s(&t)]));
        assert_eq!((code, text.as_str()), (0, "Images are identical.\n"), "{name}: {err}");

        // Map: per block, never data where qemu says there is none; where qemu knows holes
        // (VHD, VDI) the same data ranges.
        let ours = data_runs(&json(ferry(&["img", "map", "--json", s(&f)])));
        let theirs = data_runs(&json(qemu_img(&["map", "-f", fmt, "--output=json", s(&f)])));
        if fmt == "vhdx" {
            for r in ours.iter().filter(|r| r.2) {
                assert!(is_data_at(&theirs, r.0) && is_data_at(&theirs, r.0 + r.1 - 1), "{name}: {r:?} not data in {theirs:?}");
            }
            assert!(ours.len() > 1, "{name}: the map has holes: {ours:?}");
        } else {
            assert_eq!(ours, theirs, "{name}: map");
        }
        assert!(ours.len() < 64, "{name}: the map is per block, not per sector: {} runs", ours.len());

        let (code, text, err) = run(ferry(&["img", "check", s(&f)]));
        assert_eq!((code, text.as_str()), (0, "No errors were found on the image.\n"), "{name}: {err}");
    }
}

/// Rewrites the VHD footer checksum at `at` (the copy at 0 or the one at the end).
fn vhd_fix_footer(f: &std::fs::File, at: u64) {
    let mut b = [0u8; 512];
    f.read_exact_at(&mut b, at).unwrap();
    b[64..68].fill(0);
    let sum = !b.iter().fold(0u32, |s, &x| s.wrapping_add(x as u32));
    f.write_all_at(&sum.to_be_bytes(), at + 64).unwrap();
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().unwrap())
}

/// A differencing VHD over a dynamic parent: qemu-img cannot read one (it ignores the
/// parent and the sector bitmaps), so the expected content is a qcow2 overlay on the same
/// parent into which qemu-io writes exactly the sectors the child's bitmaps hold.
#[test]
fn differencing_vhd_reads_through_its_parent() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raw = standard_raw(d);
    let base = d.join("base.vhd");
    qemu_img(&["convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", s(&raw), s(&base)]);
    let size = json(qemu_img(&["info", "-f", "vpc", "--output=json", s(&base)]))["virtual-size"].as_u64().unwrap();
    // The child: an empty dynamic VHD of the same geometry, written by qemu-io, then made a
    // differencing disk: type 4, the parent's UUID and name, partial sector bitmaps.
    let child = d.join("child.vhd");
    qemu_img(&["create", "-q", "-f", "vpc", "-o", "subformat=dynamic", s(&child), &size.to_string()]);
    qemu_io(&child, "vpc", &["write -P 0x5a 0 64k", "write -P 0x6b 4M 8k"]);
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&child).unwrap();
    let mut footer = [0u8; 512];
    f.read_exact_at(&mut footer, 0).unwrap();
    let dyn_at = be64(&footer[16..]);
    let mut pf = [0u8; 512];
    std::fs::File::open(&base).unwrap().read_exact_at(&mut pf, 0).unwrap();
    let len = f.metadata().unwrap().len();
    for at in [0, len - 512] {
        f.write_all_at(&4u32.to_be_bytes(), at + 60).unwrap();
        vhd_fix_footer(&f, at);
    }
    let mut h = [0u8; 1024];
    f.read_exact_at(&mut h, dyn_at).unwrap();
    h[40..56].copy_from_slice(&pf[68..84]);
    let name: Vec<u8> = "base.vhd".encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
    h[64..64 + name.len()].copy_from_slice(&name);
    h[36..40].fill(0);
    let sum = !h.iter().fold(0u32, |s, &x| s.wrapping_add(x as u32));
    h[36..40].copy_from_slice(&sum.to_be_bytes());
    f.write_all_at(&h, dyn_at).unwrap();
    // Block 0: only sectors 0-7 and 16 present; block 2 (4M): sectors 0-15 present.
    let bat_at = be64(&h[16..]);
    let mut bat = [0u8; 12];
    f.read_exact_at(&mut bat, bat_at).unwrap();
    let b0 = u32::from_be_bytes(bat[0..4].try_into().unwrap()) as u64 * 512;
    let b2 = u32::from_be_bytes(bat[8..12].try_into().unwrap()) as u64 * 512;
    let mut bm = [0u8; 512];
    bm[0] = 0xff;
    bm[2] = 0x80;
    f.write_all_at(&bm, b0).unwrap();
    bm = [0u8; 512];
    bm[0] = 0xff;
    bm[1] = 0xff;
    f.write_all_at(&bm, b2).unwrap();
    drop(f);

    let want = d.join("want.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", "-b", "base.vhd", "-F", "vpc", s(&want)]);
    qemu_io(&want, "qcow2", &["write -P 0x5a 0 4k", "write -P 0x5a 8k 512", "write -P 0x6b 4M 8k"]);

    let ours = d.join("ours.qcow2");
    let (code, _, err) = run(ferry(&["img", "convert", "-O", "qcow2", s(&child), s(&ours)]));
    assert_eq!(code, 0, "{err}");
    assert_same(&ours, &want);
    let info = json(ferry(&["img", "info", "--json", s(&child)]));
    assert_eq!(info["backing-filename"], s(&base), "{info}");
    // The map: the child's sectors as data (sector runs inside a block), the rest the parent's.
    let runs = data_runs(&json(ferry(&["img", "map", "--json", s(&child)])));
    let parent = data_runs(&json(ferry(&["img", "map", "--json", s(&base)])));
    assert!(is_data_at(&runs, 4096) && is_data_at(&runs, 8192) && is_data_at(&runs, 4 << 20));
    assert_eq!(is_data_at(&runs, 40 << 20), is_data_at(&parent, 40 << 20));
    // Hyper-V style: the parent moved, `parent_name` names nothing there, and a W2ru locator
    // (a relative Windows path, UTF-16LE, in a sector before the end footer) finds it.
    std::fs::create_dir(d.join("parents")).unwrap();
    std::fs::rename(&base, d.join("parents").join("base.vhd")).unwrap();
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&child).unwrap();
    let len = f.metadata().unwrap().len();
    let mut end_footer = [0u8; 512];
    f.read_exact_at(&mut end_footer, len - 512).unwrap();
    let loc: Vec<u8> = ".\\parents\\base.vhd".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    let mut sector = [0u8; 512];
    sector[..loc.len()].copy_from_slice(&loc);
    f.write_all_at(&sector, len - 512).unwrap();
    f.write_all_at(&end_footer, len).unwrap();
    f.read_exact_at(&mut h, dyn_at).unwrap();
    h[64..576].fill(0);
    let name: Vec<u8> = "C:\\gone\\elsewhere.vhd".encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
    h[64..64 + name.len()].copy_from_slice(&name);
    h[576..580].copy_from_slice(b"W2ru");
    h[580..584].copy_from_slice(&512u32.to_be_bytes());
    h[584..588].copy_from_slice(&(loc.len() as u32).to_be_bytes());
    h[592..600].copy_from_slice(&(len - 512).to_be_bytes());
    h[36..40].fill(0);
    let sum = !h.iter().fold(0u32, |s, &x| s.wrapping_add(x as u32));
    h[36..40].copy_from_slice(&sum.to_be_bytes());
    f.write_all_at(&h, dyn_at).unwrap();
    drop(f);
    let moved = d.join("moved.qcow2");
    let (code, _, err) = run(ferry(&["img", "convert", "-O", "qcow2", s(&child), s(&moved)]));
    assert_eq!(code, 0, "{err}");
    assert_same(&moved, &ours);
    let info = json(ferry(&["img", "info", "--json", s(&child)]));
    assert!(info["backing-filename"].as_str().unwrap().ends_with("parents/base.vhd"), "{info}");
    // Without the parent: one line naming parent_name and where it looked.
    std::fs::rename(d.join("parents").join("base.vhd"), d.join("parents").join("other.vhd")).unwrap();
    let (code, _, err) = run(ferry(&["img", "info", s(&child)]));
    assert_ne!(code, 0);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("parent_name") && err.contains("elsewhere.vhd") && err.contains("parents/base.vhd"), "{err}");
    std::fs::rename(d.join("parents").join("other.vhd"), d.join("parents").join("base.vhd")).unwrap();

    // A wrong parent UUID is refused in one line naming the field.
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&child).unwrap();
    f.write_all_at(&[0xee], dyn_at + 40).unwrap();
    drop(f);
    let (code, _, err) = run(ferry(&["img", "info", s(&child)]));
    assert_ne!(code, 0);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(s(&child)) && err.contains("parent_uuid"), "{err}");
}

/// CRC-32C (Castagnoli, reflected), bit by bit: the VHDX checksum.
fn crc_without(b: &[u8], at: usize) -> u32 {
    let mut crc = !0u32;
    for (i, &x) in b.iter().enumerate() {
        crc ^= if (at..at + 4).contains(&i) { 0 } else { x as u32 };
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    !crc
}

/// A VHDX whose log holds an entry to replay: qemu refuses to read it read-only, Ferry
/// refuses it by name; after qemu-img replays the log on a copy, both read it alike.
#[test]
fn vhdx_with_a_dirty_log_is_refused_by_name() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = standard_raw(dir.path());
    let p = dir.path().join("dirty.vhdx");
    qemu_img(&["convert", "-f", "raw", "-O", "vhdx", "-o", "log_size=1M", s(&raw), s(&p)]);
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&p).unwrap();
    let guid: [u8; 16] = *b"ferry-log-guid!!";
    // Both headers name the log; one entry of that log (no descriptors) at its start.
    let mut log_off = 0;
    for at in [64u64 << 10, 128 << 10] {
        let mut h = vec![0u8; 4096];
        f.read_exact_at(&mut h, at).unwrap();
        h[48..64].copy_from_slice(&guid);
        log_off = u64::from_le_bytes(h[72..80].try_into().unwrap());
        let c = crc_without(&h, 4);
        h[4..8].copy_from_slice(&c.to_le_bytes());
        f.write_all_at(&h, at).unwrap();
    }
    let mut e = vec![0u8; 4096];
    e[..4].copy_from_slice(b"loge");
    e[8..12].copy_from_slice(&4096u32.to_le_bytes());
    e[16..24].copy_from_slice(&1u64.to_le_bytes());
    e[32..48].copy_from_slice(&guid);
    let len = f.metadata().unwrap().len();
    e[48..56].copy_from_slice(&len.to_le_bytes());
    e[56..64].copy_from_slice(&len.to_le_bytes());
    let c = crc_without(&e, 4);
    e[4..8].copy_from_slice(&c.to_le_bytes());
    f.write_all_at(&e, log_off).unwrap();
    drop(f);

    let theirs = std::process::Command::new("qemu-img").args(["info", "-U", "--force-share", s(&p)]).output().unwrap();
    let theirs_ro = std::process::Command::new("qemu-io").args(["-r", "-f", "vhdx", "-c", "read 0 512", s(&p)]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&theirs_ro.stderr).contains("log that needs to be replayed") || !theirs.status.success(),
        "qemu reads the dirty image read-only: {}",
        String::from_utf8_lossy(&theirs_ro.stderr)
    );
    let (code, _, err) = run(ferry(&["img", "info", s(&p)]));
    assert_ne!(code, 0);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(s(&p)) && err.contains("log to replay"), "{err}");

    let copy = dir.path().join("replayed.vhdx");
    std::fs::copy(&p, &copy).unwrap();
    let _ = std::process::Command::new("qemu-img").args(["check", "-r", "all", s(&copy)]).output().unwrap();
    let (code, text, err) = run(ferry(&["img", "compare", s(&copy), s(&raw)]));
    assert_eq!((code, text.as_str()), (0, "Images are identical.\n"), "{err}");
}

/// Formats Ferry cannot read are refused by name in one line, never read as raw; `-f raw`
/// still reads them as the raw bytes they are.
#[test]
fn unreadable_formats_are_refused_by_name() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (fmt, opts, expect) in [
        ("qed", "", "qed"),
        ("parallels", "", "parallels"),
        ("qcow", "", "qcow (version 1)"),
    ] {
        let p = d.join(format!("x.{fmt}"));
        let mut a = vec!["create", "-q", "-f", fmt];
        if !opts.is_empty() {
            a.extend(["-o", opts]);
        }
        a.extend([s(&p), "16M"]);
        qemu_img(&a);
        for verb in [vec!["img", "info"], vec!["img", "map"], vec!["img", "check"]] {
            let mut args = verb.clone();
            args.push(s(&p));
            let (code, text, err) = run(ferry(&args));
            assert_ne!(code, 0, "{verb:?} {fmt}: {text}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(s(&p)) && err.contains(&format!("image format {expect}")), "{err}");
        }
        let out = d.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let (code, _, err) = run(ferry(&["convert", "-i", "disk", s(&p), "-o", "local", "-os", s(&out)]));
        assert_ne!(code, 0);
        assert!(err.contains(&format!("image format {expect}")), "{err}");
        let (code, _, err) = run(ferry(&["img", "info", "-f", "raw", s(&p)]));
        assert_eq!(code, 0, "{err}");
    }
    let luks = d.join("x.luks");
    qemu_img(&[
        "create", "-q", "--object", "secret,id=s0,data=ferry", "-f", "luks", "-o", "key-secret=s0,iter-time=10", s(&luks), "4M",
    ]);
    let (code, _, err) = run(ferry(&["img", "info", s(&luks)]));
    assert_ne!(code, 0);
    assert!(err.contains(s(&luks)) && err.contains("image format luks"), "{err}");
}

/// Damaged headers: one line naming the file and the field, never a panic.
#[test]
fn damaged_headers_name_file_and_field() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raw = standard_raw(d);
    // (file, format, qemu-img options, offset, bytes written there, field named).
    type Case = (&'static str, &'static str, &'static [&'static str], u64, Vec<u8>, &'static str);
    let cases: Vec<Case> = vec![
        // VDI block size 4 KiB.
        ("bs.vdi", "vdi", &[], 0x178, 4096u32.to_le_bytes().to_vec(), "block_size"),
        // VDI block map past the end of the file.
        ("bmap.vdi", "vdi", &[], 0x180, 0x1000_0000u32.to_le_bytes().to_vec(), "offset_bmap"),
        // VHD footer checksum.
        ("sum.vhd", "vpc", &["-o", "subformat=dynamic"], 64, vec![1, 2, 3, 4], "footer checksum"),
        // VHDX file identifier.
        ("id.vhdx", "vhdx", &[], 0, b"vhdxfilX".to_vec(), ""),
        // VHDX both headers' checksums.
        ("hdr.vhdx", "vhdx", &[], 64 << 10, vec![0, 0, 0, 0], ""),
    ];
    for (name, fmt, opts, at, bytes, field) in cases {
        let p = d.join(name);
        let mut a = vec!["convert", "-f", "raw", "-O", fmt];
        a.extend_from_slice(opts);
        a.extend([s(&raw), s(&p)]);
        qemu_img(&a);
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.write_all_at(&bytes, at).unwrap();
        if name == "hdr.vhdx" {
            f.write_all_at(&bytes, 128 << 10).unwrap();
        }
        drop(f);
        let (code, _, err) = run(ferry(&["img", "info", "-f", fmt, s(&p)]));
        assert_ne!(code, 0, "{name}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.contains(s(&p)) && err.contains(field), "{name}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// As conversion sources: `-i disk` and a Xen config naming a VHD (`tap:vhd:`).
#[test]
fn convert_sources() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raw = standard_raw(d);
    for (name, fmt, opts) in [("g1.vhd", "vpc", "subformat=dynamic"), ("g2.vhdx", "vhdx", ""), ("g3.vdi", "vdi", "")] {
        let p = d.join(name);
        let mut a = vec!["convert", "-f", "raw", "-O", fmt];
        if !opts.is_empty() {
            a.extend(["-o", opts]);
        }
        a.extend([s(&raw), s(&p)]);
        qemu_img(&a);
        let out = d.join(format!("out-{name}"));
        std::fs::create_dir(&out).unwrap();
        let (code, _, err) = run(ferry(&["convert", "-i", "disk", s(&p), "-o", "local", "-os", s(&out)]));
        assert_eq!(code, 0, "{name}: {err}");
        let stem = name.split('.').next().unwrap();
        let outdisk = out.join(format!("{stem}-sda"));
        let cmp = std::process::Command::new("qemu-img").args(["compare", "-f", fmt, s(&p), s(&outdisk)]).output().unwrap();
        assert!(cmp.status.success(), "{name}: {}", String::from_utf8_lossy(&cmp.stdout));
    }
    let cfg = d.join("xvhd.cfg");
    std::fs::write(
        &cfg,
        format!("name = \"xvhd\"\ntype = \"hvm\"\nmemory = 512\nvcpus = 1\ndisk = [ 'tap:vhd:{},xvda,w' ]\n", s(&d.join("g1.vhd"))),
    )
    .unwrap();
    let out = d.join("out-xen");
    std::fs::create_dir(&out).unwrap();
    let (code, _, err) = run(ferry(&["convert", "-i", "xen", s(&cfg), "-o", "local", "-os", s(&out)]));
    assert_eq!(code, 0, "{err}");
    let disk = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().ends_with("-sda")).unwrap();
    let cmp = std::process::Command::new("qemu-img").args(["compare", "-f", "vpc", s(&d.join("g1.vhd")), s(&disk)]).output().unwrap();
    assert!(cmp.status.success(), "{}", String::from_utf8_lossy(&cmp.stdout));

    // A VMX naming a VDI and a VHDX (a VMX states no format: its "vmdk" yields to the magic).
    let vmx = d.join("vm.vmx");
    std::fs::write(
        &vmx,
        "config.version = \"8\"\nvirtualHW.version = \"14\"\ndisplayName = \"vm\"\nmemsize = \"512\"\nnumvcpus = \"1\"\nguestOS = \"other-64\"\nscsi0.present = \"TRUE\"\nscsi0.virtualDev = \"pvscsi\"\nscsi0:0.present = \"TRUE\"\nscsi0:0.fileName = \"g3.vdi\"\nscsi0:1.present = \"TRUE\"\nscsi0:1.fileName = \"g2.vhdx\"\n",
    )
    .unwrap();
    let out = d.join("out-vmx");
    std::fs::create_dir(&out).unwrap();
    let (code, _, err) = run(ferry(&["convert", "-i", "vmx", s(&vmx), "-o", "local", "-os", s(&out)]));
    assert_eq!(code, 0, "{err}");
    for (src, fmt, dev) in [("g3.vdi", "vdi", "sda"), ("g2.vhdx", "vhdx", "sdb")] {
        let disk = out.join(format!("vm-{dev}"));
        let cmp = std::process::Command::new("qemu-img").args(["compare", "-f", fmt, s(&d.join(src)), s(&disk)]).output().unwrap();
        assert!(cmp.status.success(), "{src}: {}{}", String::from_utf8_lossy(&cmp.stdout), String::from_utf8_lossy(&cmp.stderr));
    }
}
