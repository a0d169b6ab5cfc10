//! Hand-written VMDKs: VMware-layout streams, raw-deflate grains, ESXi descriptors, ZERO /
//! RDONLY / NOACCESS extents, COWD and seSparse deltas (qemu-img is the oracle where it reads
//! the file; otherwise the source bytes are).
mod vmdk_support;

use ferry_formats::disk::{BlockDevice, ExtentKind};
use std::path::Path;
use vmdk_support::*;

fn disk_bytes(dir: &Path) -> Vec<u8> {
    std::fs::read(default_raw(dir)).unwrap()
}

fn base_with_cid(dir: &Path, name: &str, data: &[u8]) -> String {
    let raw = dir.join(format!("{name}.raw"));
    std::fs::write(&raw, data).unwrap();
    let p = dir.join(name);
    qemu_img(&["convert", "-f", "raw", "-O", "vmdk", s(&raw), s(&p)]);
    let bytes = std::fs::read(&p).unwrap();
    let desc = String::from_utf8_lossy(&bytes[512..2048]).into_owned();
    desc.lines().find_map(|l| l.strip_prefix("CID=")).unwrap().to_string()
}

#[test]
fn vmware_layout_stream_matches_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk_bytes(dir.path());
    let p = dir.path().join("vmware.vmdk");
    std::fs::write(&p, synth::vmware_stream(&disk, false)).unwrap();
    assert_like_qemu(&p);
    let dev = ferry_formats::vmdk::open(&p).unwrap();
    assert!(read_all(dev.as_ref(), MIB) == disk);
    assert_eq!(dev.info().details["create_type"], "streamOptimized");
}

#[test]
fn compressed_grains_without_markers_match_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk_bytes(dir.path());
    let p = dir.path().join("nomarkers.vmdk");
    // qemu reads at most one grain of compressed bytes without a marker, so it cannot read
    // incompressible grains: the source bytes are the oracle for those...
    std::fs::write(&p, synth::compressed_without_markers(&disk)).unwrap();
    assert!(read_all(ferry_formats::vmdk::open(&p).unwrap().as_ref(), MIB) == disk);
    // ...and qemu-img for a disk whose grains all compress.
    let soft: Vec<u8> = disk.iter().map(|b| b & 0x0f).collect();
    std::fs::write(&p, synth::compressed_without_markers(&soft)).unwrap();
    assert_like_qemu(&p);
}

#[test]
fn raw_deflate_grains() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk_bytes(dir.path());
    let p = dir.path().join("deflate.vmdk");
    std::fs::write(&p, synth::vmware_stream(&disk, true)).unwrap();
    // qemu only inflates zlib-wrapped grains: the source bytes are the oracle here.
    let dev = ferry_formats::vmdk::open(&p).unwrap();
    let got = read_all(dev.as_ref(), 3 * 65536 + 512);
    assert!(got == disk, "differs at {:?}", first_diff(&got, &disk));
}

#[test]
fn esxi_descriptors_with_flat_extent() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk_bytes(dir.path());
    let flat = dir.path().join("esx-flat.vmdk");
    std::fs::copy(dir.path().join("src.raw"), &flat).unwrap();
    let sectors = disk.len() / 512;
    for ct in ["vmfs", "vmfsThin", "vmfsPreallocated", "vmfsEagerZeroedThick"] {
        let p = dir.path().join(format!("{ct}.vmdk"));
        write_text(
            &p,
            &format!(
                "# Disk DescriptorFile\r\nversion=1\r\nencoding=\"UTF-8\"\r\nCID=fffffffe\r\nparentCID=ffffffff\r\n\
                 createType=\"{ct}\"\r\n\r\n# Extent description\r\nRW {sectors} VMFS \"esx-flat.vmdk\"\r\n\r\n\
                 ddb.thinProvisioned = \"1\"\r\nddb.adapterType = \"lsilogic\"\r\n"
            ),
        );
        let dev = ferry_formats::vmdk::open(&p).unwrap();
        assert!(read_all(dev.as_ref(), MIB) == disk, "{ct}");
        if ct == "vmfs" {
            assert_like_qemu(&p);
        }
        // qemu refuses vmfsThin: the -flat file is the oracle (checked above).
    }
}

#[test]
fn zero_rdonly_noaccess_extents_keep_their_size() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let disk = disk_bytes(d);
    std::fs::write(d.join("a-flat.vmdk"), &disk).unwrap();
    // A small sparse extent made by qemu.
    let small = &disk[MIB as usize..MIB as usize + 512 * 1024];
    std::fs::write(d.join("s.raw"), small).unwrap();
    qemu_img(&["convert", "-f", "raw", "-O", "vmdk", s(&d.join("s.raw")), s(&d.join("s.vmdk"))]);
    let p = d.join("custom.vmdk");
    write_text(
        &p,
        "version=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"custom\"\n\
         RW 2048 FLAT \"a-flat.vmdk\" 0\nRDONLY 1024 FLAT \"a-flat.vmdk\" 4096\nRW 512 ZERO\n\
         NOACCESS 256 FLAT \"not-there.vmdk\" 0\nRW 1024 SPARSE \"s.vmdk\"\n",
    );
    let dev = ferry_formats::vmdk::open(&p).unwrap();
    assert_eq!(dev.size(), (2048 + 1024 + 512 + 256 + 1024) * 512);
    let mut want = Vec::new();
    want.extend_from_slice(&disk[..MIB as usize]);
    want.extend_from_slice(&disk[2 * MIB as usize..2 * MIB as usize + 512 * 1024]);
    want.resize(want.len() + (512 + 256) * 512, 0);
    want.extend_from_slice(&qemu_raw(&d.join("s.vmdk")));
    let got = read_all(dev.as_ref(), 100_000);
    assert!(got == want, "differs at {:?}", first_diff(&got, &want));
    let map = dev.map(0, dev.size()).unwrap();
    let zero = map.iter().find(|e| e.offset <= 3072 * 512 && e.offset + e.length > 3072 * 512).unwrap();
    assert_eq!(zero.kind, ExtentKind::Zero);
    assert_eq!(dev.info().details["extents"], 5);
}

#[test]
fn cowd_delta_over_parent_matches_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let disk = disk_bytes(d);
    let cid = base_with_cid(d, "base.vmdk", &disk);
    // The delta changes some sectors (grain = 2 sectors) and leaves the rest to the parent.
    let mut delta = vec![0u8; disk.len()];
    delta[4096..4096 + 3072].fill(0x77);
    delta[5 * MIB as usize + 1024..5 * MIB as usize + 2048].copy_from_slice(&noise(9, 1024));
    std::fs::write(d.join("snap-delta.vmdk"), synth::cowd(&delta, 2)).unwrap();
    let sectors = disk.len() / 512;
    let p = d.join("snap.vmdk");
    write_text(
        &p,
        &format!(
            "version=1\nCID=0badf00d\nparentCID={cid}\ncreateType=\"vmfsSparse\"\nparentFileNameHint=\"base.vmdk\"\n\
             RW {sectors} VMFSSPARSE \"snap-delta.vmdk\"\n"
        ),
    );
    assert_like_qemu(&p);
    // And a standalone COWD file.
    let solo = d.join("solo.vmdk");
    std::fs::write(&solo, synth::cowd(&disk, 1)).unwrap();
    let dev = ferry_formats::vmdk::open(&solo).unwrap();
    assert!(read_all(dev.as_ref(), MIB) == disk);
}

#[test]
fn sesparse_delta_matches_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let disk = disk_bytes(d);
    let cid = base_with_cid(d, "base.vmdk", &disk);
    let mut delta = vec![0u8; disk.len()];
    delta[8192..8192 + 4096].fill(0xee); // zero grain over parent data
    delta[MIB as usize..MIB as usize + 4096].fill(0xdd); // unmapped grain
    delta[2 * MIB as usize + 4096..2 * MIB as usize + 3 * 4096].copy_from_slice(&noise(3, 8192));
    delta[6 * MIB as usize..].fill(0x42); // the partial last grain
    std::fs::write(d.join("snap-sesparse.vmdk"), synth::sesparse(&delta, false)).unwrap();
    let sectors = disk.len() / 512;
    let p = d.join("snap.vmdk");
    write_text(
        &p,
        &format!(
            "version=1\nCID=0badf00d\nparentCID={cid}\ncreateType=\"seSparse\"\nparentFileNameHint=\"base.vmdk\"\n\
             RW {sectors} SESPARSE \"snap-sesparse.vmdk\"\n"
        ),
    );
    assert_like_qemu(&p);
    let dev = ferry_formats::vmdk::open(&p).unwrap();
    let mut buf = vec![1u8; 4096];
    dev.read_at(&mut buf, 8192).unwrap();
    assert!(buf.iter().all(|&b| b == 0), "zero grain hides the parent");
    // A journal that needs replaying is refused.
    std::fs::write(d.join("snap-sesparse.vmdk"), synth::sesparse(&delta, true)).unwrap();
    let e = open_err(&p);
    assert!(
        e.ends_with("invalid seSparse replayJournal 1: the journal needs replaying; open the disk in ESXi first"),
        "{e}"
    );
}

#[test]
fn long_standalone_and_embedded_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let disk = disk_bytes(d);
    std::fs::write(d.join("x-flat.vmdk"), &disk).unwrap();
    // Hundreds of extents: a descriptor far over 20 sectors.
    let n = disk.len() / 512;
    let mut text =
        String::from("# Disk DescriptorFile\nversion=2\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n");
    let mut at = 0;
    while at < n {
        let len = (n - at).min(23);
        text.push_str(&format!("RW {len} FLAT \"x-flat.vmdk\" {at}\n"));
        at += len;
    }
    let p = d.join("long.vmdk");
    write_text(&p, &text);
    assert!(text.len() > 20 * 512);
    let dev = ferry_formats::vmdk::open(&p).unwrap();
    assert!(read_all(dev.as_ref(), 65536 + 512) == disk);
    assert_like_qemu(&p);
    // The same descriptor embedded in a KDMV file of capacity 0 (it describes the extents).
    let sectors = text.len().div_ceil(512) as u64;
    let mut f = synth::kdmv_header(1, 0, 128, (1, sectors), 0, 0, 0);
    f.extend_from_slice(text.as_bytes());
    f.resize(f.len().div_ceil(512) * 512, 0);
    let e = d.join("embedded.vmdk");
    std::fs::write(&e, f).unwrap();
    let dev = ferry_formats::vmdk::open(&e).unwrap();
    assert!(read_all(dev.as_ref(), MIB) == disk);
    assert_like_qemu(&e);
}
