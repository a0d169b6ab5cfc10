//! `ferry convert` of a guest whose root is ext4 on an LVM logical volume
//! (`testdata/guests/debian-lvm.sh`: VMware-style Debian 12, /boot on sda1 named `/dev/sda1`
//! in fstab, / on `/dev/mapper/vg0-root`, lvm2 in its initramfs, VMware storage drivers only).
//! Oracles: QEMU TCG boots (the unconverted guest's initramfs never finds its root on
//! virtio-blk; the converted one activates the VG, mounts the root LV from virtio-blk and
//! reaches a login prompt with the NIC named as its network configuration says), `e2fsck -fn`
//! on the converted root LV (cut out at the extents lvm2 allocated, recorded by the build
//! script from `lvs`) and /boot, debugfs for the edited files, sha256 of the sources.

mod convert_linux_support;

use convert_linux_support::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NAME: &str = "debian-lvm";
const BOOT_START: u64 = 1 << 20;
const BOOT_LEN: u64 = 256 << 20;

fn guest() -> Option<PathBuf> {
    let missing: Vec<&str> = ["qemu-system-x86_64", "qemu-img", "debugfs", "e2fsck", "debootstrap", "lvm"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() {
        eprintln!("skipped: {} not installed (tests/run.sh installs them)", missing.join(", "));
        return None;
    }
    if let Some(d) = cached_guest(NAME) {
        return Some(d);
    }
    if run(Command::new("id").arg("-u")).trim() != "0" {
        eprintln!("skipped: building the Debian test guests needs root");
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("testdata/guests/{NAME}.sh"));
    let out = run(Command::new("bash").arg(script));
    Some(PathBuf::from(out.trim().lines().last().unwrap_or_default()))
}

/// `KEY=value` from the build's lvm.env.
fn lvm_env(g: &Path, key: &str) -> u64 {
    let text = std::fs::read_to_string(g.join("lvm.env")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{key} in lvm.env:\n{text}"))
}

/// `len` bytes of `raw` at `start` into `to` (sparse).
fn cut(raw: &Path, start: u64, len: u64, to: &Path) {
    assert_eq!(start % (1 << 20), 0);
    run(Command::new("dd")
        .arg(format!("if={}", raw.display()))
        .arg(format!("of={}", to.display()))
        .arg("bs=1M")
        .arg(format!("skip={}", start >> 20))
        .arg(format!("count={}", len.div_ceil(1 << 20)))
        .args(["conv=sparse", "status=none"]));
}

fn e2fsck_clean(part: &Path, what: &str) {
    let fsck = Command::new("e2fsck").arg("-fn").arg(part).output().unwrap();
    assert!(
        fsck.status.success(),
        "e2fsck -fn on {what}:\n{}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
}

fn debugfs(part: &Path, cmd: &str) -> String {
    run(Command::new("debugfs").arg("-R").arg(cmd).arg(part))
}

const STOPS: [&str; 5] = [" login:", "Kernel panic", "Dropping to a shell", "Entering emergency mode", "Could not boot"];

/// Runs `cmd` (QEMU, serial on stdout into `log`) until a stop message or the timeout.
fn watch(cmd: &mut Command, log: &Path, timeout: Duration) -> String {
    let out = std::fs::File::create(log).unwrap();
    let mut child = cmd.stdin(Stdio::null()).stdout(out).stderr(Stdio::null()).spawn().expect("start QEMU");
    let start = Instant::now();
    while start.elapsed() < timeout {
        std::thread::sleep(Duration::from_millis(500));
        let text = String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
        if STOPS.iter().any(|s| text.contains(s)) || matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    eprintln!("boot took {:.1?}", start.elapsed());
    String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned()
}

fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn unconverted_lvm_guest_does_not_reach_userspace_on_virtio_blk() {
    let Some(g) = guest() else { return };
    let kver = std::fs::read_to_string(g.join("kernel-version")).unwrap();
    let kver = kver.trim();
    let t = tempfile::tempdir().unwrap();
    let log = watch(
        Command::new("qemu-system-x86_64")
            .args(["-machine", "q35", "-accel", "tcg", "-nodefaults", "-m", "1024", "-display", "none"])
            .args(["-no-reboot", "-serial", "stdio", "-kernel"])
            .arg(g.join(format!("root/boot/vmlinuz-{kver}")))
            .arg("-initrd")
            .arg(g.join(format!("root/boot/initrd.img-{kver}")))
            .args(["-append", "root=/dev/mapper/vg0-root ro console=ttyS0", "-drive"])
            .arg(format!("file={},format=raw,if=none,id=d0,snapshot=on", g.join("disk.raw").display()))
            .args(["-device", "virtio-blk-pci-non-transitional,drive=d0"]),
        &t.path().join("serial.log"),
        Duration::from_secs(400),
    );
    assert!(
        log.contains("ALERT!  /dev/mapper/vg0-root does not exist"),
        "expected the initramfs to give up on the root LV:\n{}",
        tail(&log, 30)
    );
    assert!(!log.contains(" login:"), "a login prompt appeared");
}

#[test]
fn lvm_guest_converts_and_boots_on_virtio() {
    let Some(g) = guest() else { return };
    let vmx = g.join(format!("{NAME}.vmx"));
    let vmdk = g.join(format!("{NAME}.vmdk"));
    let before = [sha256(&vmx), sha256(&vmdk)];
    let t = tempfile::Builder::new().prefix("ferry-lvm-").tempdir_in("/var/tmp").unwrap();
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let started = Instant::now();
    let stdout = ferry_ok(&["convert", "-i", "vmx", vmx.to_str().unwrap(), "-o", "local", "-os", out.to_str().unwrap()]);
    eprintln!("ferry convert: {:.1?}\n{stdout}", started.elapsed());
    assert!(stdout.contains("Converting debian 12 on /dev/vg0/root (/ /boot)"), "{stdout}");
    assert!(stdout.contains("rebuilt /boot/initrd.img-"), "{stdout}");
    assert_eq!(before, [sha256(&vmx), sha256(&vmdk)], "a source file changed");

    let disk = out.join(format!("{NAME}-sda"));
    assert_qcow2_clean(&disk);
    let raw = t.path().join("converted.raw");
    run(Command::new("qemu-img").args(["convert", "-f", "qcow2", "-O", "raw"]).arg(&disk).arg(&raw));
    let (boot, root) = (t.path().join("boot.part"), t.path().join("root.lv"));
    cut(&raw, BOOT_START, BOOT_LEN, &boot);
    cut(&raw, lvm_env(&g, "ROOT_LV_OFFSET"), lvm_env(&g, "ROOT_LV_BYTES"), &root);
    std::fs::remove_file(&raw).unwrap();
    e2fsck_clean(&root, "the converted root LV");
    e2fsck_clean(&boot, "the converted /boot");

    // Renaming left the LV name alone and replaced sda1.
    let fstab = debugfs(&root, "cat /etc/fstab");
    assert!(fstab.contains("/dev/mapper/vg0-root /"), "{fstab}");
    assert!(!fstab.contains("/dev/sda"), "{fstab}");
    let modules = debugfs(&root, "cat /etc/initramfs-tools/modules");
    assert!(modules.contains("virtio_blk"), "{modules}");
    let cfg = debugfs(&boot, "cat /grub/grub.cfg");
    let line = cfg.lines().map(str::trim).find(|l| l.starts_with("linux")).expect("a linux line");
    let mut words = line.split_whitespace().skip(1);
    let kpath = words.next().unwrap().to_string();
    let args: Vec<&str> = words.filter(|a| *a != "quiet").collect();
    assert!(args.contains(&"root=/dev/mapper/vg0-root"), "{line}");
    let kver = kpath.trim_start_matches("/vmlinuz-");
    let (kernel, initrd) = (t.path().join("vmlinuz"), t.path().join("initrd.img"));
    debugfs(&boot, &format!("dump {kpath} {}", kernel.display()));
    debugfs(&boot, &format!("dump /initrd.img-{kver} {}", initrd.display()));
    assert!(debugfs(&boot, "ls -l /").contains(&format!("initrd.img-{kver}.pre-ferry")));

    let interfaces = debugfs(&root, "cat /etc/network/interfaces");
    let iface = interfaces
        .lines()
        .filter_map(|l| l.trim().strip_prefix("iface "))
        .filter_map(|l| l.split_whitespace().next())
        .find(|n| *n != "lo")
        .expect("an interface")
        .to_string();
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(format!("{NAME}.ferry.json"))).unwrap()).unwrap();
    let slot = spec["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "net0")
        .and_then(|d| d["addr"]["slot"].as_u64())
        .expect("net0 in the spec");
    assert_eq!(iface, format!("enp0s{slot}"), "{interfaces}");

    let append = args.join(" ") + " console=ttyS0";
    let log = watch(
        Command::new("sh")
            .arg(out.join(format!("{NAME}.sh")))
            .arg("-kernel")
            .arg(&kernel)
            .arg("-initrd")
            .arg(&initrd)
            .arg("-append")
            .arg(&append)
            .args(["-display", "none", "-no-reboot"])
            .env("FERRY_QEMU_ACCEL", "-accel tcg"),
        &t.path().join("serial.log"),
        Duration::from_secs(500),
    );
    assert!(log.contains(&format!("{NAME} login:")), "no login prompt:\n{}", tail(&log, 40));
    assert!(log.contains("EXT4-fs (dm-0): mounted filesystem"), "root not mounted from the LV:\n{}", tail(&log, 40));
    assert!(log.contains("EXT4-fs (vda1): mounted filesystem"), "/boot not mounted from vda1:\n{}", tail(&log, 60));
    assert!(log.contains(&format!("{iface}: renamed from eth0")), "the NIC is not named {iface}:\n{}", tail(&log, 60));
}
