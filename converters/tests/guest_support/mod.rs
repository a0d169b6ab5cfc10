//! Shared helpers of the guest tests: the cached Debian test guests (built by
//! `testdata/guests/*.sh`), kernel/initrd extraction with `debugfs`, initrd unpacking with
//! `cpio`, and a QEMU TCG boot watched through the serial log.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Byte offset of the guests' only partition.
pub const PART_OFFSET: u64 = 1 << 20;

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// A built test guest in the cache.
pub struct Guest {
    /// The cache directory.
    pub dir: PathBuf,
    /// Its kernel version.
    pub kver: String,
}

impl Guest {
    /// The guest's files as a host directory.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
    /// The raw disk (MBR, ext4 at 1 MiB).
    pub fn disk(&self) -> PathBuf {
        self.dir.join("disk.raw")
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds (or finds in `$FERRY_CACHE`) the guest `name`; `None` (with the reason printed) when
/// this machine cannot build guests (not root, or no debootstrap/qemu).
pub fn guest(name: &str) -> Option<Guest> {
    let missing: Vec<&str> = [
        "debootstrap",
        "qemu-system-x86_64",
        "qemu-img",
        "debugfs",
        "mkfs.ext4",
        "cpio",
        "sfdisk",
    ]
    .into_iter()
    .filter(|t| !which(t))
    .collect();
    if !missing.is_empty() {
        eprintln!(
            "skipped: {} not installed (tests/run.sh installs them)",
            missing.join(", ")
        );
        return None;
    }
    if String::from_utf8_lossy(&run(Command::new("id").arg("-u"))).trim() != "0" {
        eprintln!("skipped: building the Debian test guests needs root (chroot, mount)");
        return None;
    }
    let _lock = BUILD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let script = repo_root().join(format!("testdata/guests/{name}.sh"));
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::piped())
        .output()
        .expect("run guest script");
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .lines()
            .last()
            .unwrap_or_default(),
    );
    eprintln!(
        "guest {name}: {} ({:.1?})",
        dir.display(),
        started.elapsed()
    );
    let kver = std::fs::read_to_string(dir.join("kernel-version"))
        .expect("kernel-version")
        .trim()
        .to_string();
    Some(Guest { dir, kver })
}

/// Whether a program is on PATH (or in /usr/sbin, /sbin).
pub fn which(tool: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .any(|d| Path::new(d).join(tool).is_file());
    found
}

/// Runs a command, panicking with its stderr if it fails; returns stdout.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Copies a file out of the guest's ext4 partition with `debugfs -R 'dump ...'`.
pub fn debugfs_dump(disk: &Path, guest_path: &str, to: &Path) {
    let spec = format!("{}?offset={PART_OFFSET}", disk.display());
    run(Command::new("debugfs")
        .arg("-R")
        .arg(format!("dump {guest_path} {}", to.display()))
        .arg(&spec));
    assert!(
        to.metadata().map(|m| m.len() > 0).unwrap_or(false),
        "debugfs could not dump {guest_path}"
    );
}

/// The guest's kernel and initrd, taken from `/boot` of its disk image.
pub fn extract_boot(guest: &Guest, into: &Path) -> (PathBuf, PathBuf) {
    let kernel = into.join("vmlinuz");
    let initrd = into.join("initrd.img");
    debugfs_dump(
        &guest.disk(),
        &format!("/boot/vmlinuz-{}", guest.kver),
        &kernel,
    );
    debugfs_dump(
        &guest.disk(),
        &format!("/boot/initrd.img-{}", guest.kver),
        &initrd,
    );
    (kernel, initrd)
}

/// Milestones of a boot, in the serial log.
pub const LOGIN: &str = "login:";
/// What initramfs-tools and dracut print when they give up on the root device (the final
/// line of each, so that the whole message is in the log when the boot is stopped).
pub const ROOT_NOT_FOUND: [&str; 5] = [
    "Dropping to a shell",
    "Could not boot",
    "Entering emergency mode",
    "emergency shell",
    "Kernel panic",
];

/// The outcome of a boot.
pub struct Boot {
    /// The serial log.
    pub log: String,
    /// The milestone that ended the boot, if any.
    pub hit: Option<String>,
    /// Time until the milestone (or the timeout).
    pub elapsed: Duration,
}

/// Boots `kernel` + `initrd` under QEMU TCG (q35, 1 GiB) with `disk` on
/// virtio-blk-pci-non-transitional (writes to a throw-away snapshot) and a
/// virtio-net-pci-non-transitional NIC, until one of `stop_at` appears in the serial log
/// or `timeout` passes; QEMU is killed afterwards.
pub fn boot(
    kernel: &Path,
    initrd: &Path,
    disk: &Path,
    append: &str,
    stop_at: &[&str],
    timeout: Duration,
    work: &Path,
) -> Boot {
    let serial = work.join("serial.log");
    let _ = std::fs::remove_file(&serial);
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "q35",
            "-accel",
            "tcg",
            "-nodefaults",
            "-m",
            "1024",
            "-display",
            "none",
            "-no-reboot",
        ])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        .arg(append)
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=none,id=disk0,snapshot=on",
            disk.display()
        ))
        .args(["-device", "virtio-blk-pci-non-transitional,drive=disk0"])
        .args([
            "-netdev",
            "user,id=net0",
            "-device",
            "virtio-net-pci-non-transitional,netdev=net0,mac=52:54:00:12:34:56",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu-system-x86_64");
    let start = Instant::now();
    let mut hit = None;
    let mut log;
    while start.elapsed() < timeout {
        std::thread::sleep(Duration::from_millis(250));
        log = String::from_utf8_lossy(&std::fs::read(&serial).unwrap_or_default()).into_owned();
        if let Some(m) = stop_at.iter().find(|m| log.contains(*m)) {
            hit = Some(m.to_string());
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            eprintln!("qemu exited early: {status}");
            break;
        }
    }
    let elapsed = start.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    log = String::from_utf8_lossy(&std::fs::read(&serial).unwrap_or_default()).into_owned();
    eprintln!(
        "boot ended after {elapsed:.1?} on {hit:?}; log tail:\n{}",
        tail(&log, 15)
    );
    Boot { log, hit, elapsed }
}

/// The last `n` lines of a log.
pub fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Unpacks an initramfs image with the real tools (`zstd`/`gzip`/`xz` and `cpio`), each
/// segment from the offset where it starts (`segments`: offset and compression name, `None`
/// for a stored archive), in image order, into `into`.
pub fn unpack_with_tools(image: &Path, segments: &[(usize, Option<&str>)], into: &Path) {
    std::fs::create_dir_all(into).expect("mkdir");
    for (offset, comp) in segments {
        let decomp = match comp {
            None => "cat",
            Some("gzip") => "gzip -dc",
            Some("zstd") => "zstd -dcq",
            Some("xz") => "xz -dc",
            Some("lzma") => "xz -dc --format=lzma",
            Some(other) => panic!("no tool for {other}"),
        };
        let cmd = format!(
            "tail -c +{} '{}' | {{ {decomp} 2>/dev/null || true; }} | cpio -id --quiet --no-absolute-filenames",
            offset + 1,
            image.display()
        );
        run(Command::new("sh").arg("-c").arg(cmd).current_dir(into));
    }
}

/// [`boot`]s `kernel` + `initrd` on the guest's disk until a login prompt, the initramfs
/// giving up on the root device, or `timeout`.
fn boot_to_login_or_give_up(g: &Guest, kernel: &Path, initrd: &Path, append: &str, timeout: Duration, work: &Path) -> Boot {
    let mut stops = ROOT_NOT_FOUND.to_vec();
    stops.push(LOGIN);
    boot(kernel, initrd, &g.disk(), append, &stops, timeout, work)
}

/// Boots the guest's own kernel and initrd (from its disk) on virtio-blk and asserts that the
/// initramfs gives up on the root device without starting userspace.
pub fn assert_unconverted_does_not_boot(g: &Guest, append: &str, timeout: Duration) -> Boot {
    let work = tempfile::tempdir().expect("tempdir");
    let (kernel, initrd) = extract_boot(g, work.path());
    let b = boot_to_login_or_give_up(g, &kernel, &initrd, append, timeout, work.path());
    assert!(
        b.hit.is_some() && b.hit.as_deref() != Some(LOGIN),
        "expected the initramfs to give up on the root device:\n{}",
        tail(&b.log, 30)
    );
    assert!(
        !b.log.contains("EXT4-fs (vda1): mounted"),
        "the root was mounted"
    );
    assert!(!b.log.contains(" login:"), "a login prompt appeared");
    b
}

/// Injects the virtio modules (read from the guest's own tree) into the guest's initrd, boots
/// it on virtio-blk and asserts that the root is mounted from vda1 and a login prompt appears.
pub fn assert_injected_boots(
    g: &Guest,
    append: &str,
    flavor: ferry_converters::initramfs::Flavor,
    timeout: Duration,
) -> Boot {
    use ferry_converters::initramfs::{add_modules, Initramfs, Limits, VIRTIO_MODULES};
    let work = tempfile::tempdir().expect("tempdir");
    let (kernel, initrd) = extract_boot(g, work.path());
    let image = Initramfs::parse(
        "initrd.img",
        std::fs::read(&initrd).expect("read initrd"),
        Limits::default(),
    )
    .expect("parse initrd");
    let started = Instant::now();
    let guest_files = ferry_converters::kmod::HostDir::new(g.root());
    let (new, report) =
        add_modules(&guest_files, &g.kver, &image, &VIRTIO_MODULES).expect("add_modules");
    eprintln!("injection took {:.1?}: {report:?}", started.elapsed());
    assert_eq!(report.flavor, flavor);
    for m in [
        "virtio_blk",
        "virtio_pci",
        "virtio_net",
        "virtio_scsi",
        "virtio_console",
        "virtio_rng",
    ] {
        assert!(
            report
                .added
                .iter()
                .chain(&report.already_present)
                .chain(&report.builtin)
                .any(|a| a == m),
            "{m} neither added nor present: {report:?}"
        );
    }
    let new_path = work.path().join("initrd.ferry");
    std::fs::write(&new_path, &new).expect("write initrd");
    let b = boot_to_login_or_give_up(g, &kernel, &new_path, append, timeout, work.path());
    assert_eq!(
        b.hit.as_deref(),
        Some(LOGIN),
        "no login prompt:\n{}",
        tail(&b.log, 40)
    );
    assert!(
        b.log.contains("EXT4-fs (vda1): mounted filesystem"),
        "root not mounted from vda1"
    );
    b
}

/// Issue 5's first proof for the guest `name` (skipped when it cannot be built): its own
/// kernel and initrd on virtio-blk never reach userspace ([`assert_unconverted_does_not_boot`],
/// 300 s); when `gives_up` is given, the log holds that message.
pub fn unconverted_guest_case(name: &str, append: &str, gives_up: Option<&str>) {
    let Some(g) = guest(name) else {
        return;
    };
    let b = assert_unconverted_does_not_boot(&g, append, Duration::from_secs(300));
    if let Some(msg) = gives_up {
        assert!(b.log.contains(msg), "{}", tail(&b.log, 30));
    }
}

/// Issue 5's second proof for the guest `name` (skipped when it cannot be built): with virtio
/// injected into its initrd of `flavor` it mounts vda1 and reaches `NAME login:`
/// ([`assert_injected_boots`], 400 s).
pub fn injected_guest_case(name: &str, append: &str, flavor: ferry_converters::initramfs::Flavor) {
    let Some(g) = guest(name) else {
        return;
    };
    let b = assert_injected_boots(&g, append, flavor, Duration::from_secs(400));
    assert!(b.log.contains(&format!("{name} login:")));
}

/// A stored early-microcode-style prefix: `kernel/x86/microcode/GenuineIntel.bin`.
pub fn microcode_prefix() -> Vec<ferry_converters::initramfs::Entry> {
    use ferry_converters::initramfs::Entry;
    vec![
        Entry::dir("kernel", 0o755),
        Entry::dir("kernel/x86", 0o755),
        Entry::dir("kernel/x86/microcode", 0o755),
        Entry::file(
            "kernel/x86/microcode/GenuineIntel.bin",
            0o644,
            b"not a real microcode update\n".repeat(100),
        ),
    ]
}
