//! A guest laid out like a converted Debian guest, with real GRUB (i386-pc) in its MBR and
//! embedding area, boots through SeaBIOS → GRUB → its own kernel after `ferry convert`:
//! under QEMU TCG (`validate --engine qemu` and the script `-o qemu` emits) and on Ferry's
//! runtime (`validate --engine ferry` on the `-o ferry` spec). GRUB is placed as
//! `grub-bios-setup` embeds it: `boot.img` in the MBR's code area (hard-disk drive check
//! off), `core.img` (from `grub-mkimage`: biosdisk, part_msdos, ext2; prefix
//! `(hd0,msdos1)/grub`) from sector 1, its blocklist already naming sector 2 onwards; the
//! modules and `grub.cfg` live on the ext4 `/boot` partition, as `grub-install` leaves them.
//!
//! Oracles: GRUB's own line from `grub.cfg` (`echo`) and the tiny kernel's first line
//! ("Linux version") on the serial console of each engine. On kvm_pvm the runtime's boot
//! takes about two minutes at load ~5 and 6–8 minutes at load ~13 (real-mode GRUB reading the
//! kernel through SeaBIOS's int 13h, and the kernel's decompressor, run as emulated kernel
//! mode; QEMU -accel kvm takes as long: docs/benchmarks.md), hence its 900 s limit.
mod runtime_support;
use runtime_support::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const VERSION: &str = "6.1.0-tiny";
const GRUB_LINE: &str = "ferry grub: loading the kernel";
/// kvm_pvm cannot run these CPU features in guest kernel mode (see runtime_kernel.rs).
const PVM_ARGS: &str = "noxsave clearcpuid=308,151,288,534,298,145,158,306,114,141";
const GRUB_DIR: &str = "/usr/lib/grub/i386-pc";

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// The cached tiny kernel (testdata/microguests/tiny-kernel.sh; runtime_guest_boot.rs builds it).
fn tiny_kernel() -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/microguests/tiny-kernel.sh");
    let cache = std::env::var("FERRY_CACHE").unwrap_or_else(|_| "/var/tmp/ferry-cache".into());
    let hash = Command::new("sha256sum").arg(&script).output().ok()?;
    let h = String::from_utf8_lossy(&hash.stdout).chars().take(16).collect::<String>();
    let k = Path::new(&cache).join(format!("tiny-kernel-{h}")).join("bzImage");
    if !k.exists() {
        eprintln!("SKIP: the tiny kernel is not cached ({}); runtime_guest_boot.rs builds it", k.display());
        return None;
    }
    Some(k)
}

fn grub_available() -> bool {
    let ok = Path::new(GRUB_DIR).join("boot.img").exists() && Command::new("grub-mkimage").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP: GRUB for BIOS not installed (grub-pc-bin, grub-common)");
    }
    ok
}

/// MBR disk: GRUB in the MBR + embedding area, ext4 /boot (vda1: kernel, GRUB modules and
/// menu with a serial terminal and console=ttyS0), ext4 / (vda2).
fn grub_disk(dir: &Path, kernel: &Path) -> PathBuf {
    let boot = dir.join("boot");
    std::fs::create_dir_all(boot.join("grub/i386-pc")).expect("mkdir");
    std::fs::copy(kernel, boot.join(format!("vmlinuz-{VERSION}"))).expect("kernel");
    std::fs::write(boot.join(format!("config-{VERSION}")), "CONFIG_VIRTIO_BLK=y\nCONFIG_VIRTIO_PCI=y\n").expect("config");
    for e in std::fs::read_dir(GRUB_DIR).expect("grub modules").flatten() {
        let name = e.file_name();
        let n = name.to_string_lossy();
        if n.ends_with(".mod") || n.ends_with(".lst") {
            std::fs::copy(e.path(), boot.join("grub/i386-pc").join(&name)).expect("module");
        }
    }
    std::fs::write(
        boot.join("grub/grub.cfg"),
        format!(
            "serial --unit=0 --speed=115200\nterminal_input serial\nterminal_output serial\nset default=0\nset timeout=0\necho '{GRUB_LINE}'\n\
             menuentry 'Debian GNU/Linux' --class debian {{\n\tinsmod ext2\n\tlinux\t/vmlinuz-{VERSION} root=/dev/vda2 ro console=ttyS0 earlyprintk=serial,ttyS0,115200 {PVM_ARGS}\n}}\n"
        ),
    )
    .expect("grub.cfg");
    let root = dir.join("root");
    for d in ["etc", "bin", "sbin", "boot", "dev", "proc", "sys"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::write(root.join("etc/os-release"), "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n").expect("os-release");
    std::fs::write(root.join("etc/fstab"), "/dev/vda2 / ext4 errors=remount-ro 0 1\n/dev/vda1 /boot ext4 defaults 0 2\n").expect("fstab");
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox");
    std::os::unix::fs::symlink("/bin/busybox", root.join("sbin/init")).expect("symlink");
    for (tree, img) in [(&boot, "boot.ext4"), (&root, "root.ext4")] {
        run(Command::new("mkfs.ext4").args(["-q", "-F", "-d"]).arg(tree).arg(dir.join(img)).arg("40M"));
    }
    let img = dir.join("grub.img");
    std::fs::File::create(&img).and_then(|f| f.set_len(82 << 20)).expect("img");
    let mut child = Command::new("sfdisk")
        .args(["-q", "--label", "dos"])
        .arg(&img)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("sfdisk");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(b"start=2048, size=81920, type=83, bootable\nstart=83968, size=81920, type=83\n").expect("sfdisk input");
    assert!(child.wait().expect("sfdisk").success());
    for (part, seek) in [("boot.ext4", 2048), ("root.ext4", 83968)] {
        run(Command::new("dd").arg(format!("if={}", dir.join(part).display())).arg(format!("of={}", img.display())).args(["bs=512", &format!("seek={seek}"), "conv=notrunc,sparse", "status=none"]));
    }
    // GRUB, as grub-bios-setup embeds it.
    let core = dir.join("core.img");
    run(Command::new("grub-mkimage").args(["-O", "i386-pc", "-p", "(hd0,msdos1)/grub", "-o"]).arg(&core).args(["biosdisk", "part_msdos", "ext2"]));
    let core = std::fs::read(&core).expect("core.img");
    let sectors = core.len().div_ceil(512);
    assert!(sectors < 2047, "core.img does not fit the embedding area");
    // diskboot's blocklist (last 12 bytes of its sector): sector 2, the rest of core.img.
    assert_eq!(u64::from_le_bytes(core[0x1f4..0x1fc].try_into().expect("8")), 2);
    assert_eq!(usize::from(u16::from_le_bytes([core[0x1fc], core[0x1fd]])), sectors - 1);
    let mut boot_img = std::fs::read(Path::new(GRUB_DIR).join("boot.img")).expect("boot.img");
    assert_eq!(u64::from_le_bytes(boot_img[0x5c..0x64].try_into().expect("8")), 1, "boot.img's kernel sector");
    boot_img[0x66..0x68].copy_from_slice(&[0x90, 0x90]); // hard disk: no drive-number check
    let mut disk = std::fs::OpenOptions::new().read(true).write(true).open(&img).expect("img");
    use std::io::{Seek, SeekFrom};
    disk.write_all(&boot_img[..440]).expect("mbr");
    disk.seek(SeekFrom::Start(512)).expect("seek");
    disk.write_all(&core).expect("core");
    img
}

fn validate(spec: &Path, engine: &str, timeout: u64) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["validate", "--json", "--engine", engine, "--boot", "firmware", "--expect", "marker,kernel", "--marker", GRUB_LINE, "--timeout", &timeout.to_string()])
        .arg(spec)
        .output()
        .expect("ferry");
    let report = format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    eprintln!("{engine} --boot firmware: {report}");
    (o.status.success(), report)
}

#[test]
fn converted_guest_boots_through_seabios_and_grub_on_both_engines() {
    if !Path::new("/usr/share/seabios/bios-256k.bin").exists() {
        eprintln!("SKIP: seabios not installed");
        return;
    }
    let Some(kernel) = tiny_kernel() else { return };
    if !grub_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = grub_disk(dir.path(), &kernel);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let o = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["convert", "-i", "disk"])
        .arg(&img)
        .args(["-o", "ferry", "-os"])
        .arg(&out)
        .args(["-on", "tiny"])
        .output()
        .expect("ferry");
    assert!(o.status.success(), "convert: {}", String::from_utf8_lossy(&o.stderr));
    let spec = out.join("tiny.ferry.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&spec).expect("spec")).expect("json");
    assert_eq!(v["firmware"], "bios", "{v}");
    // `-i disk` gives 2 GiB, whose struct-page setup is minutes of emulated kernel mode on
    // kvm_pvm; the only edit.
    v["memory_mib"] = 256.into();
    std::fs::write(&spec, v.to_string()).expect("spec");
    if qemu_available() {
        let (ok, report) = validate(&spec, "qemu", 120);
        assert!(ok, "QEMU TCG, SeaBIOS → GRUB → kernel: {report}");
    }
    if qemu_available() {
        // The QEMU script `ferry convert -o qemu` emits (its own qcow2; QEMU's default
        // SeaBIOS, the disk's bootindex) reaches the same lines.
        let qout = dir.path().join("out-qemu");
        std::fs::create_dir_all(&qout).expect("mkdir");
        let o = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["convert", "-i", "disk"])
            .arg(&img)
            .args(["-o", "qemu", "-os"])
            .arg(&qout)
            .args(["-on", "tiny"])
            .output()
            .expect("ferry");
        assert!(o.status.success(), "convert -o qemu: {}", String::from_utf8_lossy(&o.stderr));
        let script = std::fs::read_dir(&qout).expect("out").flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "sh")).expect("emitted script");
        let log = dir.path().join("script.log");
        let mut child = Command::new("sh")
            .arg(&script)
            .args(["-display", "none", "-no-reboot", "-m", "256"])
            .env("FERRY_QEMU_ACCEL", "-accel tcg")
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run the emitted script");
        let start = std::time::Instant::now();
        let seen = loop {
            let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
            let done = text.find(GRUB_LINE).is_some_and(|g| text[g..].contains("Linux version"));
            let exited = child.try_wait().ok().flatten().is_some();
            if done || exited || start.elapsed() > std::time::Duration::from_secs(120) {
                break (done, text);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let _ = child.kill();
        let _ = child.wait();
        assert!(seen.0, "the emitted QEMU script did not reach GRUB's line then the kernel's: {}", seen.1);
    }
    if kvm_available() {
        let (ok, report) = validate(&spec, "ferry", 900);
        assert!(ok, "Ferry runtime, SeaBIOS → GRUB → kernel: {report}");
    }
}
