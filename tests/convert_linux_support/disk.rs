//! Small Linux guest disks built in the tests (sfdisk + `mkfs.ext4 -d` from a tree of
//! files), and reading converted disks back: partitions cut out of a raw copy, `e2fsck -fn`,
//! `debugfs`.

use super::run;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Whether the tools to build and check [`tiny_debian`] disks are installed (the reason
/// printed when not).
pub fn tiny_tools() -> bool {
    let ok = ["sfdisk", "mkfs.ext4", "debugfs", "e2fsck", "qemu-img"].iter().all(|t| super::have(t));
    if !ok {
        eprintln!("skipped: sfdisk, e2fsprogs or qemu-img not installed (tests/run.sh installs them)");
    }
    ok
}

/// Writes `files` (path relative to `root`, content) under `root`.
pub fn write_tree<P: AsRef<Path>, D: AsRef<[u8]>>(root: &Path, files: &[(P, D)]) {
    for (p, data) in files {
        let host = root.join(p);
        std::fs::create_dir_all(host.parent().unwrap()).unwrap();
        std::fs::write(host, data).unwrap();
    }
}

/// A `size`-byte sparse file partitioned by the sfdisk `script`.
pub fn partitioned(raw: &Path, size: u64, script: &str) {
    std::fs::File::create(raw).unwrap().set_len(size).unwrap();
    let mut sf = Command::new("sfdisk").arg("-q").arg(raw).stdin(Stdio::piped()).spawn().unwrap();
    sf.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    assert!(sf.wait().unwrap().success());
}

/// `mkfs.ext4 -d tree` of `blocks` 4 KiB blocks at byte `offset` of `raw`.
pub fn mkfs_ext4_at(raw: &Path, offset: u64, blocks: u64, tree: &Path) {
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-b", "4096", "-E"])
        .arg(format!("offset={offset}"))
        .arg("-d")
        .arg(tree)
        .arg(raw)
        .arg(blocks.to_string()));
}

/// A `size`-byte raw disk: MBR, one Linux partition at 1 MiB holding an ext4 made from `tree`.
pub fn mbr_ext4_disk(raw: &Path, size: u64, tree: &Path) {
    partitioned(raw, size, "label: dos\nstart=2048, type=83\n");
    mkfs_ext4_at(raw, 1 << 20, (size - (1 << 20)) / 4096, tree);
}

/// The files of a tiny Debian 12-like root, hostname `host`, that names itself `/dev/{dev}1`
/// in fstab and in grub.cfg's `linux` line; `kernel_args` (e.g. `console=hvc0`) end that line
/// and, when not empty, stand in /etc/default/grub too. `eth0` is configured by DHCP.
pub fn tiny_debian(host: &str, dev: &str, kernel_args: &str) -> Vec<(String, String)> {
    let args = if kernel_args.is_empty() { String::new() } else { format!(" {kernel_args}") };
    let mut files = vec![
        ("etc/os-release".to_string(), "ID=debian\nVERSION_ID=12\nPRETTY_NAME=\"Debian GNU/Linux 12\"\n".to_string()),
        ("etc/fstab".into(), format!("/dev/{dev}1 / ext4 errors=remount-ro 0 1\n")),
        ("etc/hostname".into(), format!("{host}\n")),
        ("etc/network/interfaces".into(), "auto lo\niface lo inet loopback\n\nallow-hotplug eth0\niface eth0 inet dhcp\n".into()),
        ("boot/vmlinuz-6.1.0-9-amd64".into(), "not a real kernel".into()),
        (
            "boot/grub/grub.cfg".into(),
            format!("menuentry 'Debian' {{\n\tlinux\t/boot/vmlinuz-6.1.0-9-amd64 root=/dev/{dev}1 ro{args}\n}}\n"),
        ),
        ("bin/sh".into(), String::new()),
        ("usr/lib/systemd/systemd".into(), String::new()),
    ];
    if !kernel_args.is_empty() {
        files.push(("etc/default/grub".into(), format!("GRUB_CMDLINE_LINUX=\"{kernel_args}\"\n")));
    }
    files
}

/// `qemu-img convert` of an output qcow2 to raw at `raw`.
pub fn to_raw(img: &Path, raw: &Path) {
    run(Command::new("qemu-img").args(["convert", "-f", "qcow2", "-O", "raw"]).arg(img).arg(raw));
}

/// `len` bytes (None: to the end) of `raw` at `start` into `to` (sparse); MiB-aligned.
pub fn cut(raw: &Path, start: u64, len: Option<u64>, to: &Path) {
    assert_eq!(start % (1 << 20), 0);
    let mut dd = Command::new("dd");
    dd.arg(format!("if={}", raw.display()))
        .arg(format!("of={}", to.display()))
        .arg("bs=1M")
        .arg(format!("skip={}", start >> 20))
        .args(["conv=sparse", "status=none"]);
    if let Some(len) = len {
        dd.arg(format!("count={}", len.div_ceil(1 << 20)));
    }
    run(&mut dd);
}

/// The partition at 1 MiB (to the end) of output qcow2 `img`, as a raw file in `work`.
pub fn first_partition(img: &Path, work: &Path) -> PathBuf {
    let raw = work.join("converted.raw");
    to_raw(img, &raw);
    let part = work.join("part");
    cut(&raw, 1 << 20, None, &part);
    std::fs::remove_file(&raw).unwrap();
    part
}

/// Panics unless `e2fsck -fn` finds the filesystem image `part` clean.
pub fn e2fsck_clean(part: &Path, what: &str) {
    let fsck = Command::new("e2fsck").arg("-fn").arg(part).output().unwrap();
    assert!(
        fsck.status.success(),
        "e2fsck -fn on {what}:\n{}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
}

/// `debugfs -R CMD part`: its stdout.
pub fn debugfs(part: &Path, cmd: &str) -> String {
    run(Command::new("debugfs").arg("-R").arg(cmd).arg(part))
}

/// A file of the ext filesystem image `part`.
pub fn debugfs_cat(part: &Path, path: &str) -> String {
    debugfs(part, &format!("cat {path}"))
}

/// Dumps `path` of `part` to `to`; panics unless something was dumped.
pub fn debugfs_dump(part: &Path, path: &str, to: &Path) {
    debugfs(part, &format!("dump {path} {}", to.display()));
    assert!(to.metadata().map(|m| m.len() > 0).unwrap_or(false), "debugfs could not dump {path}");
}
