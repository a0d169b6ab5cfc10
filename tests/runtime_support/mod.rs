//! Shared helpers for the runtime tests: micro-guest builds, KVM/QEMU detection, QEMU runs.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The micro-guests this test process has built (each once: a rebuild replaces the file
/// under a test that is running it).
static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Builds `testdata/microguests/NAME.c` into a PVH ELF (gcc + ld + objcopy), once per process.
pub fn guest(name: &str) -> PathBuf {
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("microguests");
    if built.iter().any(|b| b == name) {
        return out.join(format!("{name}.elf"));
    }
    let st = Command::new("sh")
        .arg(root.join("testdata/microguests/build.sh"))
        .arg(name)
        .arg(&out)
        .status()
        .expect("run build.sh");
    assert!(st.success(), "building micro-guest {name} failed");
    built.push(name.to_string());
    out.join(format!("{name}.elf"))
}

/// Whether /dev/kvm can be opened (else the test prints why it skips).
pub fn kvm_available() -> bool {
    match std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        Ok(_) => true,
        Err(e) => {
            eprintln!("SKIP: /dev/kvm unavailable: {e}");
            false
        }
    }
}

/// Whether qemu-system-x86_64 is installed.
pub fn qemu_available() -> bool {
    let ok = Command::new("qemu-system-x86_64").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP: qemu-system-x86_64 not installed");
    }
    ok
}

/// Output of a QEMU run of a micro-guest.
pub struct QemuRun {
    pub serial: String,
    pub exit_code: Option<i32>,
    pub elapsed: Duration,
}

/// Runs `qemu-system-x86_64 ARGS -kernel KERNEL` with serial on stdout and the debug-exit port.
pub fn qemu(args: &[String], kernel: &Path, accel: &str) -> QemuRun {
    let start = Instant::now();
    let out = Command::new("qemu-system-x86_64")
        .args(["-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot", "-accel", accel])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=4"])
        .args(args)
        .arg("-kernel")
        .arg(kernel)
        .output()
        .expect("run qemu");
    QemuRun {
        serial: String::from_utf8_lossy(&out.stdout).replace('\r', ""),
        exit_code: out.status.code(),
        elapsed: start.elapsed(),
    }
}

/// Serial text with CR removed.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace('\r', "")
}

/// A MachineSpec JSON value with the four virtio device kinds at the given slots.
pub fn spec_json(kernel: &Path, disk: &Path, profile: &str, slots: [u8; 4]) -> serde_json::Value {
    serde_json::json!({
        "spec_version": 1,
        "name": "micro",
        "smbios_uuid": "8e1f4f0b-52d4-4c2b-9a7e-2d6a4f5b9c01",
        "profile": profile,
        "memory_mib": 128,
        "vcpus": 1,
        "firmware": "bios",
        "boot": {"kernel": kernel, "cmdline": ""},
        "devices": [
            {"id": "disk0", "addr": {"bus": 0, "slot": slots[0], "function": 0}, "type": "virtio-blk",
             "file": disk, "format": "raw", "serial": "FERRY-DISK-0", "logical_block_size": 512, "physical_block_size": 4096},
            {"id": "net0", "addr": {"bus": 0, "slot": slots[1], "function": 0}, "type": "virtio-net",
             "mac": "52:54:00:12:34:56", "backend": {"kind": "user"}},
            {"id": "console0", "addr": {"bus": 0, "slot": slots[2], "function": 0}, "type": "virtio-console"},
            {"id": "rng0", "addr": {"bus": 0, "slot": slots[3], "function": 0}, "type": "virtio-rng"},
        ]
    })
}

/// The QEMU command line equivalent to a MachineSpec (until the layout crate's QEMU script
/// writer is merged, this is the test's own rendering of the same rules).
pub fn qemu_args(spec: &ferry_formats::layout::MachineSpec) -> Vec<String> {
    use ferry_formats::layout::DeviceKind;
    let profile = ferry_formats::layout::Profile::builtin(&spec.profile).expect("profile");
    let (machine, bus) = (profile.qemu_machine.as_str(), profile.root_bus.as_str());
    let mut a: Vec<String> = vec!["-machine".into(), machine.into(), "-m".into(), spec.memory_mib.to_string(), "-smp".into(), spec.vcpus.to_string()];
    if let Some(u) = &spec.smbios_uuid {
        a.extend(["-smbios".into(), format!("type=1,uuid={u}")]);
    }
    // The VGA adapter the emitted script places (the runtime presents it too) when its slot is free.
    if let Ok(video) = profile.class("video") {
        if !spec.devices.iter().any(|d| d.addr.bus == 0 && d.addr.slot == video.first) {
            a.extend(["-device".into(), format!("{},id=video0,bus={bus},addr=0x{:x}.0", video.qemu_device, video.first)]);
        }
    }
    for d in &spec.devices {
        let addr = format!("bus={bus},addr=0x{:x}.{}", d.addr.slot, d.addr.function);
        let drv = |modern: &str| d.model.qemu_device(modern).expect("virtio driver name");
        match &d.kind {
            DeviceKind::VirtioBlk { file, format, serial, readonly, logical_block_size, physical_block_size, .. } => {
                a.push("-drive".into());
                a.push(format!("if=none,id=drv-{},file={},format={format},readonly={}", d.id, file.display(), if *readonly { "on" } else { "off" }));
                a.push("-device".into());
                a.push(format!("{},drive=drv-{},id={},serial={serial},logical_block_size={logical_block_size},physical_block_size={physical_block_size},{addr}", drv("virtio-blk-pci-non-transitional"), d.id, d.id));
            }
            DeviceKind::VirtioNet { mac, .. } => {
                a.extend(["-netdev".into(), format!("user,id=nd-{}", d.id)]);
                a.extend(["-device".into(), format!("{},netdev=nd-{},id={},mac={mac},{addr}", drv("virtio-net-pci-non-transitional"), d.id, d.id)]);
            }
            DeviceKind::VirtioConsole => a.extend(["-device".into(), format!("{},id={},{addr}", drv("virtio-serial-pci-non-transitional"), d.id)]),
            DeviceKind::VirtioRng => a.extend(["-device".into(), format!("{},id={},{addr}", drv("virtio-rng-pci-non-transitional"), d.id)]),
            DeviceKind::VirtioBalloon => a.extend(["-device".into(), format!("{},id={},{addr}", drv("virtio-balloon-pci-non-transitional"), d.id)]),
            DeviceKind::VirtioScsi { disks } => {
                a.extend(["-device".into(), format!("{},id={},{addr}", drv("virtio-scsi-pci-non-transitional"), d.id)]);
                for s in disks {
                    a.push("-drive".into());
                    a.push(format!("if=none,id=drv-{},file={},format={},readonly={}", s.id, s.file.display(), s.format, if s.readonly { "on" } else { "off" }));
                    a.push("-device".into());
                    a.push(format!("scsi-hd,bus={}.0,channel=0,scsi-id={},lun=0,drive=drv-{},id={},serial={}", d.id, s.target, s.id, s.id, s.serial));
                }
            }
        }
    }
    a
}

/// Creates a sparse raw disk of `size` bytes.
pub fn sparse_disk(path: &Path, size: u64) {
    let f = std::fs::File::create(path).expect("create disk");
    f.set_len(size).expect("size disk");
}

/// CRC-32 (IEEE), as the micro-guests compute it.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for b in data {
        c ^= u32::from(*b);
        for _ in 0..8 {
            c = (c >> 1) ^ (0xedb8_8320 & (0u32.wrapping_sub(c & 1)));
        }
    }
    !c
}

/// Deterministic filler bytes.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A sparse 8 GiB raw disk with patterned sectors 0, 1 and 0x800007 (past 4 GiB).
pub fn test_disk(path: &Path) {
    use std::os::unix::fs::FileExt;
    sparse_disk(path, 8 << 30);
    let f = std::fs::OpenOptions::new().write(true).open(path).expect("open disk");
    f.write_all_at(&pattern(1, 1024), 0).expect("write");
    f.write_all_at(&pattern(2, 512), 0x80_0007 * 512).expect("write");
}

/// Writes `dir/spec.json`: micro-guest `guest_name` with the four device kinds of
/// [`spec_json`] on q35-v1 and a [`test_disk`] at `dir/disk.raw`.
pub fn write_spec(dir: &Path, guest_name: &str) -> PathBuf {
    let elf = guest(guest_name);
    let disk = dir.join("disk.raw");
    test_disk(&disk);
    let spec = dir.join("spec.json");
    std::fs::write(&spec, spec_json(&elf, &disk, "q35-v1", [4, 3, 5, 6]).to_string()).expect("write spec");
    spec
}

/// Runs a spec on Ferry's runtime with a timeout and returns the outcome.
pub fn run_spec(spec: &ferry_formats::layout::MachineSpec) -> ferry_runtime::Outcome {
    let mut cfg = ferry_runtime::VmConfig::from_spec(spec).expect("config");
    cfg.no_reboot = true;
    ferry_runtime::run_machine(&cfg, &ferry_runtime::Controller::new(false), Some(Duration::from_secs(60))).expect("boot")
}

/// The tiny Linux 6.1 kernel (`testdata/microguests/tiny-kernel.sh`) if it is cached.
pub fn tiny_kernel() -> Option<PathBuf> {
    cached_kernel("tiny-kernel")
}

/// The ACPI-enabled tiny kernel (`testdata/microguests/tiny-kernel-acpi.sh`), built into the
/// cache first when linux-source-6.1 is installed (a few minutes, once per script hash; one
/// kernel build at a time, under the tiny kernels' lock).
pub fn acpi_tiny_kernel() -> Option<PathBuf> {
    if let Some(k) = cached_kernel("tiny-kernel-acpi") {
        return Some(k);
    }
    let have_source = std::fs::read_dir("/usr/src").is_ok_and(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("linux-source-6.1")));
    if !have_source {
        return None;
    }
    let cache = std::env::var("FERRY_CACHE").unwrap_or_else(|_| "/var/tmp/ferry-cache".into());
    std::fs::create_dir_all(&cache).ok()?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/microguests/tiny-kernel-acpi.sh");
    let st = Command::new("flock").arg(Path::new(&cache).join(".tiny-kernel.lock")).arg("sh").arg(script).stdout(std::process::Stdio::null()).status().ok()?;
    if !st.success() {
        eprintln!("tiny-kernel-acpi.sh failed: {st}");
    }
    cached_kernel("tiny-kernel-acpi")
}

/// `$FERRY_CACHE/NAME-<hash of testdata/microguests/NAME.sh>/vmlinux`, if built.
fn cached_kernel(name: &str) -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("testdata/microguests/{name}.sh"));
    let cache = std::env::var("FERRY_CACHE").unwrap_or_else(|_| "/var/tmp/ferry-cache".into());
    let hash = Command::new("sha256sum").arg(&script).output().ok()?;
    let h = String::from_utf8_lossy(&hash.stdout).chars().take(16).collect::<String>();
    let k = Path::new(&cache).join(format!("{name}-{h}/vmlinux"));
    k.exists().then_some(k)
}

/// A 64 MiB ext4 image (in `dir`) holding busybox as /sbin/init; None without busybox or mkfs.ext4.
pub fn busybox_root(dir: &Path) -> Option<PathBuf> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"].into_iter().map(PathBuf::from).find(|p| p.exists())?;
    let tree = dir.join("tree");
    for d in ["sbin", "bin", "dev", "proc", "sys", "etc"] {
        std::fs::create_dir_all(tree.join(d)).ok()?;
    }
    std::fs::copy(&busybox, tree.join("bin/busybox")).ok()?;
    std::os::unix::fs::symlink("/bin/busybox", tree.join("sbin/init")).ok()?;
    std::os::unix::fs::symlink("/bin/busybox", tree.join("bin/sh")).ok()?;
    let img = dir.join("root.ext4");
    let st = Command::new("mkfs.ext4").args(["-q", "-F", "-d"]).arg(&tree).arg(&img).arg("64M").status().ok()?;
    st.success().then_some(img)
}
