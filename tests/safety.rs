//! Data safety under hostile input and faults (issue 10; issue 12's `--overwrite`): each
//! test is a repro run with `ferry` under `timeout`, asserting the refusal is one line naming
//! the file, nothing changed around the output directory (listed before and after), no
//! temporary is left and every source's sha256 is unchanged.
mod img_support;
mod safety_support;
use img_support::{have_qemu, qemu_img, s};
use safety_support::*;
use std::os::unix::fs::MetadataExt;

#[test]
fn output_that_is_a_source_is_refused() {
    if !have_qemu() {
        return;
    }
    let top = tempfile::tempdir().unwrap();
    let d = top.path();
    raw(&d.join("r.raw"), 1 << 20);
    qemu_img(&["convert", "-q", "-f", "raw", "-O", "vmdk", s(&d.join("r.raw")), s(&d.join("s.vmdk"))]);
    qemu_img(&["convert", "-q", "-f", "raw", "-O", "qcow2", s(&d.join("r.raw")), s(&d.join("base.qcow2"))]);
    qemu_img(&["create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", s(&d.join("child.qcow2"))]);
    qemu_img(&["create", "-q", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentFlat", s(&d.join("split.vmdk")), "1M"]);
    std::os::unix::fs::symlink("s.vmdk", d.join("link.vmdk")).unwrap();
    std::fs::hard_link(d.join("base.qcow2"), d.join("hard.qcow2")).unwrap();
    let before = listing(d);
    let p = |n: &str| d.join(n).to_str().unwrap().to_string();
    // The source itself, the backing file of the source, a symlink to it, a hard link to a
    // file of its chain, an extent of a descriptor.
    let cases: [(&str, &str, &str, &str); 5] = [
        ("s.vmdk", "s.vmdk", "qcow2", "is a source of this conversion"),
        ("child.qcow2", "base.qcow2", "raw", "is a source of this conversion"),
        ("s.vmdk", "link.vmdk", "qcow2", "is the source file"),
        ("child.qcow2", "hard.qcow2", "raw", "is the source file"),
        ("split.vmdk", "split-f001.vmdk", "raw", "is a source of this conversion"),
    ];
    for (src, out, fmt, why) in cases {
        let err = refused(ferry_t(60, &["img", "convert", "-O", fmt, &p(src), &p(out)]), 1, &[out, why]);
        assert!(err.contains("refusing to overwrite it"), "{err}");
    }
    assert_eq!(listing(d), before, "something changed around the outputs");

    // `ferry convert` whose output disk name is the source disk: refused before anything
    // is written, even with --overwrite.
    let g = d.join("g-sda");
    std::fs::copy(d.join("r.raw"), &g).unwrap();
    let sum = sha(&g);
    let before = listing(d);
    let args = ["convert", "-i", "disk", s(&g), "-on", "g", "-o", "local", "-os", s(d), "--overwrite"];
    refused(ferry_t(120, &args), 1, &["g-sda", "is a source of this conversion"]);
    assert_eq!(sha(&g), sum);
    assert_eq!(listing(d), before);
}

#[test]
fn existing_outputs_need_overwrite() {
    let top = tempfile::tempdir().unwrap();
    let out = top.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let vmx = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sample/sample.vmx");
    let args = ["convert", "-i", "vmx", vmx, "-o", "local", "-os", s(&out), "--json"];
    let (code, _, err) = ferry_t(300, &args);
    assert_eq!(code, 0, "{err}");
    let first = listing(top.path());
    assert!(first.contains_key(&out.join("sample-sda")) && first.contains_key(&out.join("sample.xml")));
    refused(ferry_t(300, &args), 1, &["already exists", "sample-sda", "--overwrite"]);
    assert_eq!(listing(top.path()), first, "a refused run changed the outputs");
    let mut again = args.to_vec();
    again.push("--overwrite");
    let (code, _, err) = ferry_t(300, &again);
    assert_eq!(code, 0, "{err}");
    assert!(temps(&out).is_empty());
    // The same file names, written anew (qemu-img check is clean on the new disk).
    let second = listing(top.path());
    assert_eq!(first.keys().collect::<Vec<_>>(), second.keys().collect::<Vec<_>>());
    if have_qemu() {
        img_support::assert_check_clean(&out.join("sample-sda"));
    }
}

#[test]
fn planted_symlinks_are_never_followed() {
    let top = tempfile::tempdir().unwrap();
    let out = top.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let victim = top.path().join("victim");
    std::fs::write(&victim, b"precious\n").unwrap();
    // The fixed temporary names of old, and the output names themselves, as symlinks.
    for n in [".sample.xml.part", ".sample.sh.part", ".sample.ferry.json.part", "sample.xml", "sample.sh"] {
        std::os::unix::fs::symlink(&victim, out.join(n)).unwrap();
    }
    let vmx = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sample/sample.vmx");
    let args = ["convert", "-i", "vmx", vmx, "-o", "local", "-os", s(&out), "--no-copy", "--overwrite"];
    let (code, _, err) = ferry_t(300, &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
    for n in ["sample.xml", "sample.sh", "sample.ferry.json"] {
        let m = std::fs::symlink_metadata(out.join(n)).unwrap();
        assert!(m.is_file(), "{n} is not a new regular file");
    }
    assert!(!std::fs::read_to_string(out.join("sample.xml")).unwrap().contains("precious"));
    assert_eq!(std::fs::metadata(out.join("sample.sh")).unwrap().mode() & 0o777, 0o755);
}

#[test]
fn fifos_are_refused_without_hanging() {
    if !have_qemu() {
        return;
    }
    let top = tempfile::tempdir().unwrap();
    let d = top.path();
    let fifo = d.join("f.fifo");
    mkfifo(&fifo);
    for verb in ["info", "check", "map"] {
        refused(ferry_t(20, &["img", verb, s(&fifo)]), 1, &["f.fifo", "is a FIFO, not a regular file or block device"]);
    }
    let out = d.join("o.qcow2");
    refused(ferry_t(20, &["img", "convert", "-O", "qcow2", s(&fifo), s(&out)]), 1, &["f.fifo", "is a FIFO"]);
    refused(
        ferry_t(20, &["convert", "-i", "disk", s(&fifo), "-on", "g", "-o", "local", "-os", s(d)]),
        1,
        &["f.fifo", "is a FIFO"],
    );
    // As an OVA archive and as a VM description.
    for mode in ["ova", "vmx"] {
        refused(
            ferry_t(20, &["convert", "-i", mode, s(&fifo), "-on", "g", "-o", "local", "-os", s(d)]),
            1,
            &["f.fifo", "is a FIFO"],
        );
    }
    // As a disk of a directory OVA (the OVF's files are FIFOs).
    let ova = d.join("ova");
    std::fs::create_dir(&ova).unwrap();
    let ovf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/configs/ovf/ovftool-esxi8.ovf");
    std::fs::copy(&ovf, ova.join("web01.ovf")).unwrap();
    for f in ["web01-disk1.vmdk", "web01-disk2.vmdk", "web01-file1.nvram"] {
        mkfifo(&ova.join(f));
    }
    let vm_out = d.join("ova-out");
    std::fs::create_dir(&vm_out).unwrap();
    refused(
        ferry_t(20, &["convert", "-i", "ova", s(&ova), "-o", "local", "-os", s(&vm_out)]),
        1,
        // A FIFO is no member of a directory OVA: refused at once, naming the disk.
        &["ova", "web01-disk", "not in the OVA"],
    );
    assert!(std::fs::read_dir(&vm_out).unwrap().next().is_none());
    // As an extent of a descriptor and as a backing file.
    std::fs::write(
        d.join("desc.vmdk"),
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"f.fifo\" 0\n",
    )
    .unwrap();
    refused(ferry_t(20, &["img", "info", s(&d.join("desc.vmdk"))]), 1, &["f.fifo", "is a FIFO"]);
    let child = d.join("child.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", "-b", "f.fifo", "-F", "raw", "-u", s(&child), "1M"]);
    refused(ferry_t(20, &["img", "info", s(&child)]), 1, &["f.fifo", "is a FIFO"]);
    refused(ferry_t(20, &["img", "check", s(&child)]), 1, &["f.fifo", "is a FIFO"]);
    assert!(!out.exists() && temps(d).is_empty());
}

#[test]
fn huge_zero_extents_take_no_time() {
    let top = tempfile::tempdir().unwrap();
    let p = top.path().join("zeros.vmdk");
    let mut text = String::from("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n");
    for _ in 0..5000 {
        // 2^40 sectors (512 TiB) each.
        text.push_str("RW 1099511627776 ZERO\n");
    }
    std::fs::write(&p, text).unwrap();
    for verb in ["check", "map"] {
        let t = std::time::Instant::now();
        let (code, out, err) = ferry_t(60, &["img", verb, "--json", s(&p)]);
        assert_eq!(code, 0, "{verb}: {err}");
        assert!(t.elapsed().as_secs() < 20, "img {verb} took {:?}", t.elapsed());
        if verb == "map" {
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
            assert_eq!(v[0]["length"], 5000u64 * (1 << 49));
            assert_eq!(v[0]["data"], false);
        }
    }
}

#[test]
fn vmx_whose_disk_has_the_output_name_is_refused() {
    // The repro: `ferry convert -i vmx vm.vmx -o local -os .` where the VM's disk is
    // already named NAME-sda.
    let top = tempfile::tempdir().unwrap();
    let d = top.path();
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sample");
    std::fs::copy(format!("{sample}/sample.vmdk"), d.join("sample-sda")).unwrap();
    let vmx = std::fs::read_to_string(format!("{sample}/sample.vmx")).unwrap();
    std::fs::write(d.join("sample.vmx"), vmx.replace("\"sample.vmdk\"", "\"sample-sda\"")).unwrap();
    let sum = sha(&d.join("sample-sda"));
    let before = listing(d);
    let vmx_path = d.join("sample.vmx");
    let base = ["convert", "-i", "vmx", s(&vmx_path), "-o", "local", "-os", s(d)];
    refused(ferry_t(120, &base), 1, &["sample-sda", "already exists", "--overwrite"]);
    let mut over = base.to_vec();
    over.push("--overwrite");
    refused(ferry_t(120, &over), 1, &["sample-sda", "is a source of this conversion"]);
    assert_eq!(sha(&d.join("sample-sda")), sum);
    assert_eq!(listing(d), before);
}
