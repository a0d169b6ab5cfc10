//! `ferry convert` of a small synthetic Linux guest (built here with sfdisk + `mkfs.ext4 -d`,
//! no cache needed): a Xen xl config whose disk is a raw file. The converted qcow2's root
//! passes `e2fsck -fn` and holds the planned edits (read back with debugfs); the source raw
//! file is byte-identical afterwards; `--dry-run` writes nothing; `--json` reports the plan.

mod convert_linux_support;

use convert_linux_support::*;
use std::path::Path;
use std::process::Command;

const PART: u64 = 1 << 20;

/// A raw disk: MBR, one Linux partition at 1 MiB with an ext4 made from a tiny Debian-like tree.
fn make_guest(dir: &Path) -> Option<std::path::PathBuf> {
    if !["sfdisk", "mkfs.ext4", "debugfs", "e2fsck", "qemu-img"]
        .iter()
        .all(|t| have(t))
    {
        eprintln!("skipped: sfdisk, e2fsprogs or qemu-img not installed (tests/run.sh installs them)");
        return None;
    }
    let tree = dir.join("tree");
    let files: &[(&str, &str)] = &[
        (
            "etc/os-release",
            "ID=debian\nVERSION_ID=12\nPRETTY_NAME=\"Debian GNU/Linux 12\"\n",
        ),
        ("etc/fstab", "/dev/xvda1 / ext4 errors=remount-ro 0 1\n"),
        ("etc/hostname", "tiny\n"),
        (
            "etc/network/interfaces",
            "auto lo\niface lo inet loopback\n\nallow-hotplug eth0\niface eth0 inet dhcp\n",
        ),
        ("etc/default/grub", "GRUB_CMDLINE_LINUX=\"console=hvc0\"\n"),
        ("boot/vmlinuz-6.1.0-9-amd64", "not a real kernel"),
        (
            "boot/grub/grub.cfg",
            "menuentry 'Debian' {\n\tlinux\t/boot/vmlinuz-6.1.0-9-amd64 root=/dev/xvda1 ro console=hvc0\n}\n",
        ),
        ("bin/sh", ""),
        ("usr/lib/systemd/systemd", ""),
    ];
    for (p, text) in files {
        let host = tree.join(p);
        std::fs::create_dir_all(host.parent().unwrap()).unwrap();
        std::fs::write(host, text).unwrap();
    }
    let raw = dir.join("tiny.raw");
    let size: u64 = 64 << 20;
    std::fs::File::create(&raw).unwrap().set_len(size).unwrap();
    let mut sf = Command::new("sfdisk")
        .arg("-q")
        .arg(&raw)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    sf.stdin
        .take()
        .unwrap()
        .write_all(b"label: dos\nstart=2048, type=83\n")
        .unwrap();
    assert!(sf.wait().unwrap().success());
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-b", "4096", "-E"])
        .arg(format!("offset={PART}"))
        .arg("-d")
        .arg(&tree)
        .arg(&raw)
        .arg(((size - PART) / 4096).to_string()));
    Some(raw)
}

fn xl(dir: &Path, raw: &Path) -> std::path::PathBuf {
    let cfg = dir.join("tiny.cfg");
    let text = format!(
        "name = \"tiny\"\ntype = \"pv\"\nmemory = 512\nvcpus = 1\n\
         disk = [ 'format=raw, vdev=xvda, access=rw, target={}' ]\nvif = [ 'mac=00:16:3e:00:00:01, bridge=xenbr0' ]\n",
        raw.display()
    );
    std::fs::write(&cfg, text).unwrap();
    cfg
}

fn cat(part: &Path, path: &str) -> String {
    run(Command::new("debugfs").arg("-R").arg(format!("cat {path}")).arg(part))
}

#[test]
fn raw_xen_guest_is_converted_on_its_overlay() {
    let t = tempfile::tempdir().unwrap();
    let Some(raw) = make_guest(t.path()) else { return };
    let cfg = xl(t.path(), &raw);
    let before = sha256(&raw);
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let o = out.to_str().unwrap();

    // --dry-run: the plan, nothing written.
    let plan = ferry_ok(&[
        "convert",
        "-i",
        "xen",
        cfg.to_str().unwrap(),
        "-o",
        "local",
        "-os",
        o,
        "--dry-run",
    ]);
    assert!(
        plan.contains("edit    /etc/fstab") && plan.contains("iface enp0s5 inet dhcp"),
        "{plan}"
    );
    assert_eq!(list(&out), Vec::<String>::new());

    let json = ferry_ok(&[
        "convert",
        "-i",
        "xen",
        cfg.to_str().unwrap(),
        "-o",
        "local",
        "-os",
        o,
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["guest"]["os_type"], "linux");
    assert!(v["guest"]["applied"].as_u64().unwrap() >= 4, "{json}");
    assert!(v["disks"][0]["edited-bytes"].as_u64().unwrap() > 0, "{json}");
    assert_eq!(sha256(&raw), before, "the source disk changed");

    let img = out.join("tiny-sda");
    assert_qcow2_clean(&img);
    let conv = t.path().join("conv.raw");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(&img)
        .arg(&conv));
    let part = t.path().join("part");
    run(Command::new("dd")
        .arg(format!("if={}", conv.display()))
        .arg(format!("of={}", part.display()))
        .args(["bs=1M", "skip=1", "status=none"]));
    let fsck = Command::new("e2fsck").arg("-fn").arg(&part).output().unwrap();
    assert!(fsck.status.success(), "{}", String::from_utf8_lossy(&fsck.stdout));
    let fstab = cat(&part, "/etc/fstab");
    assert!(fstab.starts_with("UUID=") && !fstab.contains("xvda"), "{fstab}");
    let grub = cat(&part, "/boot/grub/grub.cfg");
    assert!(grub.contains("console=ttyS0") && !grub.contains("xvda1"), "{grub}");
    assert!(cat(&part, "/etc/network/interfaces").contains("iface enp0s5 inet dhcp"));
    assert_eq!(sha256(&raw), before, "the source disk changed");
}
