//! A converted UEFI guest boots through OVMF from the outputs Ferry writes, all three sharing
//! one variable store.
//!
//! The guest: the UEFI micro-guest (`testdata/microguests/efi-marker.c`, an x86-64 EFI
//! application built by `build-efi.sh` with gcc + `ld -m i386pep`) as `\EFI\BOOT\BOOTX64.EFI`
//! on the ESP (mkfs.vfat + mtools) of a GPT disk (sfdisk), described by a libvirt XML with a
//! pflash loader. `ferry convert -i libvirtxml -o local` writes the qcow2, the domain XML, the
//! QEMU script and the runtime spec.
//!
//! Oracles: `virt-xml-validate` on the domain XML, whose `<loader>` and `<nvram template>` are
//! the OVMF files the script starts by default and whose `<nvram>` is the script's per-VM
//! store, `NAME.vars.fd` beside the outputs; OVMF (Debian's `ovmf`, non-SMM) under QEMU TCG
//! started by the emitted script *unmodified* (extra arguments only: no display, a debug
//! console on port 0x402) loads the application, which prints its ConOut marker naming the
//! firmware vendor on the serial console and its debugcon marker, and powers off; the store
//! then exists at the XML's `<nvram>` path and holds OVMF's boot options (it differs from the
//! template). `ferry validate --engine qemu` boots the spec with that same store (no second
//! store appears), and `ferry validate --engine ferry` does too where KVM is
//! hardware-assisted (under kvm_pvm OVMF stops at its first x87 instruction: skipped with one
//! line). Wall time here: 14 s (the script's TCG boot 6 s, validate's about as long).
mod convert_support;
mod runtime_support;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
const CONOUT: &str = "ferry-efi: BOOTX64.EFI via ConOut, firmware EDK II";
const DEBUGCON: &str = "ferry-efi: BOOTX64.EFI via debugcon";

fn run(cmd: &mut Command) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// Builds the EFI application and a 16 MiB GPT disk whose ESP holds it as the fallback loader.
fn esp_disk(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    run(Command::new("sh").arg(root.join("testdata/microguests/build-efi.sh")).arg("efi-marker").arg(dir));
    let (disk, esp) = (dir.join("efi-guest.img"), dir.join("esp.img"));
    let f = std::fs::File::create(&disk).expect("disk");
    f.set_len(16 << 20).expect("disk size");
    let mut sf = Command::new("sfdisk").arg("-q").arg(&disk).stdin(Stdio::piped()).spawn().expect("sfdisk");
    std::io::Write::write_all(sf.stdin.as_mut().expect("stdin"), b"label: gpt\nstart=2048, size=28672, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n").expect("sfdisk input");
    assert!(sf.wait().expect("sfdisk").success(), "sfdisk");
    run(Command::new("mkfs.vfat").args(["-C", "-n", "ESP"]).arg(&esp).arg("14336"));
    let img = esp.to_str().expect("utf-8");
    run(Command::new("mmd").env("MTOOLS_SKIP_CHECK", "1").args(["-i", img, "::/EFI", "::/EFI/BOOT"]));
    run(Command::new("mcopy").env("MTOOLS_SKIP_CHECK", "1").args(["-i", img]).arg(dir.join("efi-marker.efi")).arg("::/EFI/BOOT/BOOTX64.EFI"));
    let mut d = std::fs::read(&disk).expect("disk");
    let e = std::fs::read(&esp).expect("esp");
    d[2048 * 512..2048 * 512 + e.len()].copy_from_slice(&e);
    std::fs::write(&disk, d).expect("disk");
    disk
}

/// The source: a libvirt domain with a pflash loader (UEFI) and the raw disk.
fn source_xml(dir: &Path, disk: &Path) -> PathBuf {
    let xml = format!(
        "<domain type='kvm'>\n  <name>efi-app</name>\n  <memory unit='MiB'>256</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64' machine='q35'>hvm</type>\n    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>\n  </os>\n  <devices>\n    <disk type='file' device='disk'>\n      <driver name='qemu' type='raw'/>\n      <source file='{}'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n  </devices>\n</domain>\n",
        disk.display()
    );
    let p = dir.join("efi-app.xml");
    std::fs::write(&p, xml).expect("source xml");
    p
}

/// The text between `open` and `close` in `s`.
fn between<'a>(s: &'a str, open: &str, close: &str) -> &'a str {
    let i = s.find(open).unwrap_or_else(|| panic!("{open:?} not in:\n{s}")) + open.len();
    let j = s[i..].find(close).unwrap_or_else(|| panic!("{close:?} not after {open:?} in:\n{s}"));
    &s[i..i + j]
}

/// The script's OVMF files: (code default, VARS template default, store file name).
fn script_ovmf(sh: &str) -> (String, String, String) {
    let code = between(sh, "ovmf_code=\"${OVMF_CODE:-", "}\"").to_string();
    let vars = between(sh, "cp \"${OVMF_VARS:-", "}\"").to_string();
    let store = between(sh, "ovmf_vars=\"$(dirname \"$0\")\"/'", "'\n").to_string();
    (code, vars, store)
}

/// Runs the emitted script under TCG with no display and a debug console; returns (serial,
/// debugcon). The application powers the machine off: QEMU exits by itself.
fn boot_script(script: &Path, debugcon: &Path) -> (String, String) {
    let start = Instant::now();
    // timeout(1) ends QEMU if OVMF or the application hangs.
    let o = Command::new("timeout")
        .arg("240")
        .arg(script)
        .env("FERRY_QEMU_ACCEL", "-accel tcg")
        .args(["-display", "none", "-chardev"])
        .arg(format!("file,id=fwlog,path={}", debugcon.display()))
        .args(["-device", "isa-debugcon,iobase=0x402,chardev=fwlog"])
        .stdin(Stdio::null())
        .output()
        .expect("run the QEMU script");
    let serial = String::from_utf8_lossy(&o.stdout).replace('\r', "");
    eprintln!("QEMU script (TCG): {:.1} s, {}", start.elapsed().as_secs_f64(), o.status);
    assert!(o.status.success(), "{}: {}\n{serial}\n{}", script.display(), o.status, String::from_utf8_lossy(&o.stderr));
    (serial, String::from_utf8_lossy(&std::fs::read(debugcon).unwrap_or_default()).into_owned())
}

#[test]
fn converted_uefi_guest_boots_its_efi_application_from_the_emitted_script() {
    for tool in ["gcc", "ld", "sfdisk", "mkfs.vfat", "mcopy"] {
        if !convert_support::have(tool) {
            eprintln!("SKIP: {tool} not installed");
            return;
        }
    }
    if !Path::new(CODE).exists() || !Path::new(VARS).exists() {
        eprintln!("SKIP: {CODE} not installed (ovmf)");
        return;
    }
    if !runtime_support::qemu_available() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().canonicalize().expect("tempdir");
    let disk = esp_disk(&dir);
    let src = source_xml(&dir, &disk);
    let out = dir.join("out");
    std::fs::create_dir(&out).expect("out");
    convert_support::ferry_ok(&["convert", "-i", "libvirtxml", src.to_str().expect("utf-8"), "-o", "local", "-os", out.to_str().expect("utf-8")]);

    // One variable store for all three descriptions.
    let xml_path = out.join("efi-app.xml");
    let xml = std::fs::read_to_string(&xml_path).expect("domain XML");
    match convert_support::validate_xml(&xml_path) {
        Some(r) => r.unwrap_or_else(|e| panic!("virt-xml-validate: {e}")),
        None => eprintln!("SKIP: virt-xml-validate not installed: schema check skipped"),
    }
    let script = out.join("efi-app.sh");
    let (code, vars, store_name) = script_ovmf(&std::fs::read_to_string(&script).expect("script"));
    assert_eq!((code.as_str(), vars.as_str(), store_name.as_str()), (CODE, VARS, "efi-app.vars.fd"));
    let store = out.join(&store_name);
    assert_eq!(between(&xml, "<loader readonly='yes' type='pflash'>", "</loader>"), code, "{xml}");
    assert_eq!(between(&xml, &format!("<nvram template='{vars}'>"), "</nvram>"), store.to_str().expect("utf-8"), "{xml}");
    assert!(!xml.contains("firmware='efi'") && !xml.contains("<smm"), "{xml}");
    // The runtime's store is NAME.vars.fd beside the spec: the spec is in the same directory
    // and has the same name.
    let spec_path = out.join("efi-app.ferry.json");
    let spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&spec_path).expect("spec")).expect("spec JSON");
    assert_eq!((spec["firmware"].as_str(), spec["name"].as_str()), (Some("uefi"), Some("efi-app")), "{spec}");

    // OVMF under QEMU TCG, started by the emitted script as written.
    let (serial, debugcon) = boot_script(&script, &dir.join("debugcon.log"));
    assert!(serial.contains(CONOUT), "no ConOut marker on the serial console:\n{serial}");
    assert!(debugcon.contains(DEBUGCON), "no debugcon marker:\n{debugcon}");
    let written = std::fs::read(&store).expect("the script created the store at the XML's <nvram> path");
    let template = std::fs::read(VARS).expect("template");
    assert_eq!(written.len(), template.len());
    assert!(written != template, "OVMF wrote nothing to the store (its boot options)");

    // `ferry validate` boots the spec with the same store: no second one appears.
    let stores = || std::fs::read_dir(&out).expect("out").filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".vars.fd"))).count();
    let hw = Path::new("/dev/kvm").exists() && !Path::new("/sys/module/kvm_pvm").exists();
    for engine in ["qemu", "ferry"] {
        if engine == "ferry" && !hw {
            eprintln!("SKIP: OVMF on the runtime needs hardware KVM (kvm_pvm cannot emulate OVMF's x87 init in guest ring 0)");
            continue;
        }
        let (log, fwlog) = (dir.join(format!("{engine}.log")), dir.join(format!("{engine}-fw.log")));
        let o = convert_support::ferry(&[
            "validate", "--engine", engine, "--boot", "firmware", "--expect", "marker", "--marker", CONOUT, "--timeout", "240",
            "--console-log", log.to_str().expect("utf-8"), "--firmware-log", fwlog.to_str().expect("utf-8"), spec_path.to_str().expect("utf-8"),
        ]);
        let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
        assert!(o.status.success(), "{engine}: {}\n{text}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(stores(), 1, "{engine}: a second variable store");
        assert_eq!(std::fs::read(&store).expect("store").len(), template.len());
    }
}
