//! Real-world description shapes (issue 12 points 1-3, issue 10 point 7): VMware's implicit
//! disk slots, non-VMX files, OVF collections, properties, bounds and blank disks, xm/xl
//! disk spec variants. Fixtures: `testdata/configs/inputs/`.

use ferry_formats::model::{Bus, DiskSource, RemovableKind, MAX_WARNINGS};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/configs/inputs").join(name)
}

fn one_line(err: &str, file: &str) {
    assert!(!err.contains('\n'), "multi-line error: {err}");
    assert!(err.contains(file), "error does not name {file}: {err}");
}

#[test]
fn vmx_slots_without_device_type_are_disks() {
    let vm = ferry_formats::vmx::read_vmx(&fixture("ide-default.vmx")).unwrap();
    let disks: Vec<(Bus, u32, u32, String)> = vm
        .disks
        .iter()
        .map(|d| match &d.source {
            DiskSource::File { path } => (d.bus, d.controller, d.unit, path.file_name().unwrap().to_string_lossy().into_owned()),
            other => panic!("{other:?}"),
        })
        .collect();
    // The snapshot-named disk is read as the disk it names (its chain is the VMDK's).
    assert_eq!(
        disks,
        [
            (Bus::Sata, 0, 0, "sata-disk.vmdk".to_string()),
            (Bus::Ide, 0, 0, "legacy-ide-000001.vmdk".to_string()),
            (Bus::Ide, 1, 0, "data.vmdk".to_string()),
        ]
    );
    // An .iso in a slot without deviceType is a CD-ROM with its media.
    assert_eq!(vm.removables.len(), 1);
    assert_eq!((vm.removables[0].kind, vm.removables[0].bus, vm.removables[0].unit), (RemovableKind::Cdrom, Bus::Ide, 1));
    assert_eq!(vm.removables[0].media.as_deref(), Some("/iso/install.iso"));
}

#[test]
fn vmx_whose_every_disk_is_skipped_is_refused() {
    let e = ferry_formats::vmx::read_vmx(&fixture("only-passthru.vmx")).unwrap_err().to_string();
    one_line(&e, "only-passthru.vmx");
    assert!(e.contains("every disk slot was skipped") && e.contains("scsi0:0") && e.contains("scsi-passthru"), "{e}");
}

/// Deterministic pseudo-random bytes (xorshift64).
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn non_vmx_files_are_refused_in_one_line_and_warnings_are_capped() {
    let t = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("random.vmx", noise(1 << 20), "binary content"),
        ("zeros.vmx", vec![0u8; 1 << 20], "NUL byte at offset 0"),
        ("prose.vmx", b"This is a README.\nIt has no settings at all.\n".to_vec(), "no `key = \"value\"` line"),
        (
            "mostly-junk.vmx",
            format!("displayName = \"x\"\n{}", "junk line without equals\n".repeat(5)).into_bytes(),
            "5 of 6 lines",
        ),
    ];
    for (name, bytes, want) in cases {
        let p = t.path().join(name);
        std::fs::write(&p, &bytes).unwrap();
        let e = ferry_formats::vmx::read_vmx(&p).unwrap_err().to_string();
        one_line(&e, name);
        assert!(e.contains("not a VMX file") && e.contains(want), "{name}: {e}");
        assert!(e.len() < 300, "{name}: {} bytes of error", e.len());
    }
    // A real VMX with thousands of malformed lines and duplicate keys still reads, with a
    // bounded, summarised warning list.
    let mut text = String::from("displayName = \"noisy\"\nmemsize = \"256\"\nscsi0.present = \"TRUE\"\nscsi0:0.present = \"TRUE\"\nscsi0:0.fileName = \"a.vmdk\"\n");
    for i in 0..3000 {
        text.push_str(&format!("guestinfo.k{i} = \"v\"\nguestinfo.k{i} = \"again\"\n"));
    }
    for _ in 0..1000 {
        text.push_str("bad line\n");
    }
    let p = t.path().join("noisy.vmx");
    std::fs::write(&p, text).unwrap();
    let vm = ferry_formats::vmx::read_vmx(&p).unwrap();
    assert_eq!(vm.warnings.len(), MAX_WARNINGS + 1, "{:?}", vm.warnings.last());
    assert!(vm.warnings.last().unwrap().ends_with("more warnings not shown"), "{:?}", vm.warnings.last());
}

/// A directory OVA: `vapp/collection.ovf`, the web disk next to it, the db disk in a sibling
/// directory reached by `../shared/`.
fn collection_dir(t: &Path) -> PathBuf {
    let dir = t.join("vapp-export");
    std::fs::create_dir_all(dir.join("vapp")).unwrap();
    std::fs::create_dir_all(dir.join("shared")).unwrap();
    std::fs::copy(fixture("collection.ovf"), dir.join("vapp/collection.ovf")).unwrap();
    std::fs::write(dir.join("vapp/web-disk1.vmdk"), vec![7u8; 4096]).unwrap();
    std::fs::write(dir.join("shared/db-disk1.vmdk"), vec![9u8; 512]).unwrap();
    dir
}

#[test]
fn ovf_collection_properties_bounds_blank_disks_and_sizes() {
    let t = tempfile::tempdir().unwrap();
    let dir = collection_dir(t.path());
    // Several VMs and no choice: refused, listing them.
    let e = ferry_formats::ovf::read_ova(&dir).err().unwrap().to_string();
    one_line(&e, "collection.ovf");
    assert!(e.contains("--vm NAME") && e.contains("web, db"), "{e}");
    let e = ferry_formats::ovf::read_ova_vm(&dir, Some("mail")).err().unwrap().to_string();
    one_line(&e, "collection.ovf");
    assert!(e.contains("\"mail\"") && e.contains("web, db"), "{e}");

    let web = ferry_formats::ovf::read_ova_vm(&dir, Some("web")).unwrap().vm;
    assert_eq!(web.name, "web");
    assert_eq!(web.memory_bytes, 2048 << 20, "the ovf:bound=\"normal\" item");
    assert_eq!(web.vcpus, 2);
    assert_eq!(web.disks.len(), 2);
    assert_eq!(web.disks[0].capacity, Some(16 << 30), "${{web.disk.gb}} from the ProductSection default");
    assert!(matches!(&web.disks[0].source, DiskSource::File { path } if path.ends_with("vapp/web-disk1.vmdk")));
    assert_eq!(web.disks[1].source, DiskSource::Blank { size: 2048 << 20 });
    // ovf:size="1" against a 4096-byte file: a warning naming both, not a refusal.
    assert!(web.warnings.iter().any(|w| w.contains("web-disk1.vmdk") && w.contains("ovf:size=\"1\"") && w.contains("4096")), "{:?}", web.warnings);
    assert_eq!(web.confine.as_deref(), Some(dir.as_path()));

    // `../shared/` stays inside the directory given: allowed.
    let db = ferry_formats::ovf::read_ova_vm(&dir, Some("db")).unwrap().vm;
    assert!(matches!(&db.disks[0].source, DiskSource::File { path } if path.ends_with("shared/db-disk1.vmdk")), "{:?}", db.disks);
    // Given as the .ovf file, the directory is vapp/, and `../shared/` escapes it: refused.
    let e = ferry_formats::ovf::read_ova_vm(&dir.join("vapp/collection.ovf"), Some("db")).err().unwrap().to_string();
    one_line(&e, "vapp");
    assert!(e.contains("../shared/db-disk1.vmdk") && e.contains("escapes"), "{e}");
}

#[test]
fn ovf_property_without_default_is_refused_naming_it() {
    let text = std::fs::read_to_string(fixture("collection.ovf")).unwrap().replace("ovf:value=\"16\" ", "");
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("x.ovf");
    std::fs::write(&p, &text).unwrap();
    std::fs::write(t.path().join("web-disk1.vmdk"), b"x").unwrap();
    let e = ferry_formats::ovf::read_ova_vm(&p, Some("web")).err().unwrap().to_string();
    one_line(&e, "x.ovf");
    assert!(e.contains("${web.disk.gb}") && e.contains("\"web.disk.gb\" has no default"), "{e}");
}

#[test]
fn ova_member_named_like_a_chunk_is_a_disk_unless_chunked() {
    let t = tempfile::tempdir().unwrap();
    let ovf = |href: &str, chunk: &str| {
        format!(
            r#"<Envelope xmlns:ovf="o" xmlns:rasd="r"><References><File ovf:href="{href}" ovf:id="f1"{chunk}/></References>
<DiskSection><Disk ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="d1" ovf:fileRef="f1"/></DiskSection>
<VirtualSystem ovf:id="c"><VirtualHardwareSection>
<Item><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>64</rasd:VirtualQuantity></Item>
<Item><rasd:ResourceType>17</rasd:ResourceType><rasd:HostResource>ovf:/disk/d1</rasd:HostResource></Item>
</VirtualHardwareSection></VirtualSystem></Envelope>"#
        )
    };
    let dir = t.path().join("a");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("disk.vmdk.000000000"), vec![1u8; 512]).unwrap();
    // The href names the member itself: a plain disk.
    std::fs::write(dir.join("c.ovf"), ovf("disk.vmdk.000000000", "")).unwrap();
    let vm = ferry_formats::ovf::read_ova(&dir).unwrap().vm;
    assert!(matches!(&vm.disks[0].source, DiskSource::File { path } if path.ends_with("disk.vmdk.000000000")), "{:?}", vm.disks);
    // The href names disk.vmdk without ovf:chunkSize: the .000000000 member is not its chunk.
    std::fs::write(dir.join("c.ovf"), ovf("disk.vmdk", "")).unwrap();
    let e = ferry_formats::ovf::read_ova(&dir).err().unwrap().to_string();
    assert!(e.contains("missing file"), "{e}");
    // With ovf:chunkSize it is.
    std::fs::write(dir.join("c.ovf"), ovf("disk.vmdk", " ovf:chunkSize=\"512\"")).unwrap();
    let vm = ferry_formats::ovf::read_ova(&dir).unwrap().vm;
    assert!(matches!(&vm.disks[0].source, DiskSource::Chunked { chunks } if chunks.len() == 1), "{:?}", vm.disks);
}

#[test]
fn ovf_absent_quantity_says_missing() {
    let text = r#"<Envelope xmlns:ovf="o" xmlns:rasd="r"><VirtualSystem ovf:id="q"><VirtualHardwareSection>
<Item><rasd:ResourceType>4</rasd:ResourceType><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits></Item>
</VirtualHardwareSection></VirtualSystem></Envelope>"#;
    let e = ferry_formats::ovf::parse_ovf_text(text, Path::new("q.ovf")).unwrap_err().to_string();
    assert!(e.contains("memory VirtualQuantity missing") && !e.contains("\"0\""), "{e}");
    let text = text.replace("<rasd:AllocationUnits>", "<rasd:VirtualQuantity>0x10</rasd:VirtualQuantity><rasd:AllocationUnits>");
    let e = ferry_formats::ovf::parse_ovf_text(&text, Path::new("q.ovf")).unwrap_err().to_string();
    assert!(e.contains("\"0x10\""), "the value as written: {e}");
    // Control characters in a value or a file name are escaped: always one line.
    let e = ferry_formats::vmx::parse_vmx(b"memsize = \"12\x1b[2J\"\nx = \"1\"\n", Path::new("a\nb.vmx")).unwrap_err().to_string();
    assert!(!e.contains('\n') && !e.contains('\x1b') && e.contains("a\\nb.vmx") && e.contains("\\u{1b}"), "{e}");
}

#[test]
fn xm_legacy_hvm_disks_cdrom_network_storage_and_vcpus() {
    let vm = ferry_formats::xen::read_xen(&fixture("legacy-hvm.xm")).unwrap();
    assert_eq!((vm.vcpus, vm.max_vcpus), (2, Some(4)));
    let d: Vec<(Bus, u32, &DiskSource, Option<&str>)> =
        vm.disks.iter().map(|d| (d.bus, d.unit, &d.source, d.format.as_deref())).collect();
    assert_eq!(d.len(), 3, "{d:?}");
    assert_eq!(d[0], (Bus::Ide, 0, &DiskSource::File { path: "/srv/xen/legacy.img".into() }, Some("raw")));
    assert_eq!(d[1], (Bus::Ide, 1, &DiskSource::File { path: "/srv/xen/data.qcow2".into() }, Some("qcow2")));
    assert_eq!(d[2], (Bus::Xen, 2, &DiskSource::Unresolved { reference: "rbd:rbd/legacy-scratch:id=admin".into() }, Some("raw")));
    assert_eq!(vm.removables.len(), 1);
    assert_eq!((vm.removables[0].bus, vm.removables[0].unit), (Bus::Ide, 2));
    assert_eq!(vm.removables[0].media.as_deref(), Some("/srv/iso/install.iso"));
    // maxvcpus below vcpus is refused naming both.
    let text = std::fs::read_to_string(fixture("legacy-hvm.xm")).unwrap().replace("maxvcpus = 4", "maxvcpus = 1");
    let e = ferry_formats::xen::parse_xen(&text, Path::new("legacy-hvm.xm")).unwrap_err().to_string();
    one_line(&e, "legacy-hvm.xm");
    assert!(e.contains("maxvcpus \"1\"") && e.contains("vcpus 2"), "{e}");
}

#[test]
fn libvirt_current_vcpus_are_the_boot_count() {
    let xml = |cur: &str| {
        format!(
            "<domain type='xen'><name>cur</name><memory unit='MiB'>512</memory><vcpu placement='static'{cur}>4</vcpu>\
             <cpu><topology sockets='1' cores='4' threads='1'/></cpu><os><type>hvm</type></os></domain>"
        )
    };
    let vm = ferry_formats::libvirt::parse_libvirt_xml(&xml(" current='2'"), Path::new("cur.xml")).unwrap();
    assert_eq!((vm.vcpus, vm.max_vcpus), (2, Some(4)));
    assert_eq!(vm.topology.map(|t| t.cores), Some(4), "the topology describes the maximum");
    let vm = ferry_formats::libvirt::parse_libvirt_xml(&xml(""), Path::new("cur.xml")).unwrap();
    assert_eq!((vm.vcpus, vm.max_vcpus), (4, None));
    let e = ferry_formats::libvirt::parse_libvirt_xml(&xml(" current='8'"), Path::new("cur.xml")).unwrap_err().to_string();
    one_line(&e, "cur.xml");
    assert!(e.contains("current") && e.contains("\"8\""), "{e}");
}
