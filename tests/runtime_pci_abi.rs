//! The identical-ABI proof, through what Ferry emits: a VMware guest (BIOS, three disks, three
//! NICs) is converted with `ferry convert -o qemu` and `-o ferry`. The pciscan micro-guest
//! prints one line per PCI function (IDs, class, revision, header type, pin, BAR sizes by
//! probing, capability chain, header CRC), once under QEMU TCG started by the emitted NAME.sh
//! (extra arguments `-kernel pciscan.elf ...` pass through its `"$@"`), once on Ferry's runtime
//! started by `ferry run` on the emitted NAME.ferry.json (its `boot` set to the same ELF). The
//! tables must be identical, except for the rows listed by `runtime_absent_rows`.
mod runtime_support;
use runtime_support::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

/// Flip to `true` once the runtime implements virtio-balloon: the converted spec's `balloon0`
/// then stays in the runtime's spec and its row is compared with QEMU's like every other.
const RUNTIME_HAS_BALLOON: bool = false;

/// A BIOS VMware guest with three SCSI disks and three vmxnet3 NICs (static MACs).
fn write_vmx(dir: &Path) -> std::path::PathBuf {
    let mut v = String::from(
        ".encoding = \"UTF-8\"\nconfig.version = \"8\"\nvirtualHW.version = \"19\"\ndisplayName = \"abi-guest\"\n\
         memsize = \"128\"\nnumvcpus = \"1\"\nguestOS = \"debian11-64\"\n\
         uuid.bios = \"42 25 6e c1 e0 66 93 64-3d d1 36 a0 b7 52 63 dd\"\n\
         scsi0.present = \"TRUE\"\nscsi0.virtualDev = \"pvscsi\"\n",
    );
    for i in 0..3 {
        v += &format!("scsi0:{i}.present = \"TRUE\"\nscsi0:{i}.deviceType = \"scsi-hardDisk\"\nscsi0:{i}.fileName = \"abi-guest_{i}.vmdk\"\n");
    }
    for i in 0..3 {
        v += &format!(
            "ethernet{i}.present = \"TRUE\"\nethernet{i}.virtualDev = \"vmxnet3\"\nethernet{i}.networkName = \"net{i}\"\n\
             ethernet{i}.addressType = \"static\"\nethernet{i}.address = \"00:50:56:00:ab:{i:02x}\"\n"
        );
    }
    let p = dir.join("abi-guest.vmx");
    std::fs::write(&p, v).expect("write vmx");
    p
}

fn ferry(args: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_ferry")).args(args).output().expect("run ferry");
    assert!(o.status.success(), "ferry {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// Rows of QEMU's table the runtime does not present, as (slot, "vendor:device"): the VGA
/// function (the runtime is headless: serial console only) and, until it is implemented, the
/// balloon.
fn runtime_absent_rows(profile: &Value) -> Vec<(u64, String)> {
    let class = |name: &str| -> (u64, String) {
        let c = profile["classes"].as_array().and_then(|a| a.iter().find(|c| c["class"] == name)).expect("profile class");
        (c["first"].as_u64().expect("first"), format!("{}:{}", c["vendor"].as_str().expect("vendor"), c["device"].as_str().expect("device")))
    };
    let mut rows = vec![class("video")];
    if !RUNTIME_HAS_BALLOON {
        rows.push(class("balloon"));
    }
    rows
}

fn scan(profile_name: &str) {
    if !qemu_available() || !Command::new("qemu-img").arg("--version").output().is_ok_and(|o| o.status.success()) {
        eprintln!("SKIP: QEMU is the oracle and is not installed");
        return;
    }
    let elf = guest("pciscan");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().canonicalize().expect("canonicalize");
    let vmx = write_vmx(&out);
    for mode in ["qemu", "ferry"] {
        ferry(&["convert", "-i", "vmx", vmx.to_str().expect("utf8"), "-o", mode, "-os", out.to_str().expect("utf8"), "--no-copy", "--profile", profile_name, "-of", "qcow2"]);
    }
    let spec_path = out.join("abi-guest.ferry.json");
    let mut spec: Value = serde_json::from_str(&std::fs::read_to_string(&spec_path).expect("spec")).expect("spec json");
    let devices = spec["devices"].as_array().expect("devices").clone();
    let count = |t: &str| devices.iter().filter(|d| d["type"] == t).count();
    assert_eq!((count("virtio-blk"), count("virtio-net"), count("virtio-balloon")), (3, 3, 1), "{spec}");
    for d in devices.iter().filter(|d| d["type"] == "virtio-blk") {
        let st = Command::new("qemu-img").args(["create", "-q", "-f", "qcow2"]).arg(d["file"].as_str().expect("file")).arg("64M").status().expect("qemu-img");
        assert!(st.success());
    }

    // QEMU: the emitted script, the micro-guest passed through "$@".
    let q = Command::new("sh")
        .arg(out.join("abi-guest.sh"))
        .args(["-display", "none", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel"])
        .arg(&elf)
        .env("FERRY_QEMU_ACCEL", "-accel tcg")
        .stdin(Stdio::null())
        .output()
        .expect("run the emitted script");
    let qemu_table = text(&q.stdout);
    assert_eq!(q.status.code(), Some(0x10 * 2 + 1), "QEMU run failed: {qemu_table}\n{}", String::from_utf8_lossy(&q.stderr));
    assert!(qemu_table.contains("pci scan end"), "{qemu_table}");

    let profile: Value = {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("formats/machines").join(format!("{profile_name}.json"));
        serde_json::from_str(&std::fs::read_to_string(p).expect("profile")).expect("profile json")
    };
    let mut expected = qemu_table.clone();
    for (slot, ids) in runtime_absent_rows(&profile) {
        let prefix = format!("00:{slot:02x}.0 {ids} ");
        let line = qemu_table.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("QEMU shows no {prefix}: {qemu_table}"));
        expected = expected.replacen(&format!("{line}\n"), "", 1);
    }
    for d in &devices {
        let line = format!("00:{:02x}.0 1af4:", d["addr"]["slot"].as_u64().expect("slot"));
        assert!(qemu_table.contains(&line), "{}: no {line} in QEMU's table", d["id"]);
    }

    if !kvm_available() {
        return;
    }
    // Ferry's runtime: the emitted spec, booting the same micro-guest.
    spec["boot"] = serde_json::json!({"kernel": elf, "cmdline": ""});
    if !RUNTIME_HAS_BALLOON {
        spec["devices"] = Value::Array(devices.into_iter().filter(|d| d["type"] != "virtio-balloon").collect());
    }
    let run_spec = out.join("run.ferry.json");
    std::fs::write(&run_spec, spec.to_string()).expect("write spec");
    let console = out.join("console.log");
    let r = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("run")
        .arg(&run_spec)
        .args(["--no-reboot", "--timeout", "60", "--console"])
        .arg(&console)
        .output()
        .expect("ferry run");
    let ours = text(&std::fs::read(&console).unwrap_or_default());
    assert_eq!(r.status.code(), Some(0x10), "ferry run: {}\n{ours}", String::from_utf8_lossy(&r.stderr));
    eprintln!("{ours}");
    assert_eq!(ours, expected, "PCI tables differ between `ferry run` and the emitted QEMU script");
}

#[test]
fn q35_pci_table_matches_emitted_qemu_script() {
    scan("q35-v1");
}

#[test]
fn pc_pci_table_matches_emitted_qemu_script() {
    scan("pc-v1");
}
