//! Bootloader (grub2, grub-legacy, extlinux) and initramfs generator.

use super::super::GuestFs;

/// (kind, config path) of the bootloader, searched as virt-v2v does: UEFI configs under
/// /boot/efi/EFI first when `uefi`, then /boot.
pub fn bootloader(g: &GuestFs, uefi: bool) -> Option<(String, String)> {
    if uefi {
        for (dir, _) in g.list("/boot/efi/EFI") {
            let base = format!("/boot/efi/EFI/{dir}");
            for (f, kind) in [("grub.cfg", "grub2"), ("grub.conf", "grub-legacy"), ("menu.lst", "grub-legacy")] {
                let p = format!("{base}/{f}");
                if g.is_file(&p) {
                    return Some((kind.into(), p));
                }
            }
        }
    }
    let candidates = [
        ("/boot/grub2/grub.cfg", "grub2"),
        ("/boot/grub/grub.cfg", "grub2"),
        ("/boot/grub/grub.conf", "grub-legacy"),
        ("/boot/grub/menu.lst", "grub-legacy"),
        ("/boot/extlinux/extlinux.conf", "extlinux"),
        ("/boot/extlinux.conf", "extlinux"),
        ("/boot/syslinux/syslinux.cfg", "extlinux"),
    ];
    candidates.iter().find(|(p, _)| g.is_file(p)).map(|(p, k)| (k.to_string(), p.to_string()))
}

/// The tool that builds the initramfs, in virt-v2v's order of preference.
pub fn initramfs_generator(g: &GuestFs) -> Option<String> {
    let has = |p: &str| g.is_file(p);
    if has("/usr/bin/dracut") || has("/sbin/dracut") || has("/usr/sbin/dracut") {
        Some("dracut".into())
    } else if has("/usr/sbin/update-initramfs") || has("/etc/initramfs-tools/initramfs.conf") {
        Some("initramfs-tools".into())
    } else if has("/sbin/mkinitrd") || has("/usr/sbin/mkinitrd") || has("/usr/bin/mkinitrd") {
        Some("mkinitrd".into())
    } else {
        None
    }
}
