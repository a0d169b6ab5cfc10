//! A guest whose OS inspection cannot find is refused, not copied unchanged (issue 18's
//! report: a VMware Debian 12 guest with /boot on ext4 and root on btrfs "converted" with exit
//! 0, then stopped at "ALERT! /dev/vda2 does not exist" on KVM). The VMX names a guest OS and
//! the disk holds ext4 + btrfs made by mkfs.ext4 / mkfs.btrfs; `ferry convert` fails in one
//! line naming what it found, writes nothing, and `--copy-only` copies the disk unchanged
//! (qemu-img compare is the oracle).

use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|o| o.status.success())
}

fn have(tool: &str) -> bool {
    let ok = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP: {tool} not installed");
    }
    ok
}

/// A 200 MiB MBR disk: partition 1 ext4 with /boot's files, partition 2 btrfs with a Debian
/// root (os-release, fstab), as the VMware guest in the report.
fn guest_disk(dir: &Path) -> Option<std::path::PathBuf> {
    if !["sfdisk", "mkfs.ext4", "mkfs.btrfs", "qemu-img"].iter().all(|t| have(t)) {
        return None;
    }
    let boot = dir.join("boot");
    let root = dir.join("root");
    std::fs::create_dir_all(boot.join("grub")).ok()?;
    std::fs::write(boot.join("vmlinuz-6.1.0-13-amd64"), vec![0x55u8; 4096]).ok()?;
    std::fs::write(boot.join("grub/grub.cfg"), "linux /vmlinuz-6.1.0-13-amd64 root=/dev/sda2\n").ok()?;
    std::fs::create_dir_all(root.join("etc")).ok()?;
    std::fs::write(root.join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n").ok()?;
    std::fs::write(root.join("etc/fstab"), "/dev/sda2 / btrfs defaults 0 1\n/dev/sda1 /boot ext4 defaults 0 2\n").ok()?;
    let (p1, p2) = (dir.join("p1.img"), dir.join("p2.img"));
    let f = std::fs::File::create(&p1).ok()?;
    f.set_len(32 << 20).ok()?;
    let f = std::fs::File::create(&p2).ok()?;
    f.set_len(160 << 20).ok()?;
    assert!(run(Command::new("mkfs.ext4").args(["-q", "-F", "-d"]).arg(&boot).arg(&p1)), "mkfs.ext4");
    assert!(run(Command::new("mkfs.btrfs").args(["-q", "-f", "--rootdir"]).arg(&root).arg(&p2)), "mkfs.btrfs");
    let raw = dir.join("disk.raw");
    let f = std::fs::File::create(&raw).ok()?;
    f.set_len(200 << 20).ok()?;
    let mut sf = Command::new("sfdisk").arg("-q").arg(&raw).stdin(std::process::Stdio::piped()).spawn().ok()?;
    use std::io::Write;
    sf.stdin.take()?.write_all(b"label: dos\nstart=2048, size=65536, type=83\nstart=67584, size=327680, type=83\n").ok()?;
    assert!(sf.wait().ok()?.success(), "sfdisk");
    for (img, seek) in [(&p1, 2048u64), (&p2, 67584)] {
        let ok = run(Command::new("dd")
            .arg(format!("if={}", img.display()))
            .arg(format!("of={}", raw.display()))
            .args(["bs=512", "conv=notrunc,sparse", "status=none"])
            .arg(format!("seek={seek}")));
        assert!(ok, "dd");
    }
    let vmdk = dir.join("disk.vmdk");
    assert!(run(Command::new("qemu-img").args(["convert", "-O", "vmdk"]).arg(&raw).arg(&vmdk)), "qemu-img convert");
    Some(vmdk)
}

#[test]
fn guest_without_a_readable_os_is_refused_unless_copy_only() {
    let t = tempfile::tempdir().expect("tempdir");
    let Some(vmdk) = guest_disk(t.path()) else { return };
    let vmx = t.path().join("deb.vmx");
    std::fs::write(
        &vmx,
        "config.version = \"8\"\nvirtualHW.version = \"19\"\ndisplayName = \"deb\"\nguestOS = \"debian12-64\"\n\
         memSize = \"1024\"\nnumvcpus = \"1\"\nscsi0.present = \"TRUE\"\nscsi0.virtualDev = \"pvscsi\"\n\
         scsi0:0.present = \"TRUE\"\nscsi0:0.fileName = \"disk.vmdk\"\n",
    )
    .expect("write vmx");
    let before = std::fs::read(&vmdk).expect("read source");
    let out = t.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let convert = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["convert", "-i", "vmx"])
            .arg(&vmx)
            .args(["-o", "local", "-os"])
            .arg(&out)
            .args(extra)
            .output()
            .expect("ferry convert")
    };
    let o = convert(&[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "converted a guest it could not inspect: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("/dev/sda2") && stderr.contains("btrfs"), "names the root and its type: {stderr}");
    assert_eq!(std::fs::read_dir(&out).expect("read out").count(), 0, "output written");
    assert!(std::fs::read(&vmdk).expect("read source") == before, "the source changed");

    let o = convert(&["--copy-only"]);
    assert!(o.status.success(), "--copy-only: {}", String::from_utf8_lossy(&o.stderr));
    let disk = out.join("deb-sda");
    assert!(run(Command::new("qemu-img").arg("compare").arg(&vmdk).arg(&disk)), "--copy-only changed the disk");
}
