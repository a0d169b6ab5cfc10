//! GNU sparse tar members (issue 12 point 2): an OVA made by GNU tar with `-S` (old GNU
//! format) and with `--format=pax` sparse versions 0.0, 0.1 and 1.0. Oracle: the original
//! file's bytes (and its SHA256 in the manifest, which the reader verifies over the
//! expanded member) and GNU tar's own extraction.

use ferry_formats::disk::{BlockDevice, ExtentKind};
use ferry_formats::model::DiskSource;
use std::io::Read;
use std::path::Path;
use std::process::Command;

const OVF: &str = r#"<?xml version="1.0"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <References><File ovf:href="holey-disk1.img" ovf:id="file1" ovf:size="SIZE"/></References>
  <DiskSection><Info>disks</Info>
    <Disk ovf:capacity="SIZE" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://en.wikipedia.org/wiki/Byte"/>
  </DiskSection>
  <VirtualSystem ovf:id="holey"><Info>vm</Info><Name>holey</Name>
    <VirtualHardwareSection><Info>hw</Info>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>256</rasd:VirtualQuantity></Item>
      <Item><rasd:Address>0</rasd:Address><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>5</rasd:ResourceType></Item>
      <Item><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>3</rasd:InstanceID><rasd:Parent>2</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"#;

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// A 9 MiB raw image with data at 0, 3 MiB + 1000 (unaligned) and in its last 4 KiB; holes
/// elsewhere (made with seeks, so `tar -S` finds them).
fn holey(dir: &Path) -> Vec<u8> {
    use std::io::{Seek, SeekFrom, Write};
    let size = 9u64 << 20;
    let mut f = std::fs::File::create(dir.join("holey-disk1.img")).unwrap();
    f.set_len(size).unwrap();
    let chunks: [(u64, Vec<u8>); 3] = [
        (0, (0..70_000u32).map(|i| (i % 251) as u8 + 1).collect()),
        ((3 << 20) + 1000, vec![0xa5; 300_000]),
        (size - 4096, vec![0x5a; 4096]),
    ];
    let mut want = vec![0u8; size as usize];
    for (off, data) in &chunks {
        f.seek(SeekFrom::Start(*off)).unwrap();
        f.write_all(data).unwrap();
        want[*off as usize..*off as usize + data.len()].copy_from_slice(data);
    }
    want
}

fn have_tar() -> bool {
    Command::new("tar").arg("--version").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("GNU tar"))
}

#[test]
fn sparse_members_of_every_gnu_flavour_read_as_the_original_file() {
    if !have_tar() {
        eprintln!("GNU tar not installed: skipped");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let want = holey(&src);
    std::fs::write(src.join("holey.ovf"), OVF.replace("SIZE", &want.len().to_string())).unwrap();
    std::fs::write(src.join("holey.mf"), format!("SHA256(holey-disk1.img)= {}\n", sha256(&want))).unwrap();
    let flavours: [(&str, &[&str]); 4] = [
        ("gnu", &["-S", "--format=gnu"]),
        ("pax-0.0", &["--sparse", "--format=pax", "--sparse-version=0.0"]),
        ("pax-0.1", &["--sparse", "--format=pax", "--sparse-version=0.1"]),
        ("pax-1.0", &["--sparse", "--format=pax", "--sparse-version=1.0"]),
    ];
    for (flavour, flags) in flavours {
        let ova = t.path().join(format!("holey-{flavour}.ova"));
        let st = Command::new("tar")
            .args(flags)
            .arg("-cf")
            .arg(&ova)
            .arg("-C")
            .arg(&src)
            .args(["holey.ovf", "holey.mf", "holey-disk1.img"])
            .status()
            .unwrap();
        assert!(st.success(), "{flavour}: tar failed");
        // The member is really stored sparse: the archive is smaller than the image.
        let ova_len = std::fs::metadata(&ova).unwrap().len();
        assert!(ova_len < want.len() as u64 / 2, "{flavour}: {ova_len} bytes, not sparse");
        // GNU tar's own extraction agrees with the original (the oracle is sound).
        let x = t.path().join(format!("x-{flavour}"));
        std::fs::create_dir(&x).unwrap();
        assert!(Command::new("tar").arg("-xf").arg(&ova).arg("-C").arg(&x).status().unwrap().success());
        assert!(std::fs::read(x.join("holey-disk1.img")).unwrap() == want, "{flavour}: tar -x differs");

        // The manifest's SHA256 is checked over the expanded member inside read_ova.
        let o = ferry_formats::ovf::read_ova(&ova).unwrap_or_else(|e| panic!("{flavour}: {e}"));
        let d = &o.vm.disks[0];
        let DiskSource::SparseInPlace { size, segments, .. } = &d.source else { panic!("{flavour}: {:?}", d.source) };
        assert_eq!(*size, want.len() as u64, "{flavour}");
        assert!(segments.len() >= 3, "{flavour}: {segments:?}");
        assert!(o.vm.warnings.is_empty(), "{flavour}: {:?}", o.vm.warnings);
        // Front to back.
        let mut got = Vec::new();
        ferry_formats::ovf::open_stream(&d.source).unwrap().read_to_end(&mut got).unwrap();
        assert!(got == want, "{flavour}: streamed bytes differ");
        // Random access and the map: holes are unallocated, data is data.
        let DiskSource::SparseInPlace { archive, member, size, segments } = &d.source else { unreachable!() };
        let dev = ferry_formats::ovf::sparse::SparseMember::open(archive, member, *size, segments).unwrap();
        let mut buf = vec![0u8; 5000];
        let at = (3 << 20) + 1000 - 2000;
        dev.read_at(&mut buf, at).unwrap();
        assert!(buf == want[at as usize..at as usize + 5000], "{flavour}: read_at");
        let map = dev.map(0, *size).unwrap();
        assert!(map.iter().any(|e| e.kind == ExtentKind::Unallocated && e.offset <= (1 << 20) && e.offset + e.length >= (2 << 20)), "{flavour}: {map:?}");
        let data: u64 = map.iter().filter(|e| e.kind == ExtentKind::Data).map(|e| e.length).sum();
        assert!(data < 2 << 20, "{flavour}: {data} data bytes");
    }
}

#[test]
fn sparse_member_with_a_wrong_digest_is_refused() {
    if !have_tar() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let want = holey(&src);
    std::fs::write(src.join("holey.ovf"), OVF.replace("SIZE", &want.len().to_string())).unwrap();
    std::fs::write(src.join("holey.mf"), format!("SHA256(holey-disk1.img)= {}\n", sha256(b"other"))).unwrap();
    let ova = t.path().join("bad.ova");
    assert!(Command::new("tar").args(["-S", "--format=gnu", "-cf"]).arg(&ova).arg("-C").arg(&src).args(["holey.ovf", "holey.mf", "holey-disk1.img"]).status().unwrap().success());
    let e = ferry_formats::ovf::read_ova(&ova).err().unwrap().to_string();
    assert!(!e.contains('\n') && e.contains("bad.ova") && e.contains("corrupt OVA"), "{e}");
}

/// The fuzz seeds (`testdata/ova/fuzz-seeds/ova_tar`, one per flavour, made with GNU tar)
/// read as the 64 KiB image they hold: 600 bytes of 'A', 100 of 'B' at 40000.
#[test]
fn fuzz_seeds_read() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/ova/fuzz-seeds/ova_tar");
    let mut want = vec![0u8; 65536];
    want[..600].fill(b'A');
    want[40000..40100].fill(b'B');
    for f in ["gnu.ova", "pax-0.0.ova", "pax-0.1.ova", "pax-1.0.ova"] {
        let o = ferry_formats::ovf::read_ova(&dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(matches!(o.vm.disks[0].source, DiskSource::SparseInPlace { .. }), "{f}: {:?}", o.vm.disks[0].source);
        let mut got = Vec::new();
        ferry_formats::ovf::open_stream(&o.vm.disks[0].source).unwrap().read_to_end(&mut got).unwrap();
        assert!(got == want, "{f}");
    }
}

/// Damaged sparse maps are one-line errors, never panics: every byte of each seed's headers
/// and map flipped in turn.
#[test]
fn damaged_sparse_headers_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/ova/fuzz-seeds/ova_tar");
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("d.ova");
    for f in ["gnu.ova", "pax-0.0.ova", "pax-0.1.ova", "pax-1.0.ova"] {
        let good = std::fs::read(dir.join(f)).unwrap();
        // The headers and maps are in the first blocks: before and around the disk member.
        for i in (0..good.len().min(6144)).step_by(11) {
            for v in [b'9', 0xff] {
                let mut bad = good.clone();
                bad[i] = v;
                std::fs::write(&p, &bad).unwrap();
                if let Err(e) = ferry_formats::ovf::read_ova(&p) {
                    assert!(!e.to_string().contains('\n'), "{f} byte {i}: {e}");
                } else if let Ok(o) = ferry_formats::ovf::read_ova(&p) {
                    for d in &o.vm.disks {
                        if let Ok(mut r) = ferry_formats::ovf::open_stream(&d.source) {
                            let _ = std::io::copy(&mut (&mut r).take(64 << 20), &mut std::io::sink());
                        }
                    }
                }
            }
        }
    }
}
