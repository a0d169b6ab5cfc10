//! Issue 5's proof, end to end through the binary: `ferry convert` of the real Debian 12
//! test guests (`testdata/guests/`, cached in `$FERRY_CACHE`) → the converted root passes
//! `e2fsck -fn`; the converted qcow2, booted under QEMU TCG with the kernel + initrd taken from
//! ITS OWN `/boot` (debugfs), the `root=` of ITS `grub.cfg` and the device layout of the
//! generated QEMU script (run as written, with `-kernel/-initrd/-append` added), reaches a
//! login prompt, mounts its root from virtio-blk, and the NIC the converted network
//! configuration names exists under that name (the kernel's rename message for the profile's
//! slot); the source files are byte-identical afterwards. (That the unconverted guest does not
//! boot on virtio-blk is shown by `converters/tests/guest_boot_*.rs` on the same images.)
//! Guests: the VMware one from its VMX and from its OVA, the Xen PV one from its xl config,
//! the dracut variant from its VMX.

mod convert_linux_support;

use convert_linux_support::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Builds (or finds in the cache) the guest NAME with its script; None when this machine
/// cannot (tools missing, not root).
fn guest(name: &str) -> Option<PathBuf> {
    let missing: Vec<&str> = ["qemu-system-x86_64", "qemu-img", "debugfs", "e2fsck", "debootstrap"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "skipped: {} not installed (tests/run.sh installs them)",
            missing.join(", ")
        );
        return None;
    }
    if let Some(d) = cached_guest(name) {
        return Some(d);
    }
    if run(Command::new("id").arg("-u")).trim() != "0" {
        eprintln!("skipped: building the Debian test guests needs root");
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("testdata/guests/{name}.sh"));
    let out = run(Command::new("bash").arg(script));
    Some(PathBuf::from(out.trim().lines().last().unwrap_or_default()))
}

/// The converted disk as raw, for debugfs and e2fsck; the partition at 1 MiB cut out.
fn unpack(qcow2: &Path, work: &Path) -> (PathBuf, PathBuf) {
    let raw = work.join("converted.raw");
    run(Command::new("qemu-img")
        .args(["convert", "-f", "qcow2", "-O", "raw"])
        .arg(qcow2)
        .arg(&raw));
    let part = work.join("root.part");
    run(Command::new("dd")
        .arg(format!("if={}", raw.display()))
        .arg(format!("of={}", part.display()))
        .args(["bs=1M", "skip=1", "conv=sparse", "status=none"]));
    (raw, part)
}

fn debugfs_cat(part: &Path, path: &str) -> String {
    run(Command::new("debugfs").arg("-R").arg(format!("cat {path}")).arg(part))
}

fn debugfs_dump(part: &Path, path: &str, to: &Path) {
    run(Command::new("debugfs")
        .arg("-R")
        .arg(format!("dump {path} {}", to.display()))
        .arg(part));
    assert!(
        to.metadata().map(|m| m.len() > 0).unwrap_or(false),
        "debugfs could not dump {path}"
    );
}

/// The first `linux` line of the converted grub.cfg: (kernel path, its arguments).
fn grub_linux(cfg: &str) -> (String, String) {
    let line = cfg
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("linux"))
        .expect("a linux line in grub.cfg");
    let mut w = line.split_whitespace().skip(1);
    let kernel = w.next().expect("kernel path").to_string();
    (kernel, w.collect::<Vec<_>>().join(" "))
}

/// Runs the generated QEMU script under TCG with the guest's kernel, until `stop` shows in
/// the serial log or the timeout; returns the log.
fn boot_script(script: &Path, kernel: &Path, initrd: &Path, append: &str, log: &Path, timeout: Duration) -> String {
    let out = std::fs::File::create(log).unwrap();
    let mut child = Command::new("sh")
        .arg(script)
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        .arg(append)
        .args(["-display", "none", "-no-reboot"])
        .env("FERRY_QEMU_ACCEL", "-accel tcg")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the QEMU script");
    let start = Instant::now();
    let mut text = String::new();
    while start.elapsed() < timeout {
        std::thread::sleep(Duration::from_millis(500));
        text = String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
        let stops = [
            " login:",
            "Kernel panic",
            "Dropping to a shell",
            "Entering emergency mode",
            "Could not boot",
        ];
        if stops.iter().any(|s| text.contains(s)) {
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
    text
}

fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Converts `input` (`-i mode`) and proves the result boots; `sources` are hashed.
fn convert_and_boot(mode: &str, input: &Path, name: &str, sources: &[PathBuf]) {
    let t = tempfile::Builder::new()
        .prefix("ferry-boot-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let before: Vec<String> = sources.iter().map(|s| sha256(s)).collect();
    let started = Instant::now();
    let stdout = ferry_ok(&[
        "convert",
        "-i",
        mode,
        input.to_str().unwrap(),
        "-o",
        "local",
        "-os",
        out.to_str().unwrap(),
    ]);
    eprintln!("ferry convert -i {mode}: {:.1?}\n{stdout}", started.elapsed());
    assert!(stdout.contains("rebuilt /boot/initrd.img-"), "{stdout}");
    let after: Vec<String> = sources.iter().map(|s| sha256(s)).collect();
    assert_eq!(before, after, "a source file changed");

    let disk = out.join(format!("{name}-sda"));
    assert_qcow2_clean(&disk);
    let (_raw, part) = unpack(&disk, t.path());
    let fsck = Command::new("e2fsck").arg("-fn").arg(&part).output().unwrap();
    assert!(
        fsck.status.success(),
        "e2fsck -fn on the converted root:\n{}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );

    let cfg = debugfs_cat(&part, "/boot/grub/grub.cfg");
    let (kpath, args) = grub_linux(&cfg);
    assert!(
        !args.contains("/dev/sd") && !args.contains("/dev/xvd"),
        "grub.cfg still names the old disk: {args}"
    );
    assert!(
        !args.contains("hvc0") && !args.contains("xvc0"),
        "grub.cfg still uses the Xen console: {args}"
    );
    let kernel = t.path().join("vmlinuz");
    let initrd = t.path().join("initrd.img");
    debugfs_dump(&part, &kpath, &kernel);
    let kver = kpath.trim_start_matches("/boot/vmlinuz-");
    debugfs_dump(&part, &format!("/boot/initrd.img-{kver}"), &initrd);
    let backup = t.path().join("initrd.pre-ferry");
    debugfs_dump(&part, &format!("/boot/initrd.img-{kver}.pre-ferry"), &backup);
    assert_ne!(sha256(&initrd), sha256(&backup));
    let interfaces = debugfs_cat(&part, "/etc/network/interfaces");
    let iface = interfaces
        .lines()
        .filter_map(|l| l.trim().strip_prefix("iface "))
        .filter_map(|l| l.split_whitespace().next())
        .find(|n| *n != "lo")
        .expect("an interface in /etc/network/interfaces")
        .to_string();
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(format!("{name}.ferry.json"))).unwrap()).unwrap();
    let slot = spec["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "net0")
        .and_then(|d| d["addr"]["slot"].as_u64())
        .expect("net0 in the spec");
    assert_eq!(iface, format!("enp0s{slot}"), "{interfaces}");

    // `quiet` hides the kernel messages the test looks for; the rest is grub's command line.
    let append: String = args
        .split_whitespace()
        .filter(|a| *a != "quiet")
        .collect::<Vec<_>>()
        .join(" ")
        + " console=ttyS0";
    let log = boot_script(
        &out.join(format!("{name}.sh")),
        &kernel,
        &initrd,
        &append,
        &t.path().join("serial.log"),
        Duration::from_secs(400),
    );
    assert!(
        log.contains(&format!("{name} login:")),
        "no login prompt:\n{}",
        tail(&log, 40)
    );
    assert!(
        log.contains("EXT4-fs (vda1): mounted filesystem"),
        "root not mounted from vda1:\n{}",
        tail(&log, 40)
    );
    assert!(
        log.contains(&format!("{iface}: renamed from eth0")),
        "the NIC is not named {iface}:\n{}",
        tail(&log, 60)
    );
}

#[test]
fn vmware_vmx_guest_converts_and_boots_on_virtio() {
    let Some(g) = guest("debian-vmware") else { return };
    let vmx = g.join("debian-vmware.vmx");
    convert_and_boot(
        "vmx",
        &vmx,
        "debian-vmware",
        &[vmx.clone(), g.join("debian-vmware.vmdk")],
    );
}

#[test]
fn vmware_ova_guest_converts_and_boots_on_virtio() {
    let Some(g) = guest("debian-vmware") else { return };
    let ova = g.join("debian-vmware.ova");
    convert_and_boot("ova", &ova, "debian-vmware", std::slice::from_ref(&ova));
}

#[test]
fn xen_pv_guest_converts_and_boots_on_virtio() {
    let Some(g) = guest("debian-xenpv") else { return };
    let cfg = g.join("debian-xenpv.cfg");
    convert_and_boot("xen", &cfg, "debian-xenpv", &[cfg.clone(), g.join("disk.raw")]);
}

#[test]
fn dracut_vmx_guest_converts_and_boots_on_virtio() {
    let Some(g) = guest("debian-dracut") else { return };
    let vmx = g.join("debian-dracut.vmx");
    convert_and_boot(
        "vmx",
        &vmx,
        "debian-dracut",
        &[vmx.clone(), g.join("debian-dracut.vmdk")],
    );
}
