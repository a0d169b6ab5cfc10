//! The allocator: a [`VmModel`] and a [`Profile`] → a [`Layout`] where every device has a
//! fixed PCI slot, every disk a stable serial and every NIC a MAC. The result depends only
//! on its inputs: the same VM converted twice gets byte-identical descriptions.

use super::profile::{Profile, SlotClass};
use super::{BlockDriver, DeviceKind, ScsiDisk, Firmware, LayoutError, MachineSpec, NetBackend, PciAddr, SpecBridge, SpecDevice, Topology, VirtioModel, SPEC_VERSION};
use crate::model::{self, NetKind, RemovableKind, VmModel};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// What the conversion writes, as far as the layout needs to know.
#[derive(Clone, Debug, Default)]
pub struct OutputPlan {
    /// The converted guest's name.
    pub name: String,
    /// One output disk file per source disk, in model order.
    pub disk_files: Vec<PathBuf>,
    /// "qcow2" or "raw".
    pub disk_format: String,
    /// One backend per source NIC, in model order (after network mapping). Empty = derive
    /// from the model: a network NIC stays on a network of the same name, a bridge on a bridge.
    pub nic_backends: Vec<NetBackend>,
    /// The virtio model of every device (modern unless the guest needs transitional).
    pub virtio: VirtioModel,
    /// virtio-blk devices, or one virtio-scsi controller holding every disk.
    pub block_driver: BlockDriver,
}

/// A CD-ROM drive on the chipset's storage controller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CdromSlot {
    pub id: String,
    /// AHCI port (q35) or IDE bus*2+unit (pc).
    pub port: u32,
}

/// Everything the writers place: the runtime spec plus the devices only libvirt and QEMU
/// show (video, CD-ROMs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Layout {
    pub spec: MachineSpec,
    pub profile: Profile,
    pub video: PciAddr,
    pub cdroms: Vec<CdromSlot>,
    /// Windows guests keep local time in the RTC.
    pub localtime_rtc: bool,
    pub secure_boot: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub genid: Option<String>,
}

fn slots(class: &SlotClass) -> impl Iterator<Item = PciAddr> + '_ {
    (class.first..=class.last).map(|slot| PciAddr { bus: 0, slot, function: 0 })
}

fn take(profile: &Profile, class: &str, n: usize) -> Result<Vec<PciAddr>, LayoutError> {
    let c = profile.class(class)?;
    let v: Vec<PciAddr> = slots(c).take(n).collect();
    if v.len() < n {
        return Err(LayoutError::TooMany { class: class.into(), count: n, max: v.len(), profile: profile.name.clone() });
    }
    Ok(v)
}

/// Bridges added so far and the next free position behind them.
#[derive(Default)]
struct Expander {
    bridges: Vec<SpecBridge>,
    /// Devices placed behind bridges so far.
    used: usize,
}

impl Expander {
    /// `n` addresses for `class`: its root-bus slots first, then positions behind root ports
    /// (one device each) or bridges (slots 1-31 each), adding those as needed.
    fn take(&mut self, profile: &Profile, class: &str, n: usize) -> Result<Vec<PciAddr>, LayoutError> {
        let c = profile.class(class)?;
        let mut v: Vec<PciAddr> = slots(c).take(n).collect();
        let Some(e) = &profile.expansion else {
            if v.len() < n {
                return Err(LayoutError::TooMany { class: class.into(), count: n, max: v.len(), profile: profile.name.clone() });
            }
            return Ok(v);
        };
        let max = v.len() + e.capacity().saturating_sub(self.used);
        if n > max {
            return Err(LayoutError::TooMany { class: class.into(), count: n, max, profile: profile.name.clone() });
        }
        while v.len() < n {
            let (bridge, slot) = if e.kind == "pcie-root-port" { (self.used, 0u8) } else { (self.used / 31, (self.used % 31 + 1) as u8) };
            if bridge >= self.bridges.len() {
                let k = self.bridges.len();
                let bus = u8::try_from(k + 1).map_err(|_| LayoutError::Plan("more than 254 buses".into()))?;
                let (rslot, function) = if e.kind == "pcie-root-port" { (e.first + (k / 8) as u8, (k % 8) as u8) } else { (e.first + k as u8, 0) };
                self.bridges.push(SpecBridge {
                    id: format!("pci.{bus}"),
                    addr: PciAddr { bus: 0, slot: rslot, function },
                    bus,
                    kind: e.kind.clone(),
                    chassis: bus,
                    port: (e.kind == "pcie-root-port").then(|| e.first_port.wrapping_add(k as u8)),
                });
            }
            let bus = self.bridges.get(bridge).map_or(0, |b| b.bus);
            v.push(PciAddr { bus, slot, function: 0 });
            self.used += 1;
        }
        Ok(v)
    }
}

fn digest(seed: &str, what: &str, index: usize) -> [u8; 32] {
    Sha256::digest(format!("ferry\0{seed}\0{what}\0{index}").as_bytes()).into()
}

/// Stable disk serial: `FRY` + 16 hex digits derived from the VM's identity and the index.
pub fn disk_serial(seed: &str, index: usize) -> String {
    let d = digest(seed, "disk", index);
    let hex: String = d.iter().take(8).map(|b| format!("{b:02X}")).collect();
    format!("FRY{hex}")
}

/// Deterministic locally administered QEMU-range MAC for a NIC the source gave none.
pub fn generated_mac(seed: &str, index: usize) -> String {
    let d = digest(seed, "nic", index);
    format!("52:54:00:{:02x}:{:02x}:{:02x}", d[0], d[1], d[2])
}

/// UUID derived from a name when the source has none (RFC 4122 variant, version 5 bits set).
fn derived_uuid(seed: &str) -> String {
    let mut d = digest(seed, "uuid", 0);
    d[6] = (d[6] & 0x0f) | 0x50;
    d[8] = (d[8] & 0x3f) | 0x80;
    let h: String = d.iter().take(16).map(|b| format!("{b:02x}")).collect();
    model::normalize_uuid(&h).unwrap_or(h)
}

/// Lays out `vm` on `profile`.
pub fn allocate(vm: &VmModel, profile: &Profile, plan: &OutputPlan) -> Result<Layout, LayoutError> {
    if plan.disk_files.len() != vm.disks.len() {
        return Err(LayoutError::Plan(format!("{} output files for {} disks", plan.disk_files.len(), vm.disks.len())));
    }
    if !plan.nic_backends.is_empty() && plan.nic_backends.len() != vm.nics.len() {
        return Err(LayoutError::Plan(format!("{} network backends for {} NICs", plan.nic_backends.len(), vm.nics.len())));
    }
    let seed = vm.bios_uuid.clone().or_else(|| vm.uuid.clone()).unwrap_or_else(|| vm.name.clone());
    let one = |class: &str| -> Result<PciAddr, LayoutError> {
        take(profile, class, 1)?.first().copied().ok_or_else(|| LayoutError::Plan(format!("no slot for {class}")))
    };
    let mut devices = Vec::new();
    let mut expander = Expander::default();
    devices.push(SpecDevice { id: "console0".into(), addr: one("console")?, model: plan.virtio, kind: DeviceKind::VirtioConsole });
    devices.push(SpecDevice { id: "balloon0".into(), addr: one("balloon")?, model: plan.virtio, kind: DeviceKind::VirtioBalloon });
    devices.push(SpecDevice { id: "rng0".into(), addr: one("rng")?, model: plan.virtio, kind: DeviceKind::VirtioRng });
    for (i, (nic, addr)) in vm.nics.iter().zip(expander.take(profile, "nic", vm.nics.len())?).enumerate() {
        let mac = nic.mac.clone().unwrap_or_else(|| generated_mac(&seed, i));
        let backend = match plan.nic_backends.get(i) {
            Some(b) => b.clone(),
            None => match nic.kind {
                NetKind::Network => NetBackend::Network { name: nic.network.clone() },
                NetKind::Bridge => NetBackend::Bridge { name: nic.network.clone() },
            },
        };
        devices.push(SpecDevice { id: format!("net{i}"), addr, model: plan.virtio, kind: DeviceKind::VirtioNet { mac, backend } });
    }
    match plan.block_driver {
        BlockDriver::VirtioBlk => {
            for (i, ((disk, addr), file)) in vm.disks.iter().zip(expander.take(profile, "disk", vm.disks.len())?).zip(&plan.disk_files).enumerate() {
                devices.push(SpecDevice {
                    id: format!("disk{i}"),
                    addr,
                    model: plan.virtio,
                    kind: DeviceKind::VirtioBlk {
                        file: file.clone(),
                        format: plan.disk_format.clone(),
                        serial: disk_serial(&seed, i),
                        readonly: disk.readonly,
                        logical_block_size: 512,
                        physical_block_size: 512,
                        bootindex: (i == 0).then_some(1),
                    },
                });
            }
        }
        // One controller at the disk class's first slot; disk i is target i, LUN 0.
        BlockDriver::VirtioScsi if !vm.disks.is_empty() => {
            let mut disks = Vec::new();
            for (i, (disk, file)) in vm.disks.iter().zip(&plan.disk_files).enumerate() {
                let target = u8::try_from(i).map_err(|_| LayoutError::TooMany { class: "virtio-scsi disk".into(), count: vm.disks.len(), max: 256, profile: profile.name.clone() })?;
                disks.push(ScsiDisk {
                    id: format!("disk{i}"),
                    target,
                    file: file.clone(),
                    format: plan.disk_format.clone(),
                    serial: disk_serial(&seed, i),
                    readonly: disk.readonly,
                    logical_block_size: 512,
                    physical_block_size: 512,
                    bootindex: (i == 0).then_some(1),
                });
            }
            let addr = expander.take(profile, "disk", 1)?.first().copied().ok_or_else(|| LayoutError::Plan("no slot for the virtio-scsi controller".into()))?;
            devices.push(SpecDevice { id: "scsi0".into(), addr, model: plan.virtio, kind: DeviceKind::VirtioScsi { disks } });
        }
        BlockDriver::VirtioScsi => {}
    }
    devices.sort_by_key(|d| d.addr);
    let cdroms: Vec<CdromSlot> = vm
        .removables
        .iter()
        .filter(|r| r.kind == RemovableKind::Cdrom)
        .enumerate()
        .map(|(i, _)| CdromSlot { id: format!("cd{i}"), port: i as u32 })
        .collect();
    if cdroms.len() as u64 > u64::from(profile.cdrom.ports) {
        return Err(LayoutError::TooMany {
            class: "cdrom".into(),
            count: cdroms.len(),
            max: profile.cdrom.ports as usize,
            profile: profile.name.clone(),
        });
    }
    let uuid = vm.uuid.clone().or_else(|| vm.bios_uuid.clone()).unwrap_or_else(|| derived_uuid(&seed));
    let smbios_uuid = vm.bios_uuid.clone().unwrap_or_else(|| uuid.clone());
    let spec = MachineSpec {
        spec_version: SPEC_VERSION,
        name: plan.name.clone(),
        uuid: Some(uuid),
        smbios_uuid: Some(smbios_uuid),
        profile: profile.name.clone(),
        memory_mib: vm.memory_bytes.div_ceil(1 << 20).max(1),
        vcpus: vm.vcpus.max(1),
        max_vcpus: vm.max_vcpus.filter(|&m| m > vm.vcpus.max(1)),
        topology: vm.topology.map(|t| Topology { sockets: t.sockets, cores: t.cores, threads: t.threads }),
        firmware: match vm.firmware {
            model::Firmware::Bios => Firmware::Bios,
            model::Firmware::Uefi => Firmware::Uefi,
        },
        boot: None,
        bridges: expander.bridges,
        devices,
    };
    let os = vm.os_hint.as_deref().unwrap_or("").to_ascii_lowercase();
    Ok(Layout {
        spec,
        profile: profile.clone(),
        video: one("video")?,
        cdroms,
        localtime_rtc: os.starts_with("win") || os.contains("windows"),
        secure_boot: vm.secure_boot,
        genid: vm.genid.clone(),
    })
}
