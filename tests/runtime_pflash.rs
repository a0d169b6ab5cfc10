//! OVMF's flash on Ferry's runtime, as QEMU presents it (`-drive if=pflash`, pflash_cfi01):
//! the flash micro-guest (`testdata/microguests/pflash.c`, a 128 KiB image started at the
//! reset vector as pflash unit 0) drives the CFI commands on both units: query, ID, status,
//! byte/word/dword program, block erase, write-to-buffer (committed, aborted, crossing its
//! block, count 0), lock/unlock, an unknown command; unit 1 is the VM's NVRAM file.
//!
//! Oracle: QEMU (TCG) booting the same spec through `ferry validate --engine qemu` (which
//! passes pflash drives as the emitted script does): the guest's output is identical on both
//! engines, q35 and pc, and the NVRAM file (`NAME.vars.fd` beside the spec, created from the
//! template) holds the same bytes afterwards. Also: an OVMF build that needs SMM is refused
//! in one line. Wall time: about 10 s here (each micro-guest boot about 1 s).
mod runtime_support;
use runtime_support::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const DONE: &str = "pflash: done";
/// The variable store template: 68 KiB (17 sectors, not a power of two), a byte pattern.
const VARS_LEN: usize = 0x11000;

fn ferry(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferry")).args(args).output().expect("ferry")
}

fn run(cmd: &mut Command) {
    let st = cmd.status().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(st.success(), "{cmd:?}: {st}");
}

/// Builds the flash image and its VARS template.
fn flash_image(dir: &Path) -> (PathBuf, Vec<u8>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    run(Command::new("sh").arg(root.join("testdata/microguests/build-flash.sh")).arg("pflash").arg(dir));
    let vars: Vec<u8> = (0..VARS_LEN).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(dir.join("pflash_VARS.fd"), &vars).expect("vars template");
    (dir.join("pflash_CODE.fd"), vars)
}

/// A GPT disk whose ESP holds `/EFI/BOOT/BOOTX64.EFI` (the firmware boot's pre-flight check).
fn esp_disk(dir: &Path) -> PathBuf {
    let (disk, esp, efi) = (dir.join("esp-disk.img"), dir.join("esp.img"), dir.join("BOOTX64.EFI"));
    std::fs::write(&efi, b"not run: the flash micro-guest never leaves the firmware").expect("efi");
    let f = std::fs::File::create(&disk).expect("disk");
    f.set_len(4 << 20).expect("disk size");
    let mut sf = Command::new("sfdisk").arg("-q").arg(&disk).stdin(std::process::Stdio::piped()).spawn().expect("sfdisk");
    std::io::Write::write_all(sf.stdin.as_mut().expect("stdin"), b"label: gpt\nstart=2048, size=4096, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n").expect("sfdisk input");
    assert!(sf.wait().expect("sfdisk").success(), "sfdisk");
    run(Command::new("mkfs.vfat").args(["-C", "-n", "ESP"]).arg(&esp).arg("2048").stdout(std::process::Stdio::null()));
    let img = format!("{}", esp.display());
    run(Command::new("mmd").env("MTOOLS_SKIP_CHECK", "1").args(["-i", &img, "::/EFI", "::/EFI/BOOT"]));
    run(Command::new("mcopy").env("MTOOLS_SKIP_CHECK", "1").args(["-i", &img]).arg(&efi).arg("::/EFI/BOOT/BOOTX64.EFI"));
    let mut d = std::fs::read(&disk).expect("disk");
    let e = std::fs::read(&esp).expect("esp");
    d[2048 * 512..2048 * 512 + e.len()].copy_from_slice(&e);
    std::fs::write(&disk, d).expect("disk");
    disk
}

fn spec(dir: &Path, disk: &Path, profile: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("dir");
    let spec = serde_json::json!({
        "spec_version": 1, "name": "flash", "profile": profile, "memory_mib": 128, "vcpus": 1, "firmware": "uefi",
        "devices": [{"id": "disk0", "addr": {"bus": 0, "slot": 4, "function": 0}, "type": "virtio-blk",
            "file": disk, "format": "raw", "serial": "esp0", "bootindex": 1}]
    });
    let p = dir.join("flash.ferry.json");
    std::fs::write(&p, spec.to_string()).expect("spec");
    p
}

/// Boots `spec` on `engine` through the flash image; returns the console (CR stripped).
fn boot(engine: &str, spec: &Path, code: &Path) -> String {
    let log = spec.with_file_name("console.log");
    let o = ferry(&[
        "validate", "--engine", engine, "--boot", "firmware", "--firmware", code.to_str().expect("utf-8"),
        "--expect", "marker", "--marker", DONE, "--timeout", "120",
        "--console-log", log.to_str().expect("utf-8"), spec.to_str().expect("utf-8"),
    ]);
    let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).replace('\r', "");
    assert!(o.status.success(), "{engine} {}: {}\n{text}", spec.display(), String::from_utf8_lossy(&o.stderr));
    text
}

/// The micro-guest's CFI session reads the same on both engines and leaves the same NVRAM.
#[test]
fn flash_commands_and_nvram_match_qemu() {
    if !kvm_available() || !qemu_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, template) = flash_image(dir.path());
    let code_bytes = std::fs::read(&code).expect("code");
    let disk = esp_disk(dir.path());
    for profile in ["q35-v2", "pc-v2"] {
        let mut out = Vec::new();
        for engine in ["qemu", "ferry"] {
            let s = spec(&dir.path().join(format!("{profile}-{engine}")), &disk, profile);
            let text = boot(engine, &s, &code);
            let nvram = std::fs::read(s.with_file_name("flash.vars.fd")).expect("NVRAM file beside the spec");
            out.push((engine, text, nvram));
        }
        let (q, f) = (&out[0], &out[1]);
        assert!(q.1.contains("unit1 programmed a50a3412efbeadde") && q.1.contains(DONE), "QEMU output:\n{}", q.1);
        assert_eq!(q.1, f.1, "{profile}: the runtime's output differs from QEMU's");
        assert_eq!(q.2.len(), VARS_LEN);
        assert_ne!(q.2, template, "{profile}: the guest wrote nothing to the NVRAM");
        assert!(q.2 == f.2, "{profile}: NVRAM differs: QEMU vs runtime at {:?}", q.2.iter().zip(&f.2).position(|(a, b)| a != b));
        // Unit 0 is read-only: the image is untouched.
        assert_eq!(std::fs::read(&code).expect("code"), code_bytes);
    }
    // `ferry run` (sandboxed: the NVRAM file is opened before, written from the vCPU thread)
    // ends with the guest's exit code and leaves QEMU's bytes too.
    let s = spec(&dir.path().join("run"), &disk, "q35-v2");
    let console = s.with_file_name("console.log");
    let o = ferry(&["run", "--boot", "firmware", "--firmware", code.to_str().expect("utf-8"), "--console", console.to_str().expect("utf-8"), "--timeout", "120", s.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0x10), "{}", String::from_utf8_lossy(&o.stderr));
    let qemu_nvram = std::fs::read(dir.path().join("q35-v2-qemu/flash.vars.fd")).expect("QEMU's NVRAM");
    assert!(std::fs::read(s.with_file_name("flash.vars.fd")).expect("NVRAM") == qemu_nvram, "ferry run: NVRAM differs from QEMU's");
    let qemu_text = std::fs::read_to_string(dir.path().join("q35-v2-qemu/console.log")).expect("console").replace('\r', "");
    assert_eq!(std::fs::read_to_string(&console).expect("console").replace('\r', ""), qemu_text);
    // A second boot reuses the store (not copied again from the template): the guest reads
    // what the first boot wrote.
    let s = dir.path().join("q35-v2-ferry/flash.ferry.json");
    let text = boot("ferry", &s, &code);
    assert!(text.contains("unit1 base fffcf000 len 00011000 array crc"), "{text}");
    assert!(!text.contains("area 030a11181f262d34"), "second boot saw the template again:\n{text}");
}

/// OVMF builds that need SMM (Debian's secure-boot builds, per QEMU's firmware descriptors)
/// are refused in one line naming SMM and the non-SMM build; no NVRAM file is created.
#[test]
fn smm_ovmf_builds_are_refused() {
    let ms = "/usr/share/OVMF/OVMF_CODE_4M.ms.fd";
    if !Path::new(ms).exists() || !Path::new("/usr/share/qemu/firmware/40-edk2-x86_64-secure-enrolled.json").exists() {
        eprintln!("SKIP: Debian's ovmf with its QEMU firmware descriptors is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = esp_disk(dir.path());
    let s = spec(dir.path(), &disk, "q35-v2");
    let o = ferry(&["run", "--boot", "firmware", "--firmware", ms, s.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("requires SMM") && err.contains("/usr/share/OVMF/OVMF_CODE_4M.fd"), "{err}");
    assert!(!dir.path().join("flash.vars.fd").exists());
}

/// Debian's OVMF (non-SMM, 4 MiB layout) boots to its boot manager: under QEMU (TCG here,
/// through `validate --engine qemu`, the emitted script's pflash drives) and, where KVM is
/// hardware-assisted, on the runtime. The boot manager tries the disk's ESP (its loader is
/// not a PE image) and says so on the serial console. Under kvm_pvm the runtime stops
/// at OVMF's first x87 instruction (KVM cannot emulate it in guest ring 0 there), so that
/// half skips with one line. Wall time here: the QEMU half, 7 s idle.
#[test]
fn ovmf_reaches_its_boot_manager() {
    let (code, vars) = ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd");
    if !Path::new(code).exists() || !Path::new(vars).exists() {
        eprintln!("SKIP: {code} not installed (ovmf)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = esp_disk(dir.path());
    let milestone = "BdsDxe: failed to load Boot0001 \"UEFI Misc Device\" from PciRoot(0x0)/Pci(0x4,0x0)";
    let hw = Path::new("/dev/kvm").exists() && !Path::new("/sys/module/kvm_pvm").exists();
    for engine in ["qemu", "ferry"] {
        if engine == "qemu" && !qemu_available() {
            continue;
        }
        if engine == "ferry" && !hw {
            eprintln!("SKIP: OVMF on the runtime needs hardware KVM (kvm_pvm cannot emulate OVMF's x87 init in guest ring 0)");
            continue;
        }
        let s = spec(&dir.path().join(engine), &disk, "q35-v2");
        let log = s.with_file_name("console.log");
        let o = ferry(&[
            "validate", "--engine", engine, "--boot", "firmware", "--expect", "marker", "--marker", milestone,
            "--timeout", "300", "--console-log", log.to_str().expect("utf-8"), s.to_str().expect("utf-8"),
        ]);
        let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
        assert!(o.status.success(), "{engine}: {}\n{text}", String::from_utf8_lossy(&o.stderr));
        let nv = std::fs::read(s.with_file_name("flash.vars.fd")).expect("NVRAM beside the spec");
        assert_eq!(nv.len(), std::fs::metadata(vars).expect("vars").len() as usize);
    }
}
