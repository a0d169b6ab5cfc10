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
