//! A converted guest as Ferry emits it, for the tests that compare the emitted QEMU script
//! with `ferry run` on the emitted spec: `runtime_pci_abi`, `runtime_hotplug`.
#![allow(dead_code)]
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The outputs of `ferry convert -o qemu` and `-o ferry` for one guest.
pub struct Emitted {
    _dir: tempfile::TempDir,
    /// The output directory.
    pub out: PathBuf,
    /// NAME.sh.
    pub script: PathBuf,
    /// NAME.ferry.json, parsed.
    pub spec: Value,
}

/// A BIOS VMware guest with `disks` SCSI disks (15 per controller) and `nics` vmxnet3 NICs
/// (static MACs).
fn write_vmx(dir: &Path, disks: usize, nics: usize) -> PathBuf {
    let mut v = String::from(
        ".encoding = \"UTF-8\"\nconfig.version = \"8\"\nvirtualHW.version = \"19\"\ndisplayName = \"abi-guest\"\n\
         memsize = \"128\"\nnumvcpus = \"1\"\nguestOS = \"debian11-64\"\n\
         uuid.bios = \"42 25 6e c1 e0 66 93 64-3d d1 36 a0 b7 52 63 dd\"\n\
",
    );
    for i in 0..disks {
        let (c, u) = (i / 15, i % 15);
        let u = if u >= 7 { u + 1 } else { u };
        if u == 0 {
            v += &format!("scsi{c}.present = \"TRUE\"\nscsi{c}.virtualDev = \"pvscsi\"\n");
        }
        v += &format!("scsi{c}:{u}.present = \"TRUE\"\nscsi{c}:{u}.deviceType = \"scsi-hardDisk\"\nscsi{c}:{u}.fileName = \"abi-guest_{i}.vmdk\"\n");
    }
    for i in 0..nics {
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

/// Whether qemu-system-x86_64 and qemu-img (the oracle) are installed.
pub fn qemu_tools() -> bool {
    let ok = ["qemu-system-x86_64", "qemu-img"].iter().all(|t| Command::new(t).arg("--version").output().is_ok_and(|o| o.status.success()));
    if !ok {
        eprintln!("SKIP: QEMU is the oracle and is not installed");
    }
    ok
}

/// Converts the guest with `-o qemu` and `-o ferry` under `profile` (`--no-copy`; the output
/// disks are then made as 64 MiB qcow2 images by qemu-img).
pub fn emit(profile: &str) -> Emitted {
    emit_with(profile, &[])
}

/// [`emit`] with extra `ferry convert` arguments (`--virtio legacy`).
pub fn emit_with(profile: &str, extra: &[&str]) -> Emitted {
    emit_sized(profile, extra, 3, 3)
}

/// [`emit_with`] for a guest with `disks` disks and `nics` NICs.
pub fn emit_sized(profile: &str, extra: &[&str], disks: usize, nics: usize) -> Emitted {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().canonicalize().expect("canonicalize");
    let vmx = write_vmx(&out, disks, nics);
    for mode in ["qemu", "ferry"] {
        let mut args = vec!["convert", "-i", "vmx", vmx.to_str().expect("utf8"), "-o", mode, "-os", out.to_str().expect("utf8"), "--no-copy", "--profile", profile, "-of", "qcow2"];
        args.extend_from_slice(extra);
        ferry(&args);
    }
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(out.join("abi-guest.ferry.json")).expect("spec")).expect("spec json");
    let devices = spec["devices"].as_array().expect("devices");
    let count = |t: &str| devices.iter().filter(|d| d["type"] == t).count();
    // Disks on virtio-blk, or (--block-driver virtio-scsi) all on one virtio-scsi controller.
    let scsi: Vec<&Value> = devices.iter().filter(|d| d["type"] == "virtio-scsi").flat_map(|d| d["disks"].as_array().expect("disks")).collect();
    assert_eq!((count("virtio-blk") + scsi.len(), count("virtio-net"), count("virtio-balloon")), (disks, nics, 1), "{spec}");
    for d in devices.iter().filter(|d| d["type"] == "virtio-blk").chain(scsi) {
        let st = Command::new("qemu-img").args(["create", "-q", "-f", "qcow2"]).arg(d["file"].as_str().expect("file")).arg("64M").status().expect("qemu-img");
        assert!(st.success());
    }
    Emitted { script: out.join("abi-guest.sh"), _dir: dir, out, spec }
}

impl Emitted {
    /// `sh NAME.sh ARGS...` under TCG (the script passes ARGS to QEMU).
    pub fn script(&self, args: &[&str]) -> Command {
        let mut c = Command::new("sh");
        c.arg(&self.script).args(args).env("FERRY_QEMU_ACCEL", "-accel tcg");
        c
    }
    /// The emitted spec booting `kernel` (as QEMU's `-kernel`), written next to it.
    pub fn runtime_spec(&self, kernel: &Path) -> PathBuf {
        let mut spec = self.spec.clone();
        spec["boot"] = serde_json::json!({"kernel": kernel, "cmdline": ""});
        let p = self.out.join("run.ferry.json");
        std::fs::write(&p, spec.to_string()).expect("write spec");
        p
    }
}

/// `formats/machines/NAME.json`, parsed.
pub fn profile_json(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("formats/machines").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(p).expect("profile")).expect("profile json")
}
