//! `ferry convert` of a UEFI guest whose GRUB menu lives on the EFI system partition
//! (`/boot/efi/EFI/debian/grub.cfg`, as RHEL 8 keeps it): a GPT disk made here with sfdisk,
//! `mkfs.vfat` + `mcopy` (the ESP) and `mkfs.ext4 -d` (the root), with `root=/dev/sda2` in the
//! ESP's menu. The FAT ESP is mounted from fstab and edited in place: afterwards `fsck.fat -n`
//! finds it clean, `mtype` shows the menu with the device renamed, and every other file of
//! the ESP reads back byte-identical; the root passes `e2fsck -fn`; the source is unchanged.

mod convert_linux_support;

use convert_linux_support::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: u64 = 1 << 20;
const ESP_MIB: u64 = 40;
const SIZE: u64 = 96 * MIB;
const KERNEL: &str = "6.1.0-9-amd64";

fn menu() -> String {
    format!(
        "set default=\"0\"\nsearch --no-floppy --fs-uuid --set=root 1234-ABCD\n\
         menuentry 'Debian GNU/Linux' {{\n\tlinux\t/vmlinuz-{KERNEL} root=/dev/sda2 ro quiet\n}}\n\
         menuentry 'Debian GNU/Linux (recovery mode)' {{\n\tlinux\t/vmlinuz-{KERNEL} root=/dev/sda2 ro single\n}}\n"
    )
}

/// Files on the ESP besides the menu, which must come back unchanged.
const OTHERS: [(&str, &[u8]); 3] = [
    ("EFI/debian/grubx64.efi", b"MZ not really grub, but 40 bytes of it.."),
    ("EFI/debian/BOOTX64.CSV", b"shimx64.efi,debian,,This is the boot entry for debian\n"),
    ("EFI/BOOT/BOOTX64.EFI", b"MZ fallback loader"),
];

fn make_guest(dir: &Path) -> PathBuf {
    let esp_tree = dir.join("esp");
    let menu = menu();
    let mut esp_files: Vec<(&str, &[u8])> = OTHERS.to_vec();
    esp_files.push(("EFI/debian/grub.cfg", menu.as_bytes()));
    write_tree(&esp_tree, &esp_files);
    let esp = dir.join("esp.img");
    run(Command::new("mkfs.vfat")
        .args(["-F", "32", "-s", "1", "-i", "1234ABCD", "-n", "ESP", "-C"])
        .arg(&esp)
        .arg((ESP_MIB * 1024).to_string()));
    run(Command::new("mcopy").env("MTOOLS_SKIP_CHECK", "1").arg("-s").arg("-i").arg(&esp).arg(esp_tree.join("EFI")).arg("::/"));

    let root = dir.join("root");
    let root_files: &[(&str, &[u8])] = &[
        ("etc/os-release", b"ID=debian\nVERSION_ID=12\nPRETTY_NAME=\"Debian GNU/Linux 12\"\n"),
        (
            "etc/fstab",
            b"/dev/sda2 / ext4 errors=remount-ro 0 1\n/dev/sda1 /boot/efi vfat umask=0077 0 1\n",
        ),
        ("etc/hostname", b"uefi\n"),
        ("etc/network/interfaces", b"auto lo\niface lo inet loopback\n\nallow-hotplug ens192\niface ens192 inet dhcp\n"),
        (&format!("boot/vmlinuz-{KERNEL}"), b"not a real kernel"),
        // Virtio built in, as a kernel must have it for the conversion to go ahead.
        (
            &format!("lib/modules/{KERNEL}/modules.builtin"),
            b"kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_ring.ko\nkernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/block/virtio_blk.ko\nkernel/drivers/net/virtio_net.ko\n",
        ),
        ("bin/sh", b""),
        ("usr/lib/systemd/systemd", b""),
    ];
    write_tree(&root, root_files);
    std::fs::create_dir_all(root.join("boot/efi")).unwrap();
    let raw = dir.join("uefi.raw");
    partitioned(
        &raw,
        SIZE,
        &format!(
            "label: gpt\nstart=2048, size={}, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n\
             start={}, size={}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n",
            ESP_MIB * 2048,
            (1 + ESP_MIB) * 2048,
            (SIZE / MIB - ESP_MIB - 2) * 2048
        ),
    );
    run(Command::new("dd")
        .arg(format!("if={}", esp.display()))
        .arg(format!("of={}", raw.display()))
        .args(["bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"]));
    mkfs_ext4_at(&raw, (1 + ESP_MIB) * MIB, (SIZE / MIB - ESP_MIB - 2) * 256, &root);
    raw
}

fn mtype(img: &Path, path: &str) -> Vec<u8> {
    let o = Command::new("mtype")
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(img)
        .arg(format!("::/{path}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "mtype {path}: {}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

#[test]
fn grub_menu_on_the_esp_is_rewritten_and_the_esp_stays_clean() {
    if !["sfdisk", "mkfs.vfat", "fsck.fat", "mcopy", "mtype", "mkfs.ext4", "e2fsck", "qemu-img"]
        .iter()
        .all(|t| have(t))
    {
        eprintln!("skipped: sfdisk, dosfstools, mtools, e2fsprogs or qemu-img not installed (tests/run.sh installs them)");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let raw = make_guest(t.path());
    let vmx = t.path().join("uefi.vmx");
    let vmdk = t.path().join("uefi.vmdk");
    make_vmdk(&raw, &vmdk, "monolithicSparse");
    write_vmx(&vmx, "uefi", &["uefi.vmdk"]);
    let mut text = std::fs::read_to_string(&vmx).unwrap();
    text.push_str("firmware = \"efi\"\n");
    std::fs::write(&vmx, text).unwrap();
    let before = sha256(&vmdk);
    let out = new_dir(t.path(), "out");
    let stdout = convert_local_ok("vmx", &vmx, &out, &[]);
    assert!(stdout.contains("Converting debian 12 on sda2 (/ /boot/efi)"), "{stdout}");
    assert!(stdout.contains("/boot/efi/EFI/debian/grub.cfg"), "{stdout}");
    assert_eq!(sha256(&vmdk), before, "the source disk changed");

    let img = out.join("uefi-sda");
    assert_qcow2_clean(&img);
    let conv = t.path().join("conv.raw");
    to_raw(&img, &conv);
    let (esp, root) = (t.path().join("esp.part"), t.path().join("root.part"));
    cut(&conv, MIB, Some(ESP_MIB * MIB), &esp);
    cut(&conv, (1 + ESP_MIB) * MIB, Some(SIZE - (ESP_MIB + 2) * MIB), &root);

    let fsck = Command::new("fsck.fat").arg("-n").arg(&esp).output().unwrap();
    let report = String::from_utf8_lossy(&fsck.stdout).into_owned() + &String::from_utf8_lossy(&fsck.stderr);
    assert!(fsck.status.success(), "fsck.fat -n:\n{report}");
    assert!(!report.contains("dirty") && !report.contains("differ"), "fsck.fat -n:\n{report}");

    let new_menu = String::from_utf8(mtype(&esp, "EFI/debian/grub.cfg")).unwrap();
    eprintln!("fsck.fat -n:\n{report}\nnew menu:\n{new_menu}");
    assert!(!new_menu.contains("/dev/sda"), "{new_menu}");
    let old = menu();
    let changed: Vec<(&str, &str)> = old.lines().zip(new_menu.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(changed.len(), 2, "only the two linux lines change:\n{new_menu}");
    for (a, b) in changed {
        assert!(a.contains("root=/dev/sda2") && (b.contains("root=UUID=") || b.contains("root=/dev/vda2")), "{a} -> {b}");
        let without_root = |l: &str| l.split_whitespace().filter(|w| !w.starts_with("root=")).collect::<Vec<_>>().join(" ");
        assert_eq!(without_root(a), without_root(b), "only root= changes");
    }
    for (path, data) in OTHERS {
        assert_eq!(mtype(&esp, path), data, "{path} changed");
    }

    e2fsck_clean(&root, "the converted root");
}
