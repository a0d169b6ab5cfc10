//! A disk laid out like a converted Debian guest carrying one of the tiny Linux 6.1 kernels
//! (`testdata/microguests/tiny-kernel*.sh`, cached in $FERRY_CACHE): MBR, ext4 `/boot`
//! (kernel, config, busybox initramfs, GRUB menu) and ext4 root (os-release, fstab by device
//! name, busybox); and the `ferry convert -i disk` / `ferry validate` calls on it.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::Command;

pub const BOOT_UUID: &str = "0c9a3c1e-6f2b-4a55-9d1e-b00710000001";
pub const ROOT_UUID: &str = "0c9a3c1e-6f2b-4a55-9d1e-b00710000002";
pub const VERSION: &str = "6.1.0-tiny";
/// kvm_pvm cannot run these CPU features in guest kernel mode (see runtime_kernel.rs).
pub const PVM_ARGS: &str = "noxsave clearcpuid=308,151,288,534,298,145,158,306,114,141";

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The cache directory (`<prefix>-<hash>`) of a tiny-kernel script whose cache key is the
/// hash of `keyed` (script names under testdata/microguests); builds it under the tiny
/// kernels' lock when linux-source-6.1 is installed.
pub fn tiny_kernel(script: &str, prefix: &str, keyed: &[&str]) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/microguests");
    let cache = std::env::var("FERRY_CACHE").unwrap_or_else(|_| "/var/tmp/ferry-cache".into());
    let hash = Command::new("sh").arg("-c").arg("cat \"$@\" | sha256sum").arg("sh").args(keyed.iter().map(|k| dir.join(k))).output().ok()?;
    let h = String::from_utf8_lossy(&hash.stdout).chars().take(16).collect::<String>();
    let k = Path::new(&cache).join(format!("{prefix}-{h}"));
    if k.join("bzImage").exists() {
        return Some(k);
    }
    let have_source = std::fs::read_dir("/usr/src").is_ok_and(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("linux-source-6.1")));
    if !have_source {
        eprintln!("SKIP: {prefix} not cached and linux-source-6.1 not installed");
        return None;
    }
    std::fs::create_dir_all(&cache).ok()?;
    let lock = Path::new(&cache).join(".tiny-kernel.lock");
    let st = Command::new("flock").arg(&lock).arg("sh").arg(dir.join(script)).status().ok()?;
    (st.success() && k.join("bzImage").exists()).then_some(k)
}

/// An ext4 image of `size_mib` holding `tree`, with a fixed UUID.
pub fn ext4(tree: &Path, img: &Path, uuid: &str, size_mib: u32) {
    run(Command::new("mkfs.ext4").args(["-q", "-F", "-U", uuid, "-d"]).arg(tree).arg(img).arg(format!("{size_mib}M")));
}

/// A raw disk: MBR with /boot (vda1) and / (vda2), like a converted Debian guest (`-i disk`
/// takes a bare disk for a virtio one, so its names are already `vd*`).
pub fn guest_disk(dir: &Path, kernel: &Path, config: &str) -> PathBuf {
    let boot = dir.join("boot");
    std::fs::create_dir_all(boot.join("grub")).expect("mkdir");
    std::fs::copy(kernel, boot.join(format!("vmlinuz-{VERSION}"))).expect("kernel");
    std::fs::write(boot.join(format!("config-{VERSION}")), config).expect("config");
    // initramfs: busybox as /init (the kernel prints "Run /init as init process").
    let rd = dir.join("rd");
    std::fs::create_dir_all(rd.join("bin")).expect("mkdir");
    std::fs::copy("/bin/busybox", rd.join("init")).expect("busybox");
    let list = run(Command::new("sh").arg("-c").arg(format!("cd {} && find . | cpio -o -H newc --quiet > {}", rd.display(), boot.join(format!("initrd.img-{VERSION}")).display())));
    assert!(list.is_empty());
    std::fs::write(
        boot.join("grub/grub.cfg"),
        format!(
            "set default=0\nset timeout=0\nmenuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple' {{\n\tinsmod ext2\n\tlinux\t/vmlinuz-{VERSION} root=/dev/vda2 ro {PVM_ARGS}\n\tinitrd\t/initrd.img-{VERSION}\n}}\n"
        ),
    )
    .expect("grub.cfg");
    let root = dir.join("root");
    for d in ["etc", "bin", "sbin", "boot", "dev", "proc", "sys"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::write(root.join("etc/os-release"), "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n").expect("os-release");
    std::fs::write(root.join("etc/fstab"), "/dev/vda2 / ext4 errors=remount-ro 0 1\n/dev/vda1 /boot ext4 defaults 0 2\n").expect("fstab");
    std::fs::write(root.join("etc/hostname"), "tiny\n").expect("hostname");
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox");
    std::os::unix::fs::symlink("/bin/busybox", root.join("sbin/init")).expect("symlink");
    ext4(&boot, &dir.join("boot.ext4"), BOOT_UUID, 40);
    ext4(&root, &dir.join("root.ext4"), ROOT_UUID, 40);
    let img = dir.join("tiny.img");
    let f = std::fs::File::create(&img).expect("img");
    f.set_len(82 << 20).expect("size");
    drop(f);
    let mut sf = Command::new("sfdisk");
    sf.args(["-q", "--label", "dos"]).arg(&img).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::null());
    let mut child = sf.spawn().expect("sfdisk");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(b"start=2048, size=81920, type=83, bootable\nstart=83968, size=81920, type=83\n").expect("sfdisk input");
    assert!(child.wait().expect("sfdisk").success());
    for (part, seek) in [("boot.ext4", 2048), ("root.ext4", 83968)] {
        run(Command::new("dd").arg(format!("if={}", dir.join(part).display())).arg(format!("of={}", img.display())).args(["bs=512", &format!("seek={seek}"), "conv=notrunc,sparse", "status=none"]));
    }
    img
}

pub fn ferry(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferry")).args(args).output().expect("ferry")
}

/// `ferry convert -i disk IMG -o ferry` into `out` as `name`, with `extra` options; the spec's
/// path and JSON.
pub fn convert_named(img: &Path, out: &Path, name: &str, extra: &[&str]) -> (PathBuf, serde_json::Value) {
    std::fs::create_dir_all(out).expect("mkdir");
    let args = [&["convert", "-i", "disk", img.to_str().expect("utf-8"), "-o", "ferry", "-os", out.to_str().expect("utf-8"), "-on", name][..], extra].concat();
    let o = ferry(&args);
    assert!(o.status.success(), "convert {extra:?}: {}", String::from_utf8_lossy(&o.stderr));
    let spec = out.join(format!("{name}.ferry.json"));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&spec).expect("spec")).expect("json");
    (spec, v)
}

/// `ferry validate --json` on `spec`: success and stdout + stderr.
pub fn validate(spec: &Path, engine: &str, boot: &str, expect: &str, timeout: u64) -> (bool, String) {
    let o = ferry(&["validate", "--json", "--engine", engine, "--boot", boot, "--expect", expect, "--timeout", &timeout.to_string(), spec.to_str().expect("utf-8")]);
    let report = format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    eprintln!("{engine} --boot {boot}: {report}");
    (o.status.success(), report)
}
