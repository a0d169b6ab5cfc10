//! The CLI's refusals on bad inputs (issue 12 point 5, issue 10 points 3 and 7): every error
//! path reachable from a description or an argument prints exactly one line naming the file
//! (an OS error once, control characters escaped), exits non-zero and writes nothing. A
//! directory OVA whose disk reads a host file outside it is refused; `-i disk` with a
//! backing file elsewhere converts and lists it in the report. Oracle for the outputs:
//! `qemu-img` builds the chains, `qemu-img check` checks the output.

mod convert_support;

use convert_support::*;
use std::path::Path;
use std::process::Command;

/// Runs ferry, asserts it fails with one stderr line holding every `wants`; returns it.
fn refused(args: &[&str], wants: &[&str]) -> String {
    refused_env(args, wants, &[])
}

fn refused_env(args: &[&str], wants: &[&str], env: &[(&str, &str)]) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    // Warnings before the refusal are fine; the refusal itself is one line.
    let err: String = String::from_utf8_lossy(&o.stderr).lines().filter(|l| !l.starts_with("ferry: warning: ")).map(|l| format!("{l}\n")).collect();
    assert!(!o.status.success(), "ferry {args:?} succeeded");
    assert_eq!(err.lines().count(), 1, "ferry {args:?}: not one line:\n{err}");
    for w in wants {
        assert!(err.contains(w), "ferry {args:?}: {err:?} lacks {w:?}");
    }
    assert!(err.matches("os error").count() <= 1, "OS error repeated: {err}");
    err
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn qemu_img(args: &[&str]) {
    let o = Command::new("qemu-img").args(args).output().expect("qemu-img");
    assert!(o.status.success(), "qemu-img {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn every_input_error_is_one_line_naming_the_file() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let out = d.join("out");
    std::fs::create_dir(&out).unwrap();
    let o = out.to_str().unwrap();
    let p = |n: &str| d.join(n).to_str().unwrap().to_string();
    let garbage: Vec<u8> = (0..1u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::write(d.join("random.vmx"), &garbage).unwrap();
    std::fs::write(d.join("diskless.vmx"), "displayName = \"x\"\nscsi0.present = \"TRUE\"\nscsi0:0.present = \"TRUE\"\nscsi0:0.deviceType = \"scsi-passthru\"\n").unwrap();
    std::fs::write(d.join("esc\x1b[1mape.vmx"), "memsize = \"x\x07y\"\n").unwrap();
    std::fs::write(d.join("not-an.ova"), b"plain text, not an archive").unwrap();
    std::fs::write(d.join("bad.cfg"), "name = 'x'\nmemory = 'lots'\n").unwrap();
    std::fs::write(d.join("bad.xml"), "<domain type='kvm'><name>x</name><memory unit='parsec'>1</memory></domain>").unwrap();
    std::fs::write(d.join("rbd.cfg"), "name = 'ceph'\nmemory = 512\ndisk = [ 'format=raw,vdev=xvda,access=rw,target=rbd:pool/ceph-root' ]\n").unwrap();
    let vapp = d.join("vapp");
    std::fs::create_dir(&vapp).unwrap();
    std::fs::copy(configs().join("inputs/collection.ovf"), vapp.join("collection.ovf")).unwrap();
    let missing = p("missing.vmx");

    let cases: Vec<(Vec<String>, Vec<String>)> = vec![
        // A missing file: the OS error once.
        (vec!["convert".into(), "-i".into(), "vmx".into(), missing.clone(), "-o".into(), "local".into(), "-os".into(), o.into()], vec![missing.clone(), "No such file or directory".into()]),
        (vec!["convert".into(), "-i".into(), "vmx".into(), d.to_str().unwrap().into(), "-os".into(), o.into()], vec![d.display().to_string(), "is a directory".into()]),
        (vec!["convert".into(), "-i".into(), "vmx".into(), p("random.vmx"), "-os".into(), o.into()], vec![p("random.vmx"), "not a VMX file".into()]),
        (vec!["convert".into(), "-i".into(), "vmx".into(), p("diskless.vmx"), "-os".into(), o.into()], vec![p("diskless.vmx"), "every disk slot was skipped".into()]),
        (vec!["convert".into(), "-i".into(), "vmx".into(), p("esc\x1b[1mape.vmx"), "-os".into(), o.into()], vec!["esc\\u{1b}[1mape.vmx".into(), "\\u{7}".into()]),
        (vec!["convert".into(), "-i".into(), "ova".into(), p("not-an.ova"), "-os".into(), o.into()], vec![p("not-an.ova"), "not an OVA".into()]),
        (vec!["convert".into(), "-i".into(), "ova".into(), vapp.to_str().unwrap().into(), "-os".into(), o.into()], vec!["collection.ovf".into(), "--vm NAME".into(), "web, db".into()]),
        (vec!["convert".into(), "-i".into(), "ova".into(), vapp.to_str().unwrap().into(), "--vm".into(), "mail".into(), "-os".into(), o.into()], vec!["collection.ovf".into(), "\"mail\"".into()]),
        (vec!["convert".into(), "-i".into(), "xen".into(), p("bad.cfg"), "-os".into(), o.into()], vec![p("bad.cfg"), "\"lots\"".into()]),
        (vec!["convert".into(), "-i".into(), "libvirtxml".into(), p("bad.xml"), "-os".into(), o.into()], vec![p("bad.xml"), "\"parsec\"".into()]),
        (vec!["convert".into(), "-i".into(), "xen".into(), p("rbd.cfg"), "-os".into(), o.into()], vec!["rbd:pool/ceph-root".into(), "--disk-file".into()]),
        (vec!["convert".into(), "-i".into(), "xen".into(), p("rbd.cfg"), "--disk-file".into(), "rbd:pool/ceph-root".into(), "-os".into(), o.into()], vec!["--disk-file".into(), "REFERENCE=FILE".into()]),
        (vec!["convert".into(), "-i".into(), "xen".into(), p("rbd.cfg"), "--disk-file".into(), format!("rbd:pool/ceph-root={}", p("nope.img")), "-os".into(), o.into()], vec![p("nope.img"), "No such file".into()]),
        (vec!["convert".into(), "-i".into(), "disk".into(), p("nope.img"), "-os".into(), o.into()], vec![p("nope.img"), "No such file".into()]),
        (vec!["convert".into(), "-i".into(), "vmx".into(), configs().join("vmx/esxi8-rhel9.vmx").to_str().unwrap().into(), "--vm".into(), "x".into(), "-os".into(), o.into()], vec!["--vm".into(), "-i ova".into()]),
        (vec!["img".into(), "info".into(), p("nope.img")], vec![p("nope.img"), "No such file".into()]),
        (vec!["inspect".into(), p("nope.img")], vec![p("nope.img"), "No such file".into()]),
        (vec!["validate".into(), p("nope.ferry.json")], vec![p("nope.ferry.json"), "No such file".into()]),
    ];
    for (args, wants) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let wants: Vec<&str> = wants.iter().map(String::as_str).collect();
        refused(&args, &wants);
    }
    assert!(listing(&out).is_empty(), "{:?}", listing(&out));

    // -o MODE without -os: the mode as typed on the command line.
    let vmx = configs().join("vmx/esxi8-rhel9.vmx");
    for (mode, shown) in [("local", "-o local needs -os"), ("disk", "-o disk needs -os"), ("libvirt-xml", "-o libvirt-xml needs -os"), ("qemu", "-o qemu needs -os")] {
        refused(&["convert", "-i", "vmx", vmx.to_str().unwrap(), "-o", mode], &[shown]);
    }
}

#[test]
fn validate_without_qemu_names_the_package() {
    let t = tempfile::tempdir().unwrap();
    let o = t.path().to_str().unwrap();
    let cfg = configs().join("xen/web01-pv.cfg");
    ferry_ok(&["convert", "-i", "xen", cfg.to_str().unwrap(), "-o", "ferry", "-os", o, "--no-copy"]);
    let spec = std::fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().ends_with(".ferry.json")).unwrap();
    let empty = tempfile::tempdir().unwrap();
    refused_env(
        &["validate", spec.to_str().unwrap(), "--engine", "qemu", "--timeout", "5"],
        &[spec.to_str().unwrap(), "qemu-system-x86_64", "qemu-system-x86 package"],
        &[("PATH", empty.path().to_str().unwrap())],
    );
}

/// A VMDK descriptor whose one FLAT extent is `extent` (512 bytes).
fn descriptor(extent: &str) -> String {
    format!(
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\nRW 1 FLAT \"{extent}\" 0\n\nddb.virtualHWVersion = \"4\"\n"
    )
}

fn ova_dir(root: &Path, disk: &str, format: &str) {
    let ovf = format!(
        r#"<Envelope xmlns:ovf="o" xmlns:rasd="r"><References><File ovf:href="{disk}" ovf:id="f1"/></References>
<DiskSection><Disk ovf:capacity="512" ovf:diskId="d1" ovf:fileRef="f1" ovf:format="{format}"/></DiskSection>
<VirtualSystem ovf:id="leak"><Name>leak</Name><VirtualHardwareSection>
<Item><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>64</rasd:VirtualQuantity></Item>
<Item><rasd:ResourceType>17</rasd:ResourceType><rasd:HostResource>ovf:/disk/d1</rasd:HostResource></Item>
</VirtualHardwareSection></VirtualSystem></Envelope>"#
    );
    std::fs::write(root.join("leak.ovf"), ovf).unwrap();
}

#[test]
fn directory_ova_disks_cannot_read_host_files() {
    if !have("qemu-img") {
        eprintln!("qemu-img not installed: skipped");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let host = t.path().join("host-secret.img");
    std::fs::write(&host, vec![0x53u8; 512]).unwrap();
    let cases = [
        // A descriptor naming a host file by absolute path, and by ../ out of the directory.
        ("abs", "leak.vmdk", descriptor(&host.display().to_string()), "vmdk"),
        ("rel", "leak.vmdk", descriptor("../host-secret.img"), "vmdk"),
    ];
    for (tag, disk, text, fmt) in cases {
        let dir = t.path().join(format!("ova-{tag}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join(disk), text).unwrap();
        ova_dir(&dir, disk, fmt);
        let out = t.path().join(format!("out-{tag}"));
        std::fs::create_dir(&out).unwrap();
        refused(
            &["convert", "-i", "ova", dir.to_str().unwrap(), "-o", "local", "-os", out.to_str().unwrap()],
            &[dir.to_str().unwrap(), "host-secret.img", "outside the OVA directory"],
        );
        assert!(listing(&out).is_empty(), "{tag}: {:?}", listing(&out));
    }
    // A qcow2 whose backing file is a host file.
    let dir = t.path().join("ova-qcow2");
    std::fs::create_dir(&dir).unwrap();
    let q = dir.join("leak.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", "-b", host.to_str().unwrap(), "-F", "raw", q.to_str().unwrap(), "512"]);
    ova_dir(&dir, "leak.qcow2", "qcow2");
    let out = t.path().join("out-qcow2");
    std::fs::create_dir(&out).unwrap();
    refused(
        &["convert", "-i", "ova", dir.to_str().unwrap(), "-o", "local", "-os", out.to_str().unwrap()],
        &["host-secret.img", "outside the OVA directory"],
    );
    assert!(listing(&out).is_empty());

    // -i disk: a backing file in another directory is allowed (as qemu-img) and reported.
    let a = t.path().join("a");
    std::fs::create_dir(&a).unwrap();
    let top = a.join("top.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", "-b", host.to_str().unwrap(), "-F", "raw", top.to_str().unwrap(), "512"]);
    let out = t.path().join("out-disk");
    std::fs::create_dir(&out).unwrap();
    let o = ferry(&["convert", "-i", "disk", top.to_str().unwrap(), "-o", "ferry", "-os", out.to_str().unwrap(), "--json"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("reads") && stderr.contains("host-secret.img") && stderr.contains("outside its directory"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let listed: Vec<&str> = report["outside-files"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(listed, [host.to_str().unwrap()]);
    qemu_img(&["check", "-q", out.join("top-sda").to_str().unwrap()]);
}

/// The emitted NAME.sh picks TCG with a one-line note on a kvm_pvm host (where QEMU's KVM
/// accelerator starts but cannot run a guest), KVM-then-TCG elsewhere; FERRY_QEMU_ACCEL
/// always wins. A stand-in `qemu-system-x86_64` on PATH records the arguments it gets.
#[test]
fn emitted_script_falls_back_to_tcg_on_kvm_pvm() {
    let t = tempfile::tempdir().unwrap();
    let o = t.path().join("out");
    std::fs::create_dir(&o).unwrap();
    let cfg = configs().join("xen/web01-pv.cfg");
    ferry_ok(&["convert", "-i", "xen", cfg.to_str().unwrap(), "-o", "qemu", "-os", o.to_str().unwrap(), "--no-copy"]);
    let script = std::fs::read_dir(&o).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "sh")).unwrap();
    let bin = t.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let fake = bin.join("qemu-system-x86_64");
    std::fs::write(&fake, "#!/bin/sh\necho \"$*\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let run = |accel: Option<&str>| {
        let mut c = Command::new("sh");
        c.arg(&script).env("PATH", &path).env_remove("FERRY_QEMU_ACCEL");
        if let Some(a) = accel {
            c.env("FERRY_QEMU_ACCEL", a);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (args, note) = run(None);
    if Path::new("/sys/module/kvm_pvm").exists() {
        assert!(args.contains("-accel tcg") && !args.contains("-accel kvm"), "{args}");
        assert_eq!(note.lines().count(), 1, "{note}");
        assert!(note.contains("kvm_pvm") && note.contains("TCG"), "{note}");
    } else {
        assert!(args.contains("-accel kvm -accel tcg"), "{args}");
        assert!(note.is_empty(), "{note}");
    }
    let (args, note) = run(Some("-accel kvm"));
    assert!(args.contains("-accel kvm") && !args.contains("-accel tcg") && note.is_empty(), "{args} {note}");
}

/// A VMX whose IDE slot has no deviceType (VMware's default: a disk) naming a snapshot
/// `base-000001.vmdk` over `base.vmdk` (both made by qemu-img): converted as the chain.
/// Oracle: `qemu-img compare` of the top of the chain against the output.
#[test]
fn vmx_snapshot_chain_on_an_implicit_ide_disk_converts() {
    if !have("qemu-img") || !have("qemu-io") {
        eprintln!("qemu-img/qemu-io not installed: skipped");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let (base, top) = (d.join("base.vmdk"), d.join("base-000001.vmdk"));
    qemu_img(&["create", "-q", "-f", "vmdk", base.to_str().unwrap(), "1M"]);
    let io = |f: &Path, cmd: &str| assert!(Command::new("qemu-io").args(["-c", cmd]).arg(f).output().unwrap().status.success());
    io(&base, "write -P 0x61 0 64k");
    qemu_img(&["create", "-q", "-f", "vmdk", "-b", base.to_str().unwrap(), "-F", "vmdk", top.to_str().unwrap()]);
    io(&top, "write -P 0x62 512k 64k");
    std::fs::write(d.join("snap.vmx"), "displayName = \"snap\"\nmemsize = \"256\"\nide0:0.present = \"TRUE\"\nide0:0.fileName = \"base-000001.vmdk\"\n").unwrap();
    let out = d.join("out");
    std::fs::create_dir(&out).unwrap();
    let vmx = d.join("snap.vmx");
    let o = ferry(&["convert", "-i", "vmx", vmx.to_str().unwrap(), "-o", "local", "-os", out.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report.get("outside-files").is_none(), "{report}");
    qemu_img(&["compare", "-q", top.to_str().unwrap(), out.join("snap-sda").to_str().unwrap()]);
}

/// `ferry convert -i ova` of GNU sparse tar OVAs (old GNU and PAX 1.0, made by GNU tar):
/// the output disk equals the original raw image (`qemu-img compare`).
#[test]
fn sparse_tar_ova_converts_to_the_original_image() {
    if !have("qemu-img") || !have("tar") {
        eprintln!("qemu-img/tar not installed: skipped");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let img = src.join("d.img");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(&img).unwrap();
        f.set_len(4 << 20).unwrap();
        f.write_all(&[0x11; 5000]).unwrap();
        f.seek(SeekFrom::Start(3 << 20)).unwrap();
        f.write_all(&[0x22; 70000]).unwrap();
    }
    std::fs::write(
        src.join("s.ovf"),
        r#"<Envelope><References><File href="d.img" id="f"/></References><DiskSection><Disk diskId="d" fileRef="f" capacity="4194304"/></DiskSection><VirtualSystem id="sparse"><VirtualHardwareSection><Item><ResourceType>4</ResourceType><VirtualQuantity>64</VirtualQuantity></Item><Item><InstanceID>1</InstanceID><ResourceType>5</ResourceType></Item><Item><ResourceType>17</ResourceType><Parent>1</Parent><HostResource>ovf:/disk/d</HostResource></Item></VirtualHardwareSection></VirtualSystem></Envelope>"#,
    )
    .unwrap();
    for (tag, flags) in [("gnu", &["-S", "--format=gnu"][..]), ("pax", &["--sparse", "--format=pax", "--sparse-version=1.0"][..])] {
        let ova = t.path().join(format!("{tag}.ova"));
        assert!(Command::new("tar").args(flags).arg("-cf").arg(&ova).arg("-C").arg(&src).args(["s.ovf", "d.img"]).status().unwrap().success());
        let out = t.path().join(format!("out-{tag}"));
        std::fs::create_dir(&out).unwrap();
        let o = ferry(&["convert", "-i", "ova", ova.to_str().unwrap(), "-o", "local", "-os", out.to_str().unwrap()]);
        assert!(o.status.success(), "{tag}: {}", String::from_utf8_lossy(&o.stderr));
        qemu_img(&["compare", "-q", "-f", "raw", img.to_str().unwrap(), out.join("sparse-sda").to_str().unwrap()]);
    }
}

/// An OVF collection: `--vm web` converts the web VM, its `${web.disk.gb}` disk (a qemu-img
/// streamOptimized VMDK) and its blank disk (no fileRef), which becomes an empty 2 GiB qcow2.
/// Oracle: `qemu-img info` / `check` / `compare`.
#[test]
fn ovf_collection_vm_with_a_blank_disk_converts() {
    if !have("qemu-img") {
        eprintln!("qemu-img not installed: skipped");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let v = t.path().join("v");
    std::fs::create_dir_all(v.join("vapp")).unwrap();
    std::fs::copy(configs().join("inputs/collection.ovf"), v.join("vapp/collection.ovf")).unwrap();
    let web = v.join("vapp/web-disk1.vmdk");
    qemu_img(&["create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized", web.to_str().unwrap(), "16G"]);
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let o = ferry(&["convert", "-i", "ova", v.to_str().unwrap(), "--vm", "web", "-o", "local", "-os", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let info = Command::new("qemu-img").args(["info", "--output=json"]).arg(out.join("web-sdb")).output().unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["virtual-size"], 2u64 << 30);
    assert_eq!(info["format"], "qcow2");
    qemu_img(&["check", "-q", out.join("web-sdb").to_str().unwrap()]);
    qemu_img(&["compare", "-q", web.to_str().unwrap(), out.join("web-sda").to_str().unwrap()]);
}
