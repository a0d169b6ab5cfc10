//! The guest-conversion step of `ferry convert`: the source disks are opened read-only, each
//! under a copy-on-write overlay; the guest is inspected on the overlays; the Linux root
//! chosen by `--root` is opened read-write through the converters' one dispatch by type
//! ([`ferry_converters::fs::open`]; plus a separate `/boot` or `/usr`, on partitions, whole
//! disks or LVM LVs: [`super::volumes`]) and the FAT ESP at `/boot/efi`, the conversion
//! planned, printed, applied, and the initramfs rebuilt with virtio. A Windows guest goes
//! to [`super::windows`]. The overlays
//! (source + edits) are what the copy step then writes to the output in one pass.
//!
//! Disks only readable front to back (inside a compressed OVA) are first copied to a
//! temporary qcow2 in the output directory (unlinked as soon as it is open), since editing
//! needs random access.

use super::cache::ReadCache;
use super::copy::{self, CopyJob};
use super::root::{self, RootChoice};
use super::volumes::{locate_name, Volumes};
use crate::output::drive_name;
use anyhow::{bail, Context};
use ferry_converters::fs::{self, Filesystem, Volume};
use ferry_converters::guestfs::Ext4GuestFs;
use ferry_converters::linux::rebuild::{rebuild_initramfs, RebuildReport};
use ferry_converters::linux::{self, DiskTarget, NicTarget, Plan, TargetLayout};
use ferry_formats::convert::OutputFormat;
use ferry_formats::disk::{open_image, BlockDevice, CowOverlay, ImageFormat};
use ferry_formats::layout::{DeviceKind, Layout};
use ferry_formats::model::{Bus, VmModel};
use ferry_formats::qcow2::Preallocation;
use ferry_inspectors::os::OsInfo;
use ferry_inspectors::{Device, Inspection};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

/// A source disk under its conversion overlay.
pub type Overlay = CowOverlay<Box<dyn BlockDevice>>;

/// What the conversion step did, for the report.
#[derive(Debug, Default, Serialize)]
pub struct GuestReport {
    /// `linux`, `windows`, or empty when no operating system was found.
    pub os_type: String,
    pub distro: String,
    pub version: String,
    /// The root filesystem (inspection's device name, `/dev/sda1`).
    pub root: String,
    /// Guest mountpoints opened for editing.
    pub mounted: Vec<String>,
    pub plan: Option<Plan>,
    /// The Windows plan (drivers copied, registry edits), for a Windows guest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows_plan: Option<ferry_converters::windows::WindowsPlan>,
    /// Changes written, and changes found already in place.
    pub applied: usize,
    pub already_done: usize,
    pub rebuilt: Vec<RebuildReport>,
    pub warnings: Vec<String>,
    /// The direct boot of the converted guest's own kernel, recorded in the spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot: Option<ferry_formats::layout::DirectBoot>,
}

/// The guest's own name for each source disk (`sda`, `hda`, `xvda`, `nvme0n1`), by the
/// description's target name or else its bus and order.
pub fn guest_disk_names(vm: &VmModel) -> Vec<String> {
    let (mut sd, mut xvd, mut vd) = (0, 0, 0);
    vm.disks
        .iter()
        .map(|d| {
            if let Some(t) = &d.target_dev {
                return t.trim_start_matches("/dev/").to_string();
            }
            let next = |n: &mut usize| {
                *n += 1;
                *n - 1
            };
            match d.bus {
                Bus::Ide => drive_name("hd", (d.controller * 2 + d.unit) as usize),
                Bus::Nvme => format!("nvme{}n{}", d.controller, d.unit + 1),
                Bus::Xen => drive_name("xvd", next(&mut xvd)),
                Bus::Virtio => drive_name("vd", next(&mut vd)),
                _ => drive_name("sd", next(&mut sd)),
            }
        })
        .collect()
}

/// Opens every job's source read-only (small reads cached) under an overlay whose data lives
/// in `dir`.
pub fn open_overlays(jobs: &[CopyJob], dir: &Path) -> anyhow::Result<Vec<Arc<Overlay>>> {
    let mut out = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let dev = match copy::open_device(&job.source, job.source_format.as_deref())? {
            Some(d) => d,
            None => spool(job, dir, i)?,
        };
        let dev: Box<dyn BlockDevice> = Box::new(ReadCache::new(dev));
        out.push(Arc::new(CowOverlay::new_in(dev, dir)?));
    }
    Ok(out)
}

/// Copies a front-to-back source to a temporary qcow2 in `dir` and opens it; the file is
/// unlinked once open, so nothing is left behind.
fn spool(job: &CopyJob, dir: &Path, i: usize) -> anyhow::Result<Box<dyn BlockDevice>> {
    let path = dir.join(format!(".ferry-spool-{}-{i}.qcow2", std::process::id()));
    let spool_job = CopyJob {
        output: path.clone(),
        format: OutputFormat::Qcow2,
        preallocation: Preallocation::Off,
        ..job.clone()
    };
    eprintln!(
        "ferry: {} can only be read front to back: unpacking it for editing",
        job.source.describe()
    );
    copy::copy_one(&spool_job, &path)?;
    let dev = open_image(&path, Some(ImageFormat::Qcow2));
    let _ = std::fs::remove_file(&path);
    Ok(dev?)
}

fn fstype<'r>(rep: &'r Inspection, dev: &str) -> &'r str {
    let dev = btrfs_subvolume(rep, dev).map_or(dev, |(d, _)| d);
    rep.filesystems.iter().find(|f| f.device == dev).map_or("", |f| f.fstype.as_str())
}

/// `btrfsvol:DEVICE/PATH` (inspection's name of a btrfs subvolume that is not the default
/// one) split into the btrfs device and the subvolume's path from the top level.
fn btrfs_subvolume<'d>(rep: &Inspection, dev: &'d str) -> Option<(&'d str, &'d str)> {
    let rest = dev.strip_prefix("btrfsvol:")?;
    rep.filesystems
        .iter()
        .filter(|f| f.fstype == "btrfs")
        .filter_map(|f| rest.strip_prefix(f.device.as_str()).and_then(|p| p.strip_prefix('/')).map(|p| (&rest[..f.device.len()], p)))
        .next()
}

/// Whether Ferry's writer for `dev`'s filesystem type can carry out a conversion on it.
fn is_writable(rep: &Inspection, dev: &str) -> bool {
    fs::writable(fstype(rep, dev))
}

/// The Linux target: disk order and NIC names from the layout's PCI slots.
fn target(vm: &VmModel, layout: &Layout, names: &[String], rep: &Inspection) -> TargetLayout {
    let mut t = TargetLayout {
        disks: names.iter().map(|n| DiskTarget { source: n.clone() }).collect(),
        ..Default::default()
    };
    for f in &rep.filesystems {
        let (Some(uuid), Some(p)) = (&f.uuid, locate_name(rep, names, &f.device)) else {
            continue;
        };
        if matches!(
            f.fstype.as_str(),
            "ext2" | "ext3" | "ext4" | "xfs" | "btrfs" | "swap" | "vfat"
        ) {
            t.fs_ids.insert(p, format!("UUID={uuid}"));
        }
    }
    for (i, _) in vm.nics.iter().enumerate() {
        let id = format!("net{i}");
        let Some(dev) = layout.spec.devices.iter().find(|d| d.id == id) else {
            continue;
        };
        if let DeviceKind::VirtioNet { mac, .. } = &dev.kind {
            t.nics.push(NicTarget {
                old_name: None,
                mac: mac.clone(),
                new_name: NicTarget::predictable_name(dev.addr.slot),
            });
        }
    }
    t
}

/// Opens the filesystem `dev` read-write (a partition, whole disk or LV on the overlays) with
/// the writer for the type inspection found.
/// A btrfs subvolume (`btrfsvol:DEVICE/PATH`) opens as a view of its device's one writer:
/// `btrfs` keeps a view per device opened so far, for the next subvolume of the same device
/// (all views share one transaction, committed when the last of them is unmounted).
fn open_fs<'v>(vols: &'v Volumes, rep: &Inspection, names: &[String], vm: &VmModel, dev: &str, btrfs: &mut BtrfsViews<'v>) -> anyhow::Result<Filesystem<'v>> {
    let (base, subvol) = btrfs_subvolume(rep, dev).map_or((dev, None), |(d, p)| (d, Some(p)));
    if let Some(open) = btrfs.get(base) {
        let mut view = open.another_view(dev);
        match subvol {
            Some(p) => view.view_path(p)?,
            None => view.view(open.default_subvolume()?)?,
        }
        return Ok(Filesystem::Btrfs(view));
    }
    let describe = |i: usize| vm.disks.get(i).map(|d| d.source.describe()).unwrap_or_default();
    let e = vols
        .open(rep, names, describe, base)?
        .with_context(|| format!("{base} is not a partition, whole disk or logical volume of the guest (md RAID is not edited)"))?;
    let vol = Volume::new(e.dev, e.start, e.len, &e.name)?;
    let mut opened = fs::open(vol, fstype(rep, base), &e.name)?;
    if let Filesystem::Btrfs(b) = &mut opened {
        btrfs.insert(base.to_string(), b.another_view(&e.name));
        if let Some(p) = subvol {
            b.view_path(p)?;
        }
    }
    Ok(opened)
}

/// The btrfs writers opened so far, by device.
type BtrfsViews<'v> = std::collections::HashMap<String, ferry_converters::fs::btrfs::Btrfs<'v>>;

/// Options of the conversion step.
pub struct Options {
    pub dry_run: bool,
    /// Print the plan and what was done (false under `--json`).
    pub print: bool,
    /// Which root to convert when there are several.
    pub root: RootChoice,
    /// `--virtio-win`: the virtio-win tree for Windows guests (else `VIRTIO_WIN`).
    pub virtio_win: Option<std::path::PathBuf>,
    /// `--mac MAC:ip:...`: static addresses set at first boot (Windows guests, as virt-v2v).
    pub static_ips: Vec<ferry_converters::windows::firstboot::StaticIp>,
}

/// Inspects the guest on `overlays` and converts it in place (on the overlays).
pub fn convert_guest(
    vm: &VmModel,
    layout: &Layout,
    overlays: &[Arc<Overlay>],
    opts: &Options,
) -> anyhow::Result<GuestReport> {
    let mut report = GuestReport::default();
    let names = guest_disk_names(vm);
    let devices: Vec<Device> = overlays
        .iter()
        .enumerate()
        .map(|(i, o)| {
            Device::new(crate::inspect::disk_name(i), o.clone() as Arc<dyn BlockDevice>)
        })
        .collect();
    let rep = ferry_inspectors::inspect(&devices)?;
    report.warnings.extend(rep.warnings.iter().cloned());
    let linux: Vec<&OsInfo> = rep.operating_systems.iter().filter(|o| o.os_type == "linux").collect();
    if linux.is_empty() {
        match rep.operating_systems.first() {
            Some(o) if o.os_type == "windows" => {
                let vols = Volumes::new(&rep, overlays, &names)?;
                super::windows::convert(o, &rep, &vols, &names, vm, opts, &mut report)?;
            }
            Some(o) => {
                report.os_type = o.os_type.clone();
                report.warnings.push(format!(
                    "{} guests are not converted yet: disks copied unchanged",
                    o.os_type
                ));
            }
            None => {
                if let Some(why) = super::no_os::refusal(vm, &rep) {
                    bail!("{why}");
                }
                report.warnings.push("no operating system found on the disks: copied unchanged".into())
            }
        }
        return Ok(report);
    }
    let os = root::choose(&linux, &opts.root)?;
    if !opts.static_ips.is_empty() {
        report.warnings.push("--mac MAC:ip:... sets addresses on Windows guests only (as virt-v2v): ignored for this Linux guest".into());
    }
    report.os_type = "linux".into();
    report.distro = os.distro.clone();
    report.version = format!("{}.{}", os.major_version, os.minor_version);
    report.root = os.root.clone();
    if !is_writable(&rep, &os.root) {
        bail!(
            "the root filesystem {} is {}: Ferry converts only on ext2/3/4, XFS and btrfs filesystems",
            os.root,
            match fstype(&rep, &os.root) {
                "" => "of an unknown type",
                t => t,
            }
        );
    }
    let vols = Volumes::new(&rep, overlays, &names)?;
    let mut btrfs = BtrfsViews::new();
    let mut gfs = Ext4GuestFs::with_root(open_fs(&vols, &rep, &names, vm, &os.root, &mut btrfs)?);
    let root_name = locate_name(&rep, &names, &os.root).unwrap_or_else(|| os.root.clone());
    for (mp, dev) in &os.mountpoints {
        if mp == "/" {
            continue;
        }
        if mp == "/boot/efi" && fstype(&rep, dev) == "vfat" {
            // The ESP: UEFI guests keep a grub.cfg there (RHEL 8 its real menu).
            gfs.mount_fs(mp, open_fs(&vols, &rep, &names, vm, dev, &mut btrfs)?)?;
            continue;
        }
        let wanted = matches!(mp.as_str(), "/boot" | "/usr");
        if wanted && is_writable(&rep, dev) {
            gfs.mount_fs(mp, open_fs(&vols, &rep, &names, vm, dev, &mut btrfs)?)?;
        } else if wanted {
            report.warnings.push(format!(
                "{mp} on {dev} is {}, not a filesystem Ferry can convert on: left unchanged",
                match fstype(&rep, dev) {
                    "" => "of an unknown type",
                    t => t,
                }
            ));
        }
    }
    report.mounted = gfs.mountpoints();
    let facts = linux::detect::detect(&gfs)?;
    report.distro = facts.distro.clone();
    report.version = facts.version.clone();
    let target = target(vm, layout, &names, &rep);
    let plan = linux::plan(&facts, &target, &gfs)?;
    if plan.virtio.interface == linux::VirtioInterface::None {
        bail!("{}: the guest cannot drive virtio devices", plan.virtio.reason);
    }
    if opts.print {
        println!(
            "Converting {} {} on {} ({}) to KVM:",
            facts.distro,
            facts.version,
            root_name,
            report.mounted.join(" ")
        );
        print!("{plan}");
    }
    report.warnings.extend(plan.warnings.iter().cloned());
    if opts.dry_run {
        report.plan = Some(plan);
        return Ok(report);
    }
    let applied = linux::apply(&plan, &mut gfs)?;
    report.applied = applied.applied.len();
    report.already_done = applied.already_done.len();
    for w in &applied.warnings {
        if opts.print {
            println!("warning: {w}");
        }
        report.warnings.push(w.clone());
    }
    for step in &applied.deferred {
        if let linux::ChangeKind::Label { .. } = step.kind {
            match linux::plan::label(&mut gfs, step).with_context(|| format!("labelling {}", step.path))? {
                linux::plan::Labelled::Fallback(w) => {
                    if opts.print {
                        println!("warning: {w}");
                    }
                    report.warnings.push(w);
                }
                _ => report.applied += 1,
            }
            continue;
        }
        let r = rebuild_initramfs(&mut gfs, step).with_context(|| format!("rebuilding {}", step.path))?;
        if !r.missing.is_empty() {
            report
                .warnings
                .push(format!("kernel {} has no {}", r.kernel_version, r.missing.join(", ")));
        }
        if opts.print {
            println!(
                "rebuilt {} ({}): added {}; the original is kept as {}",
                r.initrd,
                r.flavor,
                if r.added.is_empty() {
                    "nothing".to_string()
                } else {
                    r.added.join(" ")
                },
                r.backup
            );
        }
        report.rebuilt.push(r);
    }
    let root_uuid = rep.filesystems.iter().find(|f| f.device == os.root).and_then(|f| f.uuid.clone());
    let kernel = linux::choose_kernel(&facts)?;
    report.boot = super::boot_record::direct_boot(&gfs, &facts, kernel, root_uuid.as_deref());
    drop(btrfs);
    gfs.unmount()?;
    if opts.print {
        println!(
            "applied {} changes ({} already in place)",
            report.applied, report.already_done
        );
    }
    report.plan = Some(plan);
    Ok(report)
}
