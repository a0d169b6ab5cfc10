//! Malformed inputs: each is refused with one line naming the file, the field and the value.

use std::path::{Path, PathBuf};

fn bad(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/configs/bad").join(name)
}

fn check(err: String, file: &str, wants: &[&str]) {
    assert!(!err.contains('\n'), "multi-line error: {err}");
    assert!(err.contains(file), "error does not name {file}: {err}");
    for w in wants {
        assert!(err.contains(w), "error lacks {w:?}: {err}");
    }
}

#[test]
fn vmx_errors() {
    let cases: &[(&str, &[&str])] = &[
        ("descriptor.vmx", &["VMDK descriptor"]),
        ("bad-memsize.vmx", &["memsize", "\"4 GB\""]),
        ("bad-mac.vmx", &["ethernet0.address", "00:50:56:zz:00:01"]),
        ("no-filename.vmx", &["scsi0:0.fileName", "no file"]),
        ("bad-cores.vmx", &["coresPerSocket", "\"4\"", "numvcpus 6"]),
        ("bad-uuid.vmx", &["uuid.bios", "42 25 6e"]),
    ];
    for (f, wants) in cases {
        let e = ferry_formats::vmx::read_vmx(&bad(f)).unwrap_err().to_string();
        check(e, f, wants);
    }
    // A sparse VMDK passed by mistake.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("disk.vmx");
    std::fs::write(&p, b"KDMV\x01\x00\x00\x00junk").unwrap();
    check(ferry_formats::vmx::read_vmx(&p).unwrap_err().to_string(), "disk.vmx", &["VMDK disk image"]);
    // Missing file.
    let e = ferry_formats::vmx::read_vmx(&dir.path().join("nope.vmx")).unwrap_err().to_string();
    check(e, "nope.vmx", &["open"]);
}

#[test]
fn xen_errors() {
    let cases: &[(&str, &[&str])] = &[
        ("python-import.cfg", &["line 1", "import", "unsupported Python syntax"]),
        ("python-expr.cfg", &["line 2", "\"+\"", "unsupported Python syntax"]),
        ("bad-access.cfg", &["line 3: disk", "phy:/dev/vg/x,xvda,q", "access mode"]),
        ("unterminated.cfg", &["unterminated list"]),
        ("bad-memory.cfg", &["line 2: memory", "\"lots\""]),
    ];
    for (f, wants) in cases {
        let e = ferry_formats::xen::read_xen(&bad(f)).unwrap_err().to_string();
        check(e, f, wants);
    }
}

#[test]
fn libvirt_errors() {
    let cases: &[(&str, &[&str])] = &[
        ("bad-unit.xml", &["memory unit", "\"parsec\""]),
        ("bad-mac.xml", &["interface mac", "52:54:00:xx:00:01"]),
        ("truncated.xml", &["XML"]),
        ("lxc.xml", &["domain type", "\"lxc\""]),
    ];
    for (f, wants) in cases {
        let e = ferry_formats::libvirt::read_libvirt_xml(&bad(f)).unwrap_err().to_string();
        check(e, f, wants);
    }
}

#[test]
fn ovf_errors() {
    let p = Path::new("x.ovf");
    let ovf = |hw: &str| {
        format!(
            "<Envelope xmlns='http://schemas.dmtf.org/ovf/envelope/1' xmlns:rasd='r'><References/><VirtualSystem><Name>v</Name><VirtualHardwareSection>{hw}</VirtualHardwareSection></VirtualSystem></Envelope>"
        )
    };
    let mem = "<Item><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>512</rasd:VirtualQuantity></Item>";
    let cases: Vec<(String, &[&str])> = vec![
        (ovf(""), &["memory Item (ResourceType 4) missing"]),
        (ovf("<Item><rasd:ResourceType>4</rasd:ResourceType><rasd:AllocationUnits>furlong</rasd:AllocationUnits><rasd:VirtualQuantity>1</rasd:VirtualQuantity></Item>"), &["AllocationUnits", "furlong"]),
        (ovf(&format!("{mem}<Item><rasd:ResourceType>17</rasd:ResourceType><rasd:HostResource>ovf:/disk/d9</rasd:HostResource></Item>")), &["HostResource", "ovf:/disk/d9"]),
        (ovf(&format!("{mem}<Item><rasd:ResourceType>10</rasd:ResourceType><rasd:Address>00:50:56</rasd:Address></Item>")), &["NIC Address", "00:50:56"]),
        (ovf(&format!("{mem}<Item><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>lots</rasd:VirtualQuantity></Item>")), &["VirtualQuantity", "lots"]),
        (ovf(&format!("{mem}<Config key='firmware' value='coreboot'/>")), &["firmware", "coreboot"]),
        ("<domain/>".to_string(), &["root element", "domain"]),
    ];
    for (text, wants) in cases {
        let e = ferry_formats::ovf::parse_ovf_text(&text, p).unwrap_err().to_string();
        check(e, "x.ovf", wants);
    }
}
