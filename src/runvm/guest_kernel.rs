//! Direct boot of a converted guest's own kernel: the spec names the kernel and initrd as
//! paths inside the guest (`boot.guest_root` set by `ferry convert`); they are read here, at
//! start-up, from the spec's disks through Ferry's own readers (raw/qcow2/VMDK → MBR/GPT →
//! md/LVM → ext2/3/4, XFS or FAT, following the guest's fstab mounts and symlinks), so
//! nothing is extracted beside the disk. The runtime gets the bytes.
use anyhow::{bail, Context};
use ferry_formats::disk::{open_image, BlockDevice, ImageFormat};
use ferry_formats::layout::{DirectBoot, MachineSpec};
use ferry_inspectors::Device;
use ferry_runtime::LoadedImage;
use std::sync::Arc;

/// The largest kernel image read (distribution kernels are 5–15 MiB).
const KERNEL_LIMIT: u64 = 256 << 20;
/// The largest initrd read: 2 GiB, and never more than half the guest's RAM.
const INITRD_LIMIT: u64 = 2 << 30;

/// The spec's virtio-blk disks, opened read-only in spec order (`/dev/sda`, `/dev/sdb`, ...).
pub fn open_disks(spec: &MachineSpec) -> anyhow::Result<Vec<Device>> {
    let mut out = Vec::new();
    for d in spec.disks() {
        let (file, format) = (d.file, d.format);
        let fmt = match format {
            "raw" => ImageFormat::Raw,
            "qcow2" => ImageFormat::Qcow2,
            "vmdk" => ImageFormat::Vmdk,
            other => bail!("device {}: invalid format {:?}: the boot disk must be raw, qcow2 or vmdk", d.id, other.escape_debug().to_string()),
        };
        let dev: Box<dyn BlockDevice> = open_image(file, Some(fmt)).with_context(|| format!("device {}: {}", d.id, file.display()))?;
        let dev: Arc<dyn BlockDevice> = Arc::from(dev);
        out.push(Device::new(crate::inspect::disk_name(out.len()), dev));
    }
    Ok(out)
}

/// Reads `boot.kernel` and `boot.initrd` from the guest root `boot.guest_root` on the spec's
/// disks.
pub fn read(spec: &MachineSpec, boot: &DirectBoot) -> anyhow::Result<(LoadedImage, Option<LoadedImage>)> {
    let Some(root) = boot.guest_root.as_deref() else { bail!("boot.guest_root is not set: the kernel is a host file") };
    let Some(uuid) = root.strip_prefix("UUID=") else {
        bail!("invalid boot.guest_root {:?}: expected UUID=<filesystem uuid>", root.escape_debug().to_string())
    };
    let disks = open_disks(spec)?;
    if disks.is_empty() {
        bail!("the spec has no disk to read the kernel {} from", boot.kernel.display());
    }
    let (rep, views) = ferry_inspectors::inspect_with_views(&disks).context("inspecting the boot disks")?;
    let dev = rep
        .filesystems
        .iter()
        .find(|f| f.uuid.as_deref().is_some_and(|u| u.eq_ignore_ascii_case(uuid)))
        .map(|f| f.device.clone());
    let Some(dev) = dev else {
        bail!("boot.guest_root {root}: no filesystem with that UUID on the spec's disks")
    };
    let Some((_, g)) = views.iter().find(|(d, _)| *d == dev) else {
        bail!("boot.guest_root {root} ({dev}): not a Linux root Ferry can read")
    };
    let initrd_limit = INITRD_LIMIT.min(spec.memory_mib.saturating_mul(1 << 20) / 2);
    let get = |path: &std::path::Path, limit: u64, what: &str| -> anyhow::Result<LoadedImage> {
        let p = path.to_string_lossy();
        let data = g
            .read(&p, limit)
            .with_context(|| format!("{what} {} on {dev}", p.escape_debug()))?
            .with_context(|| format!("{what} {} not found on the guest root {dev} ({root})", p.escape_debug()))?;
        Ok(LoadedImage { name: format!("{} on {dev}", p.escape_debug()), data: Arc::from(data) })
    };
    let kernel = get(&boot.kernel, KERNEL_LIMIT, "kernel")?;
    let initrd = boot.initrd.as_deref().map(|p| get(p, initrd_limit, "initrd")).transpose()?;
    Ok((kernel, initrd))
}
