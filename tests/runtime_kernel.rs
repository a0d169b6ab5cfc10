//! Real-kernel boots on Ferry's runtime, watched by `ferry validate`.
//!
//! * `tiny_kernel_reaches_init_on_runtime`: the tiny Linux 6.1 from
//!   `testdata/microguests/tiny-kernel.sh` (cached in $FERRY_CACHE) boots through PVH with a
//!   virtio-blk ext4 root and must reach kernel → [vda] → EXT4-fs (vda) → Run /sbin/init on the
//!   runtime (works on kvm_pvm: ~20 s of emulated CPL0) and under QEMU TCG. Runs when the kernel
//!   is cached; `cargo test --test runtime_kernel -- --ignored` builds it first (~3-5 min).
//! * `tiny_bzimage_reaches_init_on_runtime`: the same kernel's bzImage through the 64-bit boot
//!   protocol, same root, cmdline and milestones, on the runtime and under QEMU TCG.
//! * `distro_kernel_boots_on_hardware_kvm`: the host's own distro kernel + initramfs; runs only
//!   with hardware KVM (no kvm_pvm, CPU has vmx/svm).
//! * `debian_guest_bzimage_boots_on_hardware_kvm`: the Debian 12 kernel (bzImage) and initrd
//!   from a cached test guest's /boot (`testdata/guests/*.sh` in $FERRY_CACHE) reach the
//!   initramfs's /init on the runtime and under QEMU; hardware KVM only.
mod runtime_support;
use runtime_support::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const PVM_CMDLINE: &str = "console=ttyS0 root=/dev/vda rw noxsave clearcpuid=308,151,288,534,298,145,158,306,114,141";

/// The tiny kernel's cache directory (holding `vmlinux` and `bzImage`).
fn cached_tiny_kernel(build: bool) -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/microguests/tiny-kernel.sh");
    if !build {
        let cache = std::env::var("FERRY_CACHE").unwrap_or_else(|_| "/var/tmp/ferry-cache".into());
        let hash = Command::new("sha256sum").arg(&script).output().ok()?;
        let h = String::from_utf8_lossy(&hash.stdout).chars().take(16).collect::<String>();
        let k = Path::new(&cache).join(format!("tiny-kernel-{h}"));
        return (k.join("vmlinux").exists() && k.join("bzImage").exists()).then_some(k);
    }
    let out = Command::new("sh").arg(&script).output().ok()?;
    if !out.status.success() {
        eprintln!("SKIP: tiny-kernel.sh failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).parent().map(Path::to_path_buf)
}

fn spec(dir: &Path, kernel: &Path, initrd: Option<&Path>, disk: &Path, cmdline: &str) -> PathBuf {
    let mut v = spec_json(kernel, disk, "q35-v1", [4, 3, 5, 6]);
    v["memory_mib"] = 256.into();
    v["boot"] = serde_json::json!({"kernel": kernel, "initrd": initrd, "cmdline": cmdline});
    v["devices"][0]["physical_block_size"] = 512.into();
    let p = dir.join("spec.json");
    std::fs::write(&p, v.to_string()).expect("spec");
    p
}

fn validate(spec: &Path, engine: &str, expect: &str, timeout: u64) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["validate", "--json", "--engine", engine, "--expect", expect, "--timeout", &timeout.to_string()])
        .arg(spec)
        .output()
        .expect("ferry validate");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{engine}: {report}\n{}", String::from_utf8_lossy(&out.stderr));
    (out.status.success(), report)
}

fn tiny_kernel(build: bool, image: &str) {
    let Some(kernel) = cached_tiny_kernel(build).map(|d| d.join(image)) else {
        eprintln!("SKIP: tiny kernel not cached; run `cargo test --test runtime_kernel -- --ignored` to build it");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(root) = busybox_root(dir.path()) else {
        eprintln!("SKIP: busybox-static or mkfs.ext4 missing");
        return;
    };
    let spec = spec(dir.path(), &kernel, None, &root, PVM_CMDLINE);
    let expect = "kernel,virtio,root,init";
    if qemu_available() {
        let (ok, report) = validate(&spec, "qemu", expect, 120);
        assert!(ok, "QEMU TCG: {report}");
    }
    if kvm_available() {
        // kvm_pvm emulates guest kernel mode at ~1 M instructions/s, slower under load: a wide margin.
        let (ok, report) = validate(&spec, "ferry", expect, 420);
        assert!(ok, "Ferry runtime: {report}");
    }
}

#[test]
fn tiny_kernel_reaches_init_on_runtime() {
    tiny_kernel(false, "vmlinux");
}

#[test]
fn tiny_bzimage_reaches_init_on_runtime() {
    tiny_kernel(false, "bzImage");
}

#[test]
#[ignore = "builds Linux 6.1 tinyconfig first (~3+ min on 2 cores), then boots it"]
fn tiny_kernel_build_and_boot() {
    tiny_kernel(true, "vmlinux");
    tiny_kernel(false, "bzImage");
}

/// Whether full distro kernels can boot here (hardware KVM, not kvm_pvm); prints why not.
fn hardware_kvm() -> bool {
    let pvm = Path::new("/sys/module/kvm_pvm").exists();
    let vmx = std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains(" vmx") || c.contains(" svm"));
    if pvm || !vmx || !kvm_available() {
        eprintln!("SKIP: full distro-kernel boots need hardware KVM (kvm_pvm loaded: {pvm}, vmx/svm: {vmx}); guest kernel mode is emulated here");
        return false;
    }
    true
}

/// The newest built Debian test guest in $FERRY_CACHE (`testdata/guests/*.sh`): its root tree.
fn cached_debian_root() -> Option<PathBuf> {
    let cache = std::env::var("FERRY_CACHE").unwrap_or_else(|_| "/var/tmp/ferry-cache".into());
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|d| d.file_name().is_some_and(|n| n.to_string_lossy().starts_with("guest-debian-")))
        .filter(|d| d.join("done").is_file() && d.join("root/boot").is_dir())
        .collect();
    found.sort();
    found.pop().map(|d| d.join("root"))
}

/// The Debian 12 kernel (a bzImage: `/boot/vmlinuz-*`) and initrd of a cached guest image
/// boot through the runtime's 64-bit boot-protocol path to the initramfs's /init. (The guest's
/// own initrd has no virtio modules before conversion, so the root is not expected.)
#[test]
fn debian_guest_bzimage_boots_on_hardware_kvm() {
    if !hardware_kvm() {
        return;
    }
    let Some(root) = cached_debian_root() else {
        eprintln!("SKIP: no Debian test guest in $FERRY_CACHE (testdata/guests/*.sh builds them)");
        return;
    };
    let version = std::fs::read_to_string(root.join("../kernel-version")).expect("kernel-version").trim().to_string();
    let kernel = root.join(format!("boot/vmlinuz-{version}"));
    let initrd = root.join(format!("boot/initrd.img-{version}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(disk) = busybox_root(dir.path()) else {
        eprintln!("SKIP: busybox-static or mkfs.ext4 missing");
        return;
    };
    let spec = spec(dir.path(), &kernel, Some(&initrd), &disk, "console=ttyS0 root=/dev/vda rw panic=-1");
    let (ok, report) = validate(&spec, "ferry", "kernel,init", 120);
    assert!(ok, "Ferry runtime: {report}");
    let (ok, report) = validate(&spec, "qemu", "kernel,init", 120);
    assert!(ok, "QEMU: {report}");
}

#[test]
fn distro_kernel_boots_on_hardware_kvm() {
    if !hardware_kvm() {
        return;
    }
    let release = String::from_utf8_lossy(&Command::new("uname").arg("-r").output().expect("uname").stdout).trim().to_string();
    let kernel = std::env::var_os("FERRY_DISTRO_KERNEL").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(format!("/boot/vmlinuz-{release}")));
    let initrd = std::env::var_os("FERRY_DISTRO_INITRD").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(format!("/boot/initrd.img-{release}")));
    if !kernel.exists() || !initrd.exists() {
        eprintln!("SKIP: no distro kernel/initrd at {} / {}", kernel.display(), initrd.display());
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(root) = busybox_root(dir.path()) else {
        eprintln!("SKIP: busybox-static or mkfs.ext4 missing");
        return;
    };
    let spec = spec(dir.path(), &kernel, Some(&initrd), &root, "console=ttyS0 root=/dev/vda rw");
    let (ok, report) = validate(&spec, "ferry", "kernel,virtio,root,init", 120);
    assert!(ok, "Ferry runtime: {report}");
    let (ok, report) = validate(&spec, "qemu", "kernel,virtio,root,init", 120);
    assert!(ok, "QEMU: {report}");
}

/// A 2-vCPU Linux brings up its AP on the runtime (it used to hang: on kvm_pvm the AP's first
/// PV IPI hypercall never returns, so the runtime hides KVM's hypercall-based PV features
/// there). Stops as soon as the kernel prints that both CPUs are up.
#[test]
fn tiny_kernel_brings_up_two_vcpus_on_runtime() {
    let Some(kernel) = cached_tiny_kernel(false).map(|d| d.join("bzImage")) else {
        eprintln!("SKIP: tiny kernel not cached; run `cargo test --test runtime_kernel -- --ignored` to build it");
        return;
    };
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(root) = busybox_root(dir.path()) else {
        eprintln!("SKIP: busybox-static or mkfs.ext4 missing");
        return;
    };
    let spec = spec(dir.path(), &kernel, None, &root, PVM_CMDLINE);
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&spec).expect("spec")).expect("json");
    v["vcpus"] = 2.into();
    v["devices"] = serde_json::json!([v["devices"][0].clone()]);
    std::fs::write(&spec, v.to_string()).expect("spec");
    let console = dir.path().join("console.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "--no-reboot", "--timeout", "400", "--console"])
        .arg(&console)
        .arg(&spec)
        .env("FERRY_VCPU_DUMP", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ferry run");
    let want = "smp: Brought up 1 node, 2 CPUs";
    let start = std::time::Instant::now();
    let up = loop {
        if std::fs::read_to_string(&console).is_ok_and(|c| c.contains(want)) {
            break true;
        }
        if child.try_wait().ok().flatten().is_some() {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let secs = start.elapsed().as_secs_f64();
    let _ = child.kill();
    let out = child.wait_with_output().expect("wait");
    let text = std::fs::read_to_string(&console).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(5).collect();
    assert!(up, "no {want:?}; vCPUs: {} console tail: {tail:?}", String::from_utf8_lossy(&out.stderr));
    eprintln!("both vCPUs up after {secs:.1} s");
}
