//! Whole-guest inspection: disks → partitions → LVM → filesystems → OS roots.

use crate::device::Device;
use crate::fs::{self, FileSystem, FsType};
use crate::{lvm, md};
use crate::os::{self, linux, windows, GuestFs, KnownDevice, OsInfo};
use crate::partition::{partition_device, PartKind, PartitionTable};
use crate::report::{DiskReport, FsReport, Inspection};
use ferry_formats::disk::DiskError;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Failures that stop inspection altogether (a disk that cannot be read at all).
/// Damage inside a disk is reported as warnings in the [`Inspection`].
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Disk(#[from] DiskError),
}

struct Volume {
    dev: Device,
    partuuid: Option<String>,
    partlabel: Option<String>,
}

/// Inspects the guest whose disks are `disks` (named `/dev/sda`, `/dev/sdb`, ... in order).
pub fn inspect(disks: &[Device]) -> Result<Inspection, InspectError> {
    inspect_with_views(disks).map(|(rep, _)| rep)
}

/// Like [`inspect`], also returning each Linux root's guest view (root device, root plus its
/// fstab mounts), to read the guest's files as the guest sees them.
pub fn inspect_with_views(disks: &[Device]) -> Result<(Inspection, Vec<(String, GuestFs)>), InspectError> {
    let mut views = Vec::new();
    let mut rep = Inspection::default();
    let mut volumes = Vec::new();
    let (mut has_esp, mut has_bios_boot) = (false, false);
    for disk in disks {
        let table = match PartitionTable::read(disk) {
            Ok(t) => t,
            Err(e) => {
                rep.warnings.push(e.to_string());
                None
            }
        };
        match &table {
            Some(t) => {
                rep.warnings.extend(t.warnings.iter().cloned());
                for p in &t.partitions {
                    has_esp |= p.kind == PartKind::Esp;
                    has_bios_boot |= p.kind == PartKind::BiosBoot;
                    if matches!(p.kind, PartKind::Extended | PartKind::GptProtective) {
                        continue;
                    }
                    match partition_device(disk, p) {
                        Ok(dev) => volumes.push(Volume {
                            dev,
                            partuuid: Some(p.partuuid.clone()),
                            partlabel: p.name.clone(),
                        }),
                        Err(e) => rep.warnings.push(e.to_string()),
                    }
                }
            }
            None => volumes.push(Volume { dev: disk.clone(), partuuid: None, partlabel: None }),
        }
        rep.disks.push(DiskReport {
            name: disk.name.clone(),
            size: disk.size(),
            format: disk.dev.info().format,
            partition_table: table,
        });
    }
    rep.firmware = if has_esp && !has_bios_boot { "uefi" } else { "bios" }.into();

    // Probe, collect PVs, assemble LVM, probe the LVs.
    let mut probed: Vec<(Volume, fs::FsInfo)> = Vec::new();
    let mut pvs = Vec::new();
    for v in volumes {
        match fs::probe(&v.dev) {
            Ok(Some(info)) => {
                if info.fstype == FsType::Lvm2Member {
                    match lvm::scan_pv(&v.dev) {
                        Ok(Some(pv)) => pvs.push(pv),
                        Ok(None) => {}
                        Err(e) => rep.warnings.push(e.to_string()),
                    }
                }
                probed.push((v, info));
            }
            Ok(None) => {}
            Err(e) => rep.warnings.push(e.to_string()),
        }
    }
    // md RAID1 arrays, then whatever is on them (a filesystem or a PV).
    let mut members = Vec::new();
    for (v, info) in &probed {
        if info.fstype == FsType::LinuxRaidMember {
            match md::read_member(&v.dev) {
                Ok(Some(m)) => members.push(m),
                Ok(None) => rep.warnings.push(format!("{}: md superblock unreadable or bad checksum", v.dev.name)),
                Err(e) => rep.warnings.push(e.to_string()),
            }
        }
    }
    let (arrays, md_warnings) = md::assemble(&members);
    rep.warnings.extend(md_warnings);
    for dev in arrays {
        match fs::probe(&dev) {
            Ok(Some(info)) => {
                if info.fstype == FsType::Lvm2Member {
                    match lvm::scan_pv(&dev) {
                        Ok(Some(pv)) => pvs.push(pv),
                        Ok(None) => {}
                        Err(e) => rep.warnings.push(e.to_string()),
                    }
                }
                probed.push((Volume { dev, partuuid: None, partlabel: None }, info));
            }
            Ok(None) => {}
            Err(e) => rep.warnings.push(e.to_string()),
        }
    }
    let (vgs, lvs) = lvm::assemble(&pvs);
    for vg in &vgs {
        for lv in vg.lvs.iter().filter_map(|l| l.refused.as_ref()) {
            rep.warnings.push(lv.clone());
        }
        for m in &vg.missing_pvs {
            rep.warnings.push(format!("volume group {}: physical volume {m} is missing", vg.name));
        }
    }
    rep.volume_groups = vgs;
    for dev in lvs {
        match fs::probe(&dev) {
            Ok(Some(info)) => probed.push((Volume { dev, partuuid: None, partlabel: None }, info)),
            Ok(None) => {}
            Err(e) => rep.warnings.push(e.to_string()),
        }
    }

    // Open readable filesystems; fix labels that live inside the filesystem.
    let mut opened: BTreeMap<String, Rc<dyn FileSystem>> = BTreeMap::new();
    let mut subvols: BTreeMap<String, (fs::BtrfsFs, fs::BtrfsReport)> = BTreeMap::new();
    let mut known = Vec::new();
    for (v, info) in &mut probed {
        let mut btrfs = None;
        if info.fstype == FsType::Btrfs {
            match fs::BtrfsFs::open(&v.dev).and_then(|b| b.report().map(|r| (b, r))) {
                Ok((b, r)) => {
                    info.features = b.features().into_iter().map(String::from).collect();
                    info.version = Some(r.csum.clone());
                    btrfs = Some(r.clone());
                    subvols.insert(v.dev.name.clone(), (b, r));
                }
                Err(e) => rep.warnings.push(e.to_string()),
            }
        }
        let opened_fs = match subvols.get(&v.dev.name) {
            Some((b, _)) => Ok(Some(Box::new(b.clone()) as Box<dyn FileSystem>)),
            None if info.fstype == FsType::Btrfs => Ok(None), // its error is already a warning
            None => fs::open(&v.dev, info),
        };
        match opened_fs {
            Ok(Some(f)) => {
                let f: Rc<dyn FileSystem> = Rc::from(f);
                opened.insert(v.dev.name.clone(), f);
                let label = match info.fstype {
                    FsType::Ntfs => fs::NtfsFs::open(&v.dev).and_then(|n| n.label()).ok().flatten(),
                    FsType::Vfat => fs::FatFs::open(&v.dev).and_then(|n| n.label()).ok().flatten(),
                    _ => info.label.clone(),
                };
                info.label = label;
            }
            Ok(None) => {}
            Err(e) => rep.warnings.push(e.to_string()),
        }
        known.push(KnownDevice {
            device: v.dev.name.clone(),
            fstype: Some(info.fstype.name().into()),
            uuid: info.uuid.clone(),
            label: info.label.clone(),
            partuuid: v.partuuid.clone(),
            partlabel: v.partlabel.clone(),
        });
        rep.filesystems.push(FsReport {
            device: v.dev.name.clone(),
            fstype: info.fstype.name().into(),
            uuid: info.uuid.clone(),
            label: info.label.clone(),
            version: info.version.clone(),
            features: info.features.clone(),
            size: v.dev.size(),
            btrfs,
        });
    }

    // Roots: each filesystem, or on btrfs each subvolume that is not a snapshot of another
    // (snapper's included), the default subvolume always.
    let mut candidates: Vec<(String, Rc<dyn FileSystem>, Vec<String>)> = Vec::new();
    for (dev, f) in &opened {
        let Some((b, r)) = subvols.get(dev) else {
            candidates.push((dev.clone(), f.clone(), Vec::new()));
            continue;
        };
        let mut subs: Vec<&fs::Subvolume> = r.subvolumes.iter().collect();
        subs.sort_by_key(|s| s.id != r.default_subvolume);
        for s in subs {
            let is_default = s.id == r.default_subvolume;
            if !is_default && (s.snapper.is_some() || s.snapshot_of.is_some()) {
                continue;
            }
            match b.subvolume(s.id) {
                Ok(sv) => {
                    let name = subvol_name(dev, r, s.id);
                    let snaps = snapshots_of(r, s).into_iter().map(|p| subvol_name(dev, r, p)).collect();
                    candidates.push((name.clone(), Rc::new(sv.with_name(name)), snaps));
                }
                Err(e) => rep.warnings.push(e.to_string()),
            }
        }
    }
    for (dev, f, snapshots) in &candidates {
        let g = GuestFs::new(dev, f.clone());
        let mut info = OsInfo { root: dev.clone(), firmware: rep.firmware.clone(), snapshots: snapshots.clone(), ..Default::default() };
        match os::root_kind(&g) {
            Some("linux") => {
                let mut g = g;
                info.fstab = linux::fstab(&g, &known);
                for e in &info.fstab {
                    let (Some(d), true) = (&e.device, e.mountpoint.starts_with('/')) else { continue };
                    if e.mountpoint == "/" {
                        continue;
                    }
                    if let Some((b, r)) = subvols.get(d) {
                        match fstab_subvolume(r, &e.options) {
                            Some(id) => match b.subvolume(id) {
                                Ok(sv) => {
                                    let name = subvol_name(d, r, id);
                                    g.mount(&e.mountpoint, &name, Rc::new(sv.with_name(name.clone())));
                                }
                                Err(err) => info.warnings.push(err.to_string()),
                            },
                            None => info.warnings.push(format!(
                                "fstab {}: {} names no subvolume of the btrfs on {d}",
                                e.mountpoint, e.options
                            )),
                        }
                    } else if let Some(mfs) = opened.get(d) {
                        g.mount(&e.mountpoint, d, mfs.clone());
                    }
                }
                linux::inspect(&g, &mut info, rep.firmware == "uefi");
                // Every fstab mount of a found device, readable by Ferry or not.
                let mut mps = g.mounts();
                for e in info.fstab.iter().filter(|e| !subvols.contains_key(e.device.as_deref().unwrap_or_default())) {
                    if let (Some(d), true) = (&e.device, e.mountpoint.starts_with('/')) {
                        if !mps.iter().any(|(m, _)| *m == e.mountpoint) {
                            mps.push((e.mountpoint.clone(), d.clone()));
                        }
                    }
                }
                mps.sort();
                info.mountpoints = mps;
                views.push((dev.clone(), g));
            }
            Some("windows") => {
                windows::inspect(&g, &mut info);
                info.mountpoints = g.mounts();
            }
            _ => continue,
        }
        rep.operating_systems.push(info);
    }
    Ok((rep, views))
}

/// How a subvolume is named in reports: the device alone for the default subvolume (what
/// mounting the device gives), else `btrfsvol:DEVICE/PATH` as virt-inspector names it.
fn subvol_name(dev: &str, r: &fs::BtrfsReport, id: u64) -> String {
    if id == r.default_subvolume {
        return dev.to_string();
    }
    let path = r.subvolumes.iter().find(|s| s.id == id).map_or("", |s| s.path.as_str());
    format!("btrfsvol:{dev}/{path}")
}

/// The subvolume an fstab line's options mount: `subvolid=`, else `subvol=` (a path from
/// the top level), else the default subvolume. `None` if the named one does not exist.
fn fstab_subvolume(r: &fs::BtrfsReport, options: &str) -> Option<u64> {
    let opt = |k: &str| options.split(',').find_map(|o| o.strip_prefix(k));
    if let Some(id) = opt("subvolid=") {
        let id: u64 = id.parse().ok()?;
        return r.subvolumes.iter().any(|s| s.id == id).then_some(id);
    }
    if let Some(p) = opt("subvol=") {
        let p = p.trim_matches('/');
        return r.subvolumes.iter().find(|s| s.path == p).map(|s| s.id);
    }
    Some(r.default_subvolume)
}

/// The subvolumes that are snapshots of `root`: by `parent_uuid`, or snapper's snapshots
/// in the `.snapshots` of `root` (or of the subvolume `root` is itself a snapper snapshot of).
fn snapshots_of(r: &fs::BtrfsReport, root: &fs::Subvolume) -> Vec<u64> {
    let base = |p: &str| -> Option<String> {
        fs::snapper_number(p)?;
        let head = p.strip_suffix("/snapshot")?.rsplit_once('/')?.0;
        Some(head.strip_suffix(".snapshots")?.trim_end_matches('/').to_string())
    };
    let root_base = base(&root.path).unwrap_or_else(|| root.path.clone());
    r.subvolumes
        .iter()
        .filter(|s| s.id != root.id)
        .filter(|s| s.snapshot_of == Some(root.id) || base(&s.path).is_some_and(|b| b == root_base))
        .map(|s| s.id)
        .collect()
}
