//! Snapshot chains made with `qemu-img create -b` and written with qemu-io: reads fall
//! through to the parent, zeroed grains stop them, CID mismatches and loops are errors.
mod vmdk_support;

use ferry_formats::disk::BlockDevice;
use std::path::Path;
use vmdk_support::*;

fn child_of(dir: &Path, base: &str, child: &str) -> std::path::PathBuf {
    let c = dir.join(child);
    qemu_img(&["create", "-f", "vmdk", "-b", base, "-F", "vmdk", s(&c)]);
    c
}

fn io(path: &Path, cmd: &str) {
    run("qemu-io", &["-f", "vmdk", "-c", cmd, s(path)]);
}

#[test]
fn three_level_chain_matches_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let raw = default_raw(dir.path());
    let base = dir.path().join("base.vmdk");
    qemu_img(&["convert", "-f", "raw", "-O", "vmdk", "-o", "zeroed_grain=on", s(&raw), s(&base)]);
    let mid = child_of(dir.path(), "base.vmdk", "mid.vmdk");
    io(&mid, "write -P 0xab 64k 128k");
    io(&mid, "write -P 0xcd 5100k 4k");
    // The top has zeroed grains over the parent's data.
    let top = dir.path().join("top.vmdk");
    qemu_img(&["create", "-f", "vmdk", "-o", "zeroed_grain=on", "-b", "mid.vmdk", "-F", "vmdk", s(&top)]);
    io(&top, "write -z 5M 128k");
    io(&top, "write -P 0x11 1M 512");
    assert_like_qemu(&mid);
    assert_like_qemu(&top);
    let dev = ferry_formats::vmdk::open(&top).unwrap();
    let info = dev.info();
    assert_eq!(info.backing.as_deref(), Some(mid.as_path()));
    assert_eq!(info.details["chain_depth"], 3);
    // Zeroed grains read as zeros even though the parent has data there.
    let mut buf = vec![1u8; 65536];
    dev.read_at(&mut buf, 5 * MIB).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
}

#[test]
fn child_larger_than_parent_reads_zeros_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let raw = default_raw(dir.path());
    let base = dir.path().join("base.vmdk");
    qemu_img(&["convert", "-f", "raw", "-O", "vmdk", s(&raw), s(&base)]);
    let c = dir.path().join("big.vmdk");
    qemu_img(&["create", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", s(&c), "8M"]);
    io(&c, "write -P 0x22 7M 64k");
    assert_like_qemu(&c);
}

/// Overwrites the parentCID value of the embedded descriptor in place (same length: qemu
/// writes CIDs without zero padding) with 9s; returns the new value as we print it.
fn break_parent_cid(child: &Path) -> String {
    let mut bytes = std::fs::read(child).unwrap();
    let text = String::from_utf8_lossy(&bytes[512..1024]).into_owned();
    let at = text.find("parentCID=").unwrap() + "parentCID=".len();
    let len = text[at..].find('\n').unwrap();
    let new = "9".repeat(len);
    bytes[512 + at..512 + at + len].copy_from_slice(new.as_bytes());
    std::fs::write(child, bytes).unwrap();
    format!("{:08x}", u32::from_str_radix(&new, 16).unwrap())
}

#[test]
fn cid_mismatch_is_an_error_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let raw = default_raw(dir.path());
    let base = dir.path().join("base.vmdk");
    qemu_img(&["convert", "-f", "raw", "-O", "vmdk", s(&raw), s(&base)]);
    let c = child_of(dir.path(), "base.vmdk", "c.vmdk");
    let bad = break_parent_cid(&c);
    let e = open_err(&c);
    let desc = String::from_utf8_lossy(&std::fs::read(&base).unwrap()[512..1024]).into_owned();
    let cid = desc.lines().find_map(|l| l.strip_prefix("CID=")).unwrap();
    let cid = format!("{:08x}", u32::from_str_radix(cid, 16).unwrap());
    assert_eq!(e, format!("{}: invalid parentCID {bad}: parent {} has CID {cid}", c.display(), base.display()));
}

#[test]
fn loops_and_missing_parents_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // a -> b -> a, with descriptor files pointing at each other.
    write_text(&d.join("z-flat.vmdk"), &"\0".repeat(512));
    for (me, parent) in [("a.vmdk", "b.vmdk"), ("b.vmdk", "a.vmdk")] {
        write_text(
            &d.join(me),
            &format!("version=1\nCID=11111111\nparentCID=11111111\ncreateType=\"monolithicFlat\"\nparentFileNameHint=\"{parent}\"\nRW 1 FLAT \"z-flat.vmdk\" 0\n"),
        );
    }
    let e = open_err(&d.join("a.vmdk"));
    assert!(e.contains("invalid parentFileNameHint a.vmdk: loops back"), "{e}");
    write_text(
        &d.join("c.vmdk"),
        "version=1\nCID=1\nparentCID=2\ncreateType=\"monolithicFlat\"\nparentFileNameHint=\"gone.vmdk\"\nRW 1 FLAT \"z-flat.vmdk\" 0\n",
    );
    let e = open_err(&d.join("c.vmdk"));
    assert_eq!(
        e,
        format!(
            "{}: invalid parentFileNameHint gone.vmdk: No such file or directory (os error 2)",
            d.join("c.vmdk").display()
        )
    );
}

#[test]
fn depth_over_64_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_text(&d.join("z-flat.vmdk"), &"\0".repeat(512));
    for i in 0..70 {
        write_text(
            &d.join(format!("l{i}.vmdk")),
            &format!("version=1\nCID=1\nparentCID=1\ncreateType=\"monolithicFlat\"\nparentFileNameHint=\"l{}.vmdk\"\nRW 1 FLAT \"z-flat.vmdk\" 0\n", i + 1),
        );
    }
    let e = open_err(&d.join("l0.vmdk"));
    // 64 images in all, as qcow2: l63 is the 64th, its parent one too many.
    assert!(e.contains("l63.vmdk") && e.contains("invalid parent chain depth 64: more than 64 images"), "{e}");
}

#[test]
fn foreign_absolute_parent_hints_fall_back_to_the_childs_directory() {
    let dir = tempfile::tempdir().unwrap();
    let raw = default_raw(dir.path());
    let base = dir.path().join("base.vmdk");
    qemu_img(&["convert", "-f", "raw", "-O", "vmdk", s(&raw), s(&base)]);
    let c = child_of(dir.path(), "base.vmdk", "c.vmdk");
    io(&c, "write -P 0x33 2M 64k");
    let want = qemu_raw(&c);
    let text = String::from_utf8_lossy(&std::fs::read(&c).unwrap()[512..1536]).into_owned();
    let cid = text.lines().find_map(|l| l.strip_prefix("parentCID=")).unwrap().to_string();
    let sectors = SIZE / 512;
    for hint in ["/vmfs/volumes/datastore1/vm/base.vmdk", "C:\\\\VMs\\\\old\\\\base.vmdk"] {
        // A descriptor whose extent is the child's sparse file, with a foreign parent path.
        let d = dir.path().join("foreign.vmdk");
        write_text(
            &d,
            &format!("version=1\nCID=1\nparentCID={cid}\ncreateType=\"monolithicSparse\"\nparentFileNameHint=\"{hint}\"\nRW {sectors} SPARSE \"c.vmdk\"\n"),
        );
        let dev = ferry_formats::vmdk::open(&d).unwrap_or_else(|e| panic!("{hint}: {e}"));
        assert!(read_all(dev.as_ref(), MIB) == want, "{hint}");
    }
}
