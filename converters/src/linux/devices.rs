//! Block device names: `sdX`/`hdX`/`xvdX`/`nvmeXnY` (and partitions) become `vdX` in the order
//! of the target's disks, or `UUID=`/`LABEL=` where the filesystem is known. md, sr, fd, cdrom
//! and mapper names are left alone; disk names not in the layout are reported. Only device names
//! change: mount options (btrfs `subvol=`) and snapper's subvolume paths stay as they are.

use super::draft::Draft;
use super::facts::{BootloaderKind, GuestFacts, TargetLayout};
use super::grub;
use super::text::{rewrite_devices, DevRewrite};
use super::LinuxError;

const REASON: &str = "disks are virtio-blk (vdX) on KVM";

/// `/dev/disk/by-id/` links named after the disk's ATA/SCSI/NVMe identity (SLES installers
/// mount by id) and `/dev/disk/by-path/` links: udev makes neither for the same disk on
/// virtio-blk. Links of device-mapper, md and LVM ids stay valid and are not listed.
fn hardware_links(text: &str, skip_comments: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if skip_comments && line.trim_start().starts_with('#') {
            continue;
        }
        for (i, _) in line.match_indices("/dev/disk/by-") {
            let link = &line[i..];
            let end = link.find(|c: char| c.is_whitespace() || "\"',".contains(c)).unwrap_or(link.len());
            let link = &link[..end];
            let hardware = link.strip_prefix("/dev/disk/by-path/").is_some()
                || link
                    .strip_prefix("/dev/disk/by-id/")
                    .is_some_and(|id| ["ata-", "scsi-", "wwn-", "nvme-", "usb-"].iter().any(|p| id.starts_with(p)));
            if hardware && !out.iter().any(|o| o == link) {
                out.push(link.to_owned());
            }
        }
    }
    out
}

/// Plans the renaming in every file that names block devices.
pub fn plan(
    d: &mut Draft<'_>,
    facts: &GuestFacts,
    target: &TargetLayout,
) -> Result<(), LinuxError> {
    if target.disks.is_empty() {
        return Ok(());
    }
    let config = DevRewrite {
        use_ids: true,
        skip_comments: true,
    };
    let boot = DevRewrite {
        use_ids: true,
        skip_comments: false,
    };
    let mut files: Vec<(String, DevRewrite)> = [
        "/etc/fstab",
        "/etc/crypttab",
        "/etc/default/grub",
        "/etc/sysconfig/grub",
        "/etc/initramfs-tools/conf.d/resume",
        grub::SUSE_BOOTLOADER,
    ]
    .iter()
    .map(|p| ((*p).to_owned(), config))
    .collect();
    let bl = &facts.bootloader;
    if let Some(cfg) = &bl.config {
        files.push((cfg.clone(), boot));
    }
    if bl.kind == BootloaderKind::Grub2 {
        for menu in grub::snapshot_menus(d)? {
            files.push((menu, boot));
        }
        let mut snaps: Vec<String> = Vec::new();
        for n in d.list_dir("/.snapshots")? {
            if n.bytes().all(|b| b.is_ascii_digit()) && d.fs().is_file(&format!("/.snapshots/{n}/snapshot/boot/grub2/grub.cfg"))? {
                snaps.push(n);
            }
        }
        snaps.sort_by_key(|n| n.parse::<u64>().unwrap_or(u64::MAX));
        if !snaps.is_empty() {
            d.warn(format!(
                "snapper snapshots {} are read-only and left as they were taken (device names, console, an initrd without virtio): booting one from the snapshot menu on KVM may fail; the running root is converted",
                snaps.join(", ")
            ));
        }
    }
    if let Some(map) = &bl.device_map {
        files.push((
            map.clone(),
            DevRewrite {
                use_ids: false,
                skip_comments: true,
            },
        ));
    }
    if let Some(dir) = &bl.bls_dir {
        for name in d.list_dir(dir)? {
            if name.ends_with(".conf") {
                files.push((format!("{dir}/{name}"), boot));
            }
        }
    }
    for (path, how) in files {
        let Some(text) = d.read(&path)? else { continue };
        for name in hardware_links(&text, how.skip_comments) {
            d.warn(format!(
                "{path}: {name} names a disk by its hardware id or bus path, which it does not have on KVM (virtio-blk); left unchanged: use UUID= instead"
            ));
        }
        let (new, unknown) = rewrite_devices(&text, target, how);
        for u in unknown {
            d.warn(format!(
                "{path}: /dev/{u} is not one of the converted disks; left unchanged"
            ));
        }
        d.edit(&path, new, REASON)?;
    }
    if let Some(env) = &bl.grubenv {
        grub::edit_env(d, env, REASON, |_, v| rewrite_devices(v, target, boot).0)?;
    }
    // Caches of the old device names: LVM's devices file would hide the PVs on vdX.
    for cache in [
        "/etc/lvm/devices/system.devices",
        "/etc/lvm/cache/.cache",
        "/etc/blkid.tab",
        "/etc/blkid/blkid.tab",
    ] {
        d.delete(cache, "it records the old device names; rebuilt on boot")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hardware_links() {
        let fstab = "/dev/disk/by-id/scsi-36000c29a1b2c3d4e5f60718293a4b5c6-part2 / btrfs defaults 0 0\n# /dev/disk/by-id/ata-X-part1 /old ext4\n/dev/disk/by-id/dm-uuid-LVM-abc / ext4 defaults 0 1\n/dev/disk/by-uuid/1234 /boot ext4 defaults 0 2\nroot=/dev/disk/by-path/pci-0000:00:10.0-scsi-0:0:0:0-part2,x\n";
        assert_eq!(
            super::hardware_links(fstab, true),
            ["/dev/disk/by-id/scsi-36000c29a1b2c3d4e5f60718293a4b5c6-part2", "/dev/disk/by-path/pci-0000:00:10.0-scsi-0:0:0:0-part2"]
        );
        assert_eq!(super::hardware_links(fstab, false).len(), 3);
    }
}
