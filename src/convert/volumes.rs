//! Where the guest's filesystems live on the overlays, for editing: a partition or whole disk
//! (a byte window of one overlay), or an LVM logical volume (a [`WritableLv`] over the
//! overlay windows holding its PVs, linear or striped, across disks).

use super::linux::Overlay;
use anyhow::Context;
use ferry_converters::lv::{PvPlace, WritableLv};
use ferry_formats::disk::{BlockDevice, WritableDevice};
use ferry_inspectors::partition::{partition_device, partition_name};
use ferry_inspectors::{lvm, Device, Inspection};
use std::sync::Arc;

/// A partition or whole disk found by inspection: which disk, where, its guest name.
pub struct Place {
    pub disk: usize,
    pub start: u64,
    pub len: u64,
    pub guest_name: String,
}

/// Maps inspection's device name (`/dev/sda1`, or a whole disk) to its disk and byte range.
pub fn locate(rep: &Inspection, overlays: &[Arc<Overlay>], names: &[String], dev: &str) -> Option<Place> {
    for (i, d) in rep.disks.iter().enumerate() {
        let guest = names.get(i)?;
        if d.name == dev {
            return Some(Place { disk: i, start: 0, len: overlays.get(i)?.size(), guest_name: guest.clone() });
        }
        for p in d.partition_table.iter().flat_map(|t| &t.partitions) {
            if partition_name(&d.name, p.number) == dev {
                let guest_name = partition_name(guest, p.number);
                return Some(Place { disk: i, start: p.start, len: p.size, guest_name });
            }
        }
    }
    None
}

/// The guest's name (`sda1`, `xvda1`) of inspection's device `dev`, for partitions and disks.
pub fn locate_name(rep: &Inspection, names: &[String], dev: &str) -> Option<String> {
    for (i, d) in rep.disks.iter().enumerate() {
        let guest = names.get(i)?;
        if d.name == dev {
            return Some(guest.clone());
        }
        for p in d.partition_table.iter().flat_map(|t| &t.partitions) {
            if partition_name(&d.name, p.number) == dev {
                return Some(partition_name(guest, p.number));
            }
        }
    }
    None
}

/// A writable block view of one guest filesystem and the name it goes by in messages.
pub struct Editable<'a> {
    pub dev: &'a dyn WritableDevice,
    pub start: u64,
    pub len: u64,
    /// `sda1 (disk.vmdk)`, or the LV's `/dev/vg0/root`.
    pub name: String,
}

/// The guest's disks (overlays) and the writable LVs built over them.
pub struct Volumes<'a> {
    overlays: &'a [Arc<Overlay>],
    lvs: Vec<WritableLv>,
    /// LVs whose writable view could not be built, and why.
    failed: Vec<(String, String)>,
}

impl<'a> Volumes<'a> {
    /// Scans the PVs inspection found on the overlays (partitions or whole disks; PVs on md
    /// arrays are not), assembles their VGs and builds a writable view of every linear or
    /// striped LV whose PVs all are on the overlays. LVs that cannot be built are skipped
    /// here and reported when something on them is opened.
    pub fn new(rep: &Inspection, overlays: &'a [Arc<Overlay>], names: &[String]) -> anyhow::Result<Self> {
        let pv_devs: Vec<&str> = rep
            .filesystems
            .iter()
            .filter(|f| f.fstype == "LVM2_member")
            .map(|f| f.device.as_str())
            .collect();
        let mut pvs = Vec::new();
        for name in &pv_devs {
            let Some(p) = locate(rep, overlays, names, name) else { continue };
            let disk: Arc<dyn BlockDevice> = overlays.get(p.disk).context("disk index out of range")?.clone();
            let dev = match p.start == 0 && p.len == disk.size() {
                true => Device::new(name.to_string(), disk),
                false => {
                    let whole = Device::new(
                        rep.disks.get(p.disk).map(|d| d.name.clone()).unwrap_or_default(),
                        disk,
                    );
                    let part = rep
                        .disks
                        .get(p.disk)
                        .and_then(|d| d.partition_table.as_ref())
                        .and_then(|t| t.partitions.iter().find(|q| q.start == p.start && q.size == p.len))
                        .with_context(|| format!("{name}: partition vanished"))?;
                    partition_device(&whole, part)?
                }
            };
            if let Some(pv) = lvm::scan_pv(&dev)? {
                pvs.push(pv);
            }
        }
        let (_, lvdevs) = lvm::logical_volumes(&pvs);
        let place_of = |pv: &str| {
            let p = locate(rep, overlays, names, pv)?;
            let dev: Arc<dyn WritableDevice> = overlays.get(p.disk)?.clone();
            Some(PvPlace { dev, base: p.start, len: p.len })
        };
        let (mut lvs, mut failed) = (Vec::new(), Vec::new());
        for lv in &lvdevs {
            match WritableLv::new(lv, place_of) {
                Ok(w) => lvs.push(w),
                Err(e) => failed.push((lv.name.to_string_lossy().into_owned(), e.to_string())),
            }
        }
        Ok(Volumes { overlays, lvs, failed })
    }

    /// Opens inspection's device `dev` for writing: a partition, a whole disk or an LV (by
    /// `/dev/VG/LV`). `None` when it is none of them; an LV whose mapping cannot be built
    /// is an error saying why.
    pub fn open(
        &self,
        rep: &Inspection,
        names: &[String],
        describe: impl Fn(usize) -> String,
        dev: &str,
    ) -> anyhow::Result<Option<Editable<'_>>> {
        if let Some(p) = locate(rep, self.overlays, names, dev) {
            let overlay = self.overlays.get(p.disk).context("disk index out of range")?;
            return Ok(Some(Editable {
                dev: &**overlay,
                start: p.start,
                len: p.len,
                name: format!("{} ({})", p.guest_name, describe(p.disk)),
            }));
        }
        if let Some(lv) = self.lvs.iter().find(|l| l.name().as_os_str() == dev) {
            return Ok(Some(Editable {
                dev: lv,
                start: 0,
                len: lv.size(),
                name: dev.to_string(),
            }));
        }
        if let Some((_, why)) = self.failed.iter().find(|(n, _)| n == dev) {
            anyhow::bail!("{why}");
        }
        let refused = rep
            .volume_groups
            .iter()
            .flat_map(|vg| vg.lvs.iter().map(move |lv| (format!("/dev/{}/{}", vg.name, lv.name), lv)))
            .find(|(n, _)| n == dev);
        match refused {
            Some((_, lv)) => match &lv.refused {
                Some(r) => anyhow::bail!("{r}"),
                None => anyhow::bail!(
                    "{dev}: a physical volume of it is not a partition or whole disk (PVs on md RAID are not edited)"
                ),
            },
            None => Ok(None),
        }
    }
}
