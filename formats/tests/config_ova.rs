//! OVA archive variants: ustar and GNU tar, gzip- and xz-compressed tar, zip, directory;
//! manifests (SHA1/SHA256/SHA512, spacing variant, CRLF, bad digest, garbled line);
//! path traversal; missing file; two .ovf files; a decompression bomb; gzip-compressed and
//! chunked files. Archives are built with GNU tar, gzip, xz and split (and the zip crate's
//! writer); disks with qemu-img. The oracle for member bytes is the original file.

use ferry_formats::model::{DiskSource, VmModel};
use ferry_formats::ovf::{open_stream, read_ova};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn sh(script: &str, dir: &Path) {
    run(Command::new("sh").arg("-ec").arg(script).current_dir(dir));
}

fn template(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/configs/ovf").join(name)).unwrap()
}

const FILES: [&str; 3] = ["web01-disk1.vmdk", "web01-disk2.vmdk", "web01-file1.nvram"];

/// A staging directory holding web01.ovf, its files and a SHA256 manifest.
fn stage(dir: &Path, sub: &str) -> PathBuf {
    let s = dir.join("stage").join(sub);
    std::fs::create_dir_all(&s).unwrap();
    run(Command::new("qemu-img").args(["create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized"]).arg(s.join(FILES[0])).arg("16M"));
    run(Command::new("qemu-img").args(["create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized"]).arg(s.join(FILES[1])).arg("100M"));
    std::fs::write(s.join(FILES[2]), (0..70000u32).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>()).unwrap();
    let mut ovf = template("ovftool-esxi8.ovf");
    for (i, f) in FILES.iter().enumerate() {
        let len = std::fs::metadata(s.join(f)).unwrap().len();
        ovf = ovf.replace(&format!("@SIZE{}@", i + 1), &len.to_string());
    }
    std::fs::write(s.join("web01.ovf"), ovf).unwrap();
    sh("for f in web01.ovf web01-disk1.vmdk web01-disk2.vmdk web01-file1.nvram; do printf 'SHA256(%s)= %s\\n' $f $(sha256sum $f | cut -d' ' -f1); done > web01.mf", &s);
    s
}

const ORDER: &str = "web01.ovf web01.mf web01-disk1.vmdk web01-disk2.vmdk web01-file1.nvram";

fn bytes_of(src: &DiskSource) -> Vec<u8> {
    let mut v = Vec::new();
    open_stream(src).unwrap().read_to_end(&mut v).unwrap();
    v
}

fn check_vm(vm: &VmModel, stage: &Path) {
    assert_eq!(vm.name, "web01");
    assert_eq!(vm.memory_bytes, 8192 << 20);
    assert_eq!(vm.disks.len(), 2);
    assert_eq!(vm.nics[0].mac.as_deref(), Some("00:50:56:a5:b8:68"));
    for (d, f) in vm.disks.iter().zip(FILES) {
        assert_eq!(bytes_of(&d.source), std::fs::read(stage.join(f)).unwrap(), "{f}");
    }
}

#[test]
fn ustar_in_place() {
    let t = tempfile::tempdir().unwrap();
    let s = stage(t.path(), "");
    let ova = t.path().join("web01.ova");
    sh(&format!("tar --format=ustar -cf {} {ORDER}", ova.display()), &s);
    let o = read_ova(&ova).unwrap();
    check_vm(&o.vm, &s);
    let raw = std::fs::read(&ova).unwrap();
    for (d, f) in o.vm.disks.iter().zip(FILES) {
        let DiskSource::InPlace { archive, offset, length, member } = &d.source else { panic!("{:?}", d.source) };
        assert_eq!(archive, &ova);
        assert_eq!(member, f);
        // In place: the bytes at offset..offset+length of the .ova are the file.
        assert_eq!(&raw[*offset as usize..(*offset + *length) as usize], std::fs::read(s.join(f)).unwrap().as_slice());
        assert_eq!(offset % 512, 0);
    }
    assert!(o.vm.warnings.is_empty(), "{:?}", o.vm.warnings);
}

#[test]
fn gnu_tar_long_names_in_subfolder() {
    let t = tempfile::tempdir().unwrap();
    let sub = "exported-appliances/2024-05-14/a-rather-long-directory-name-that-pushes-paths-past-the-ustar-limit-of-one-hundred";
    let s = stage(t.path(), sub);
    let ova = t.path().join("web01.ova");
    let order: Vec<String> = ORDER.split(' ').map(|f| format!("{sub}/{f}")).collect();
    sh(&format!("cd ../../..; tar --format=gnu -cf {} {}", ova.display(), order.join(" ")), &s);
    let head = std::fs::read(&ova).unwrap();
    assert_eq!(&head[257..265], b"ustar  \0", "GNU magic");
    let o = read_ova(&ova).unwrap();
    check_vm(&o.vm, &s);
    assert!(matches!(o.vm.disks[0].source, DiskSource::InPlace { .. }));
}

#[test]
fn gzip_and_xz_streamed() {
    let t = tempfile::tempdir().unwrap();
    let s = stage(t.path(), "");
    for (ext, cmd) in [("gz", "gzip -c"), ("xz", "xz -c -T1")] {
        let ova = t.path().join(format!("web01.ova.{ext}"));
        sh(&format!("tar --format=ustar -cf - {ORDER} | {cmd} > {}", ova.display()), &s);
        let o = read_ova(&ova).unwrap();
        check_vm(&o.vm, &s);
        assert!(matches!(o.vm.disks[1].source, DiskSource::Streamed { .. }), "{ext}");
    }
}

#[test]
fn zip_stored_and_deflated() {
    use std::io::Write;
    let t = tempfile::tempdir().unwrap();
    let s = stage(t.path(), "");
    let ova = t.path().join("web01.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&ova).unwrap());
    for (i, f) in ORDER.split(' ').enumerate() {
        let method = if i == 2 { zip::CompressionMethod::Stored } else { zip::CompressionMethod::Deflated };
        z.start_file(format!("sub/{f}"), zip::write::SimpleFileOptions::default().compression_method(method)).unwrap();
        z.write_all(&std::fs::read(s.join(f)).unwrap()).unwrap();
    }
    z.finish().unwrap();
    let o = read_ova(&ova).unwrap();
    check_vm(&o.vm, &s);
    assert!(matches!(o.vm.disks[0].source, DiskSource::InPlace { .. }));
    assert!(matches!(o.vm.disks[1].source, DiskSource::Streamed { .. }));
}

#[test]
fn directory_and_ovf_file() {
    let t = tempfile::tempdir().unwrap();
    let s = stage(t.path(), "dir");
    for p in [s.clone(), s.join("web01.ovf")] {
        let o = read_ova(&p).unwrap();
        check_vm(&o.vm, &s);
        assert_eq!(o.vm.disks[0].source, DiskSource::File { path: s.join(FILES[0]) });
    }
}

#[test]
fn manifest_variants() {
    let t = tempfile::tempdir().unwrap();
    let s = stage(t.path(), "");
    // SHA1 with the spaced variant and CRLF, SHA512, one garbled line.
    sh(
        "{ printf 'SHA1 (web01.ovf) = %s\\r\\n' $(sha1sum web01.ovf | cut -d' ' -f1); \
           printf 'SHA512(web01-disk1.vmdk)= %s\\r\\n' $(sha512sum web01-disk1.vmdk | cut -d' ' -f1); \
           printf 'SHA256(web01-disk2.vmdk)= %s\\r\\n' $(sha256sum web01-disk2.vmdk | cut -d' ' -f1 | tr a-f A-F); \
           printf 'MD5(web01-file1.nvram)= 0123\\r\\n'; \
           printf 'SHA256(not-there.vmdk)= %s\\n' $(printf x | sha256sum | cut -d' ' -f1); } > web01.mf",
        &s,
    );
    let ova = t.path().join("v.ova");
    sh(&format!("tar -cf {} {ORDER}", ova.display()), &s);
    let o = read_ova(&ova).unwrap();
    check_vm(&o.vm, &s);
    let w = o.vm.warnings.join("\n");
    assert!(w.contains("cannot parse \"MD5(web01-file1.nvram)= 0123\""), "{w}");
    assert!(w.contains("not-there.vmdk is listed but not in the OVA"), "{w}");
}

#[test]
fn bad_digest_is_corrupt() {
    let t = tempfile::tempdir().unwrap();
    let s = stage(t.path(), "");
    sh("printf 'extra' >> web01-disk2.vmdk", &s); // changed after the manifest was written
    let mut ovf = std::fs::read_to_string(s.join("web01.ovf")).unwrap();
    let len = std::fs::metadata(s.join(FILES[1])).unwrap().len();
    ovf = ovf.replace(&format!("ovf:size=\"{}\"", len - 5), &format!("ovf:size=\"{len}\""));
    std::fs::write(s.join("web01.ovf"), ovf).unwrap();
    sh("sed -i '/web01.ovf/d' web01.mf", &s);
    for (name, cmd) in [("t.ova", "cat"), ("t.ova.gz", "gzip -c")] {
        let ova = t.path().join(name);
        sh(&format!("tar -cf - {ORDER} | {cmd} > {}", ova.display()), &s);
        let e = read_ova(&ova).err().expect("bad digest accepted").to_string();
        assert!(e.contains("corrupt OVA") && e.contains("web01-disk2.vmdk") && e.contains(name) && !e.contains('\n'), "{e}");
    }
}

#[test]
fn traversal_missing_and_two_ovfs() {
    let t = tempfile::tempdir().unwrap();
    let s = stage(t.path(), "");
    let ova = t.path().join("t.ova");
    // An href escaping the archive.
    let ovf = std::fs::read_to_string(s.join("web01.ovf")).unwrap();
    std::fs::write(s.join("web01.ovf"), ovf.replace("ovf:href=\"web01-disk2.vmdk\"", "ovf:href=\"../web01-disk2.vmdk\"")).unwrap();
    sh("rm web01.mf; touch web01.mf", &s);
    sh(&format!("tar -cf {} {ORDER}", ova.display()), &s);
    let e = read_ova(&ova).err().unwrap().to_string();
    assert!(e.contains("href") && e.contains("../web01-disk2.vmdk") && e.contains("escapes the archive"), "{e}");
    // A member whose name escapes is ignored with a warning, never used.
    std::fs::write(s.join("web01.ovf"), &ovf).unwrap();
    {
        let mut b = tar::Builder::new(std::fs::File::create(&ova).unwrap());
        for f in ORDER.split(' ') {
            let data = std::fs::read(s.join(f)).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, f, data.as_slice()).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..7].copy_from_slice(b"../evil");
        h.set_size(4);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, &b"evil"[..]).unwrap();
        b.finish().unwrap();
    }
    let o = read_ova(&ova).unwrap();
    assert!(o.vm.warnings.iter().any(|w| w.contains("\"../evil\" escapes the archive, ignored")), "{:?}", o.vm.warnings);
    assert!(!o.archive.members.keys().any(|k| k.contains("evil")));
    // A disk missing from the archive.
    sh(&format!("tar -cf {} web01.ovf web01.mf web01-disk1.vmdk web01-file1.nvram", ova.display()), &s);
    let e = read_ova(&ova).err().unwrap().to_string();
    assert!(e.contains("missing file") && e.contains("web01-disk2.vmdk"), "{e}");
    // Two .ovf files.
    sh("cp web01.ovf other.ovf", &s);
    sh(&format!("tar -cf {} other.ovf {ORDER}", ova.display()), &s);
    let e = read_ova(&ova).err().unwrap().to_string();
    assert!(e.contains("2 .ovf files") && e.contains("other.ovf"), "{e}");
    // No .ovf at all; not an archive at all.
    sh(&format!("tar -cf {} web01-disk1.vmdk", ova.display()), &s);
    assert!(read_ova(&ova).err().unwrap().to_string().contains("no .ovf"));
    std::fs::write(&ova, b"hello").unwrap();
    assert!(read_ova(&ova).err().unwrap().to_string().contains("not an OVA"));
}

#[test]
fn decompression_bomb_is_bounded() {
    let t = tempfile::tempdir().unwrap();
    let s = stage(t.path(), "");
    // 512 MiB of zeros that the OVF does not declare, compressed to a few hundred KiB.
    sh("truncate -s 512M pad.bin", &s);
    let ova = t.path().join("bomb.ova");
    sh(&format!("tar -cf - {ORDER} pad.bin | gzip -1 -c > {}", ova.display()), &s);
    assert!(std::fs::metadata(&ova).unwrap().len() < 4 << 20);
    let start = std::time::Instant::now();
    let e = read_ova(&ova).err().expect("bomb accepted").to_string();
    assert!(e.contains("decompression bomb") && e.contains("bomb.ova") && !e.contains('\n'), "{e}");
    eprintln!("bomb refused after {:?}", start.elapsed());
}

#[test]
fn gzip_files_and_chunks() {
    let t = tempfile::tempdir().unwrap();
    let s = t.path().join("s");
    std::fs::create_dir(&s).unwrap();
    run(Command::new("qemu-img").args(["create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized"]).arg(s.join("w2k8-disk1.vmdk")).arg("40G"));
    run(Command::new("qemu-img").args(["create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized"]).arg(s.join("w2k8-disk2.vmdk")).arg("1G"));
    sh("gzip -k w2k8-disk1.vmdk && split -d -a 9 -b 40000 w2k8-disk2.vmdk w2k8-disk2.vmdk.", &s);
    let chunks: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(&s).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("w2k8-disk2.vmdk.")).collect();
        v.sort();
        v
    };
    assert!(chunks.len() >= 2, "{chunks:?}");
    let ovf = template("ovftool-legacy-ide.ovf")
        .replace("@SIZE1@", &std::fs::metadata(s.join("w2k8-disk1.vmdk.gz")).unwrap().len().to_string())
        .replace("@SIZE2@", &std::fs::metadata(s.join("w2k8-disk2.vmdk")).unwrap().len().to_string())
        .replace("@CHUNK@", "40000");
    std::fs::write(s.join("w2k8.ovf"), ovf).unwrap();
    let ova = t.path().join("w2k8.ova");
    sh(&format!("tar -cf {} w2k8.ovf w2k8-disk1.vmdk.gz {}", ova.display(), chunks.join(" ")), &s);
    let o = read_ova(&ova).unwrap();
    assert_eq!(o.vm.name, "w2k8");
    let DiskSource::Gzip { inner } = &o.vm.disks[0].source else { panic!("{:?}", o.vm.disks[0].source) };
    assert!(matches!(**inner, DiskSource::InPlace { .. }));
    assert_eq!(bytes_of(&o.vm.disks[0].source), std::fs::read(s.join("w2k8-disk1.vmdk")).unwrap());
    let DiskSource::Chunked { chunks: parts } = &o.vm.disks[1].source else { panic!("{:?}", o.vm.disks[1].source) };
    assert_eq!(parts.len(), chunks.len());
    assert_eq!(bytes_of(&o.vm.disks[1].source), std::fs::read(s.join("w2k8-disk2.vmdk")).unwrap());
}

#[test]
fn manifest_after_the_disks_in_a_compressed_ova_is_still_checked() {
    let t = tempfile::tempdir().unwrap();
    let s = stage(t.path(), "");
    let ova = t.path().join("late.ova.xz");
    let late = "web01.ovf web01-disk1.vmdk web01-disk2.vmdk web01-file1.nvram web01.mf";
    sh(&format!("tar -cf - {late} | xz -c -T1 > {}", ova.display()), &s);
    check_vm(&read_ova(&ova).unwrap().vm, &s);
    // Corrupt one digest in the manifest: detected although the disk came first.
    sh("d=$(printf x | sha256sum | cut -c1-64); sed -i \"s/\\(web01-disk1.vmdk)= \\).*/\\1$d/\" web01.mf; grep -q \"disk1.vmdk)= $d\" web01.mf", &s);
    sh(&format!("tar -cf - {late} | xz -c -T1 > {}", ova.display()), &s);
    let e = read_ova(&ova).err().expect("bad digest accepted").to_string();
    assert!(e.contains("corrupt OVA") && e.contains("web01-disk1.vmdk"), "{e}");
}
