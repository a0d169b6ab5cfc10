//! `ferry convert`'s disk copy through the conversion engine, checked with qemu-img: a VMX
//! whose disks are qemu-img-made monolithicSparse and monolithicFlat VMDKs, and an OVA
//! whose streamOptimized VMDK is read in place from an uncompressed tar or streamed from a
//! gzip'd one. Every output qcow2 has the source's content (`qemu-img compare`), passes
//! `qemu-img check`, and the sources are byte-identical afterwards. These disks hold no
//! operating system: the guest conversion reports that and copies them unchanged.

mod convert_linux_support;

use convert_linux_support::*;
use std::path::{Path, PathBuf};

const SIZE: u64 = 64 << 20;

fn tools() -> bool {
    let ok = have("qemu-img") && have("tar");
    if !ok {
        eprintln!("skipped: qemu-img or tar not installed (tests/run.sh installs them)");
    }
    ok
}

/// `dir/guest.vmx` (named `name`) with one monolithicSparse `guest.vmdk` made from a
/// patterned raw disk: (the raw disk, the VMX).
fn sparse_vmdk_guest(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let raw = dir.join("d0.raw");
    patterned_raw(&raw, SIZE);
    make_vmdk(&raw, &dir.join("guest.vmdk"), "monolithicSparse");
    let vmx = dir.join("guest.vmx");
    write_data_vmx(&vmx, name, &["guest.vmdk"]);
    (raw, vmx)
}

#[test]
fn vmx_with_sparse_and_flat_vmdks_copies_to_clean_qcow2() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (raw0, raw1) = (t.path().join("d0.raw"), t.path().join("d1.raw"));
    patterned_raw(&raw0, SIZE);
    patterned_raw(&raw1, SIZE / 2);
    make_vmdk(&raw0, &t.path().join("guest.vmdk"), "monolithicSparse");
    make_vmdk(&raw1, &t.path().join("guest_1.vmdk"), "monolithicFlat");
    let vmx = t.path().join("guest.vmx");
    write_data_vmx(&vmx, "copytest", &["guest.vmdk", "guest_1.vmdk"]);
    let hashes = || -> Vec<String> {
        ["guest.vmdk", "guest_1.vmdk", "guest_1-flat.vmdk", "guest.vmx"]
            .iter()
            .map(|f| sha256(&t.path().join(f)))
            .collect()
    };
    let before = hashes();
    let out = new_dir(t.path(), "out");
    let o = convert_local("vmx", &vmx, &out, &[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("no operating system"), "{stderr}");
    assert_eq!(
        list(&out),
        [
            "copytest-sda",
            "copytest-sdb",
            "copytest.ferry.json",
            "copytest.sh",
            "copytest.xml"
        ]
    );
    for (out_disk, src) in [("copytest-sda", &raw0), ("copytest-sdb", &raw1)] {
        assert_same_content(src, "raw", &out.join(out_disk), "qcow2");
        assert_qcow2_clean(&out.join(out_disk));
    }
    assert_same_content(&t.path().join("guest.vmdk"), "vmdk", &out.join("copytest-sda"), "qcow2");
    assert_eq!(before, hashes(), "a source file changed");
}

#[test]
fn preallocated_and_raw_outputs() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (raw, vmx) = sparse_vmdk_guest(t.path(), "pre");
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let v = vmx.to_str().unwrap();
    let o = out.to_str().unwrap();
    ferry_ok(&["convert", "-i", "vmx", v, "-o", "qemu", "-os", o, "-oa", "preallocated"]);
    let img = out.join("pre-sda");
    assert_same_content(&raw, "raw", &img, "qcow2");
    assert_qcow2_clean(&img);
    // Fully preallocated: the file's allocated blocks cover the whole virtual disk.
    use std::os::unix::fs::MetadataExt;
    assert!(img.metadata().unwrap().blocks() * 512 >= SIZE, "not preallocated");
    ferry_ok(&[
        "convert", "-i", "vmx", v, "-o", "qemu", "-os", o, "-of", "raw", "-on", "rawout",
    ]);
    assert_same_content(&raw, "raw", &out.join("rawout-sda"), "raw");
    assert_eq!(out.join("rawout-sda").metadata().unwrap().len(), SIZE);
    // A value outside the choices is refused by name, listing them.
    for (opt, bad, choices) in [("-of", "vdi", "qcow2, raw"), ("-oa", "thick", "sparse, preallocated")] {
        let o = ferry(&["convert", "-i", "vmx", v, "-os", o, opt, bad]);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(e.contains(&format!("invalid value '{bad}'")) && e.contains(&format!("[possible values: {choices}]")), "{e}");
    }
}

fn make_ova(dir: &Path, gzip: bool) -> (PathBuf, PathBuf) {
    let raw = dir.join("d0.raw");
    patterned_raw(&raw, SIZE);
    let members = dir.join("members");
    std::fs::create_dir(&members).unwrap();
    let vmdk = members.join("appliance-disk1.vmdk");
    make_vmdk(&raw, &vmdk, "streamOptimized");
    let size = vmdk.metadata().unwrap().len();
    std::fs::write(
        members.join("appliance.ovf"),
        ovf("appliance", "appliance-disk1.vmdk", size, SIZE),
    )
    .unwrap();
    let ova = dir.join(if gzip { "appliance-gz.ova" } else { "appliance.ova" });
    tar(
        &ova,
        &members,
        &["appliance.ovf", "appliance-disk1.vmdk"],
        if gzip { &["-z"] } else { &[] },
    );
    (ova, raw)
}

fn ova_case(gzip: bool, how: &str) {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (ova, raw) = make_ova(t.path(), gzip);
    let src = ferry_ok(&["convert", "-i", "ova", ova.to_str().unwrap(), "--print-source"]);
    assert!(src.contains(how), "{src}");
    let before = sha256(&ova);
    let out = new_dir(t.path(), "out");
    convert_local_ok("ova", &ova, &out, &[]);
    let img = out.join("appliance-sda");
    assert_same_content(&raw, "raw", &img, "qcow2");
    assert_qcow2_clean(&img);
    assert_eq!(sha256(&ova), before, "the OVA changed");
}

#[test]
fn ova_uncompressed_tar_is_read_in_place() {
    ova_case(false, ".vmdk in ");
}

#[test]
fn ova_gzip_tar_is_streamed() {
    ova_case(true, "streamed from");
}

#[test]
fn failed_copy_leaves_nothing_at_the_output() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (_, vmx) = sparse_vmdk_guest(t.path(), "broken");
    // Cut the sparse VMDK short: its grain tables point past the end.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(t.path().join("guest.vmdk"))
        .unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len / 2).unwrap();
    let out = new_dir(t.path(), "out");
    let o = convert_local("vmx", &vmx, &out, &[]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("guest.vmdk"), "{e}");
    assert_eq!(list(&out), Vec::<String>::new(), "{e}");
}
