//! The cached Debian test guests (`testdata/guests/*.sh`) and their QEMU TCG boots: finding
//! or building a guest, running QEMU until the serial log shows a stop message (the emitted
//! script as written, through firmware and the guest's GRUB, or with `-kernel` added), and the
//! facts of a converted guest the boot is checked against (grub's `linux` line, the NIC name
//! the profile's net0 slot gives).

use super::{cached_guest, have, run};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Finds in the cache (or builds with its script) the guest NAME; None, with the reason
/// printed, when this machine cannot: the tools (and `extra_tools`) missing, or not root.
pub fn guest(name: &str, extra_tools: &[&str]) -> Option<PathBuf> {
    let missing: Vec<&str> = ["qemu-system-x86_64", "qemu-img", "debugfs", "e2fsck", "debootstrap"]
        .iter()
        .chain(extra_tools)
        .copied()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() {
        eprintln!("skipped: {} not installed (tests/run.sh installs them)", missing.join(", "));
        return None;
    }
    // As root the guest's script answers (at once when its build is cached under the hash of
    // the scripts as they are now), so a changed script is never served a stale build;
    // otherwise the newest build in the cache, if any.
    if run(Command::new("id").arg("-u")).trim() != "0" {
        let found = cached_guest(name);
        if found.is_none() {
            eprintln!("skipped: building the Debian test guests needs root");
        }
        return found;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("testdata/guests/{name}.sh"));
    let out = run(Command::new("bash").arg(script));
    Some(PathBuf::from(out.trim().lines().last().unwrap_or_default()))
}

/// Serial-log messages after which a boot goes no further.
/// ("UEFI Interactive Shell": OVMF found nothing to boot and started its shell.)
const STOPS: [&str; 6] = [" login:", "Kernel panic", "Dropping to a shell", "Entering emergency mode", "Could not boot", "UEFI Interactive Shell"];

/// Runs `cmd` (QEMU, serial on stdout into `log`) until a stop message, QEMU's exit or the
/// timeout; returns the log.
pub fn watch(cmd: &mut Command, log: &Path, timeout: Duration) -> String {
    let out = std::fs::File::create(log).unwrap();
    let mut child = cmd.stdin(Stdio::null()).stdout(out).stderr(Stdio::null()).spawn().expect("start QEMU");
    let start = Instant::now();
    while start.elapsed() < timeout {
        std::thread::sleep(Duration::from_millis(500));
        let text = String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
        if STOPS.iter().any(|s| text.contains(s)) {
            break;
        }
        if let Ok(Some(st)) = child.try_wait() {
            eprintln!("qemu exited: {st}");
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    eprintln!("boot took {:.1?}", start.elapsed());
    String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned()
}

/// Runs the generated QEMU script as written under TCG, with `-kernel/-initrd/-append` added,
/// through [`watch`].
pub fn boot_script(script: &Path, kernel: &Path, initrd: &Path, append: &str, log: &Path, timeout: Duration) -> String {
    watch(
        Command::new("sh")
            .arg(script)
            .arg("-kernel")
            .arg(kernel)
            .arg("-initrd")
            .arg(initrd)
            .arg("-append")
            .arg(append)
            .args(["-display", "none", "-no-reboot"])
            .env("FERRY_QEMU_ACCEL", "-accel tcg"),
        log,
        timeout,
    )
}

/// Runs the generated QEMU script under TCG exactly as written (extra arguments only: no
/// display, no reboot): SeaBIOS, then the guest's own GRUB from its MBR, then the converted
/// grub.cfg's first entry, through [`watch`]. For the guests whose disk has GRUB i386-pc
/// (`testdata/guests/debian.sh`'s install_grub_pc) and whose kernel line carries a serial
/// console (BOOT_CMDLINE there).
pub fn boot_firmware(script: &Path, log: &Path, timeout: Duration) -> String {
    watch(
        Command::new("sh").arg(script).args(["-display", "none", "-no-reboot"]).env("FERRY_QEMU_ACCEL", "-accel tcg"),
        log,
        timeout,
    )
}

/// The last `n` lines of a log.
pub fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The first `linux` line of a grub.cfg: (kernel path, its arguments).
pub fn grub_linux(cfg: &str) -> (String, String) {
    let line = cfg
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("linux"))
        .expect("a linux line in grub.cfg");
    let mut w = line.split_whitespace().skip(1);
    let kernel = w.next().expect("kernel path").to_string();
    (kernel, w.collect::<Vec<_>>().join(" "))
}

/// grub's kernel arguments for a serial boot: without `quiet` (it hides the kernel messages
/// the tests look for), with `console=ttyS0`.
/// `no_timer_check`: under TCG on a loaded host the Debian kernel's IO-APIC timer check can
/// miss its ticks and panic ("IO-APIC + timer doesn't work"), an emulation-speed artefact
/// unrelated to the conversion.
pub fn serial_append(args: &str) -> String {
    args.split_whitespace().filter(|a| *a != "quiet").collect::<Vec<_>>().join(" ") + " console=ttyS0 no_timer_check"
}

/// The NIC the converted `/etc/network/interfaces` configures, asserted to be the name the
/// kernel gives the profile's net0 slot (`enp0sSLOT`, from the output's `NAME.ferry.json`).
pub fn configured_nic(interfaces: &str, spec: &Path) -> String {
    let iface = interfaces
        .lines()
        .filter_map(|l| l.trim().strip_prefix("iface "))
        .filter_map(|l| l.split_whitespace().next())
        .find(|n| *n != "lo")
        .expect("an interface in /etc/network/interfaces")
        .to_string();
    let spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(spec).unwrap()).unwrap();
    let slot = spec["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "net0")
        .and_then(|d| d["addr"]["slot"].as_u64())
        .expect("net0 in the spec");
    assert_eq!(iface, format!("enp0s{slot}"), "{interfaces}");
    iface
}

/// `KEY=value` from an LVM guest build's lvm.env (where its root LV lies in disk.raw).
pub fn lvm_env(g: &Path, key: &str) -> u64 {
    let text = std::fs::read_to_string(g.join("lvm.env")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{key} in lvm.env:\n{text}"))
}

/// Boots guest `g`'s own kernel and initrd, unconverted, with its disk.raw (a snapshot) on a
/// modern virtio-blk device under QEMU TCG (q35, 1 GiB, serial on `log`), until a stop
/// message or `timeout`; returns the log.
pub fn boot_unconverted_on_virtio_blk(g: &Path, append: &str, log: &Path, timeout: Duration) -> String {
    let kver = std::fs::read_to_string(g.join("kernel-version")).unwrap();
    let kver = kver.trim();
    watch(
        Command::new("qemu-system-x86_64")
            .args(["-machine", "q35", "-accel", "tcg", "-nodefaults", "-m", "1024", "-display", "none"])
            .args(["-no-reboot", "-serial", "stdio", "-kernel"])
            .arg(g.join(format!("root/boot/vmlinuz-{kver}")))
            .arg("-initrd")
            .arg(g.join(format!("root/boot/initrd.img-{kver}")))
            .args(["-append", append, "-drive"])
            .arg(format!("file={},format=raw,if=none,id=d0,snapshot=on", g.join("disk.raw").display()))
            .args(["-device", "virtio-blk-pci-non-transitional,drive=d0"]),
        log,
        timeout,
    )
}
