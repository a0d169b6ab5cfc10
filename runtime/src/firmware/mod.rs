//! Firmware boot, as QEMU's q35 and pc machines present it to SeaBIOS: the image mapped
//! read-only below 4 GiB with its last 128 KiB at 0xe0000 behind the chipset's PAM
//! ([`pam`]), fw_cfg ([`fw_cfg`]) with the ACPI tables as a loader script ([`loader`]),
//! `etc/e820`, SMBIOS and `bootorder`, the CMOS fields ([`cmos`]) and the small ports
//! ([`ports`]). The vCPUs start from their reset state (real mode at 0xffff_fff0).
//! OVMF instead boots from two flash units ([`pflash`]): its code below 4 GiB and the VM's
//! variable store (NVRAM file) right below it.
pub mod cmos;
pub mod fw_cfg;
pub mod loader;
pub mod pam;
pub mod pflash;
pub mod ports;

use std::os::unix::fs::OpenOptionsExt;
use crate::acpi::AcpiTables;
use crate::cpuid::CpuTopology;
use crate::layout;
use crate::memory::Memory;
use crate::pci::Machine;
use ferry_formats::layout::{DeviceKind, SpecBridge, SpecDevice};
use fw_cfg::FwCfg;
use kvm_bindings::{kvm_userspace_memory_region, KVM_MEM_READONLY};
use kvm_ioctls::VmFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend};

/// Largest firmware image (QEMU's pc machines map up to 16 MiB below 4 GiB).
pub const MAX_IMAGE: usize = 16 << 20;
/// KVM slot of the image below 4 GiB.
const ROM_SLOT: u32 = 31;
/// Where a firmware boot puts KVM's identity-map page and TSS: QEMU's addresses (its
/// `kvm_arch_init`), reserved in `etc/e820` as QEMU reserves them.
pub const KVM_PAGES: (u64, u64) = (0xfeff_c000, 0x4000);

/// The firmware to boot from.
#[derive(Clone, Debug)]
pub struct FirmwareImage {
    /// The file it was read from (for messages).
    pub name: String,
    /// Its bytes.
    pub data: Arc<[u8]>,
    /// Also write the debug console (port 0x402) to this file.
    pub debugcon: Option<PathBuf>,
    /// `bootorder` lines ([`boot_order`] of the spec).
    pub boot_order: Vec<String>,
    /// OVMF: the VM's variable store, flash unit 1 (the image is then unit 0).
    pub vars: Option<Nvram>,
}

/// A VM's UEFI variable store: its NVRAM file, open read-write.
#[derive(Clone, Debug)]
pub struct Nvram {
    /// The file's path (for messages).
    pub name: String,
    /// The open file: flash writes go to it.
    pub file: Arc<std::fs::File>,
}

impl Nvram {
    /// Reads the whole store (bounded by the flash limit; a larger file is refused by size).
    pub fn read(&self) -> Result<Vec<u8>, FirmwareError> {
        use std::os::unix::fs::FileExt;
        let err = |e: &dyn std::fmt::Display| FirmwareError::Item(self.name.escape_debug().to_string(), e.to_string());
        let len = self.file.metadata().map_err(|e| err(&e))?.len();
        if len > pflash::FLASH_LIMIT {
            return Err(err(&format!("invalid size {len} bytes: over QEMU's 8 MiB flash limit")));
        }
        let mut b = vec![0u8; len as usize];
        self.file.read_exact_at(&mut b, 0).map_err(|e| err(&e))?;
        Ok(b)
    }
}

/// The image or the machine cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum FirmwareError {
    /// Not a size QEMU would map.
    #[error("invalid firmware {0}: size {1} bytes is not a multiple of 64 KiB in 64 KiB..=16 MiB")]
    Size(String, usize),
    /// KVM refused a mapping.
    #[error("firmware {0}: {1}")]
    Kvm(String, String),
    /// Building an fw_cfg item.
    #[error("firmware {0}: {1}")]
    Item(String, String),
}

/// Checks the image's size: `-bios` (64 KiB multiples) or, with a variable store of
/// `vars` bytes, pflash units as QEMU checks them.
pub fn check_image(name: &str, data: &[u8], vars: Option<(&str, usize)>) -> Result<(), FirmwareError> {
    if let Some(v) = vars {
        return pflash::Pflash::check(&[(name, data.len()), v]).map_err(|e| FirmwareError::Item(name.escape_debug().to_string(), e.to_string()));
    }
    if data.is_empty() || !data.len().is_multiple_of(0x10000) || data.len() > MAX_IMAGE {
        return Err(FirmwareError::Size(name.escape_debug().to_string(), data.len()));
    }
    Ok(())
}

/// QEMU's boot device paths (`bootorder`) of the disks with a `bootindex`, in its order:
/// `/pci@i0cf8/scsi@SLOT[,FN]/disk@0,0` for a virtio-blk function on the root bus, and
/// `/pci@i0cf8/pci-bridge@BSLOT[,BFN]/scsi@SLOT[,FN]/disk@0,0` behind the bridge (PCIe root
/// port or PCI bridge) serving its bus; a virtio-scsi disk is `.../scsi@SLOT/channel@0/disk@TARGET,0`
/// (QEMU's SCSI bus path). A disk on a bus no bridge serves is left out.
pub fn boot_order(devices: &[SpecDevice], bridges: &[SpecBridge]) -> Vec<String> {
    let at = |slot: u8, function: u8| if function == 0 { format!("{slot:x}") } else { format!("{slot:x},{function:x}") };
    let mut disks: Vec<(u32, String)> = Vec::new();
    for d in devices {
        let prefix = if d.addr.bus == 0 {
            String::new()
        } else {
            let Some(b) = bridges.iter().find(|b| b.bus == d.addr.bus && b.addr.bus == 0) else { continue };
            format!("/pci-bridge@{}", at(b.addr.slot, b.addr.function))
        };
        let fn_path = format!("/pci@i0cf8{prefix}/scsi@{}", at(d.addr.slot, d.addr.function));
        match &d.kind {
            DeviceKind::VirtioBlk { bootindex: Some(i), .. } => disks.push((*i, format!("{fn_path}/disk@0,0"))),
            DeviceKind::VirtioScsi { disks: on } => {
                disks.extend(on.iter().filter_map(|s| s.bootindex.map(|i| (i, format!("{fn_path}/channel@0/disk@{:x},0", s.target)))));
            }
            _ => {}
        }
    }
    disks.sort();
    disks.into_iter().map(|(_, p)| p).collect()
}

/// `etc/e820` as QEMU writes it: RAM below the PCI hole and above 4 GiB, KVM's pages reserved.
pub fn e820(mem_bytes: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut add = |addr: u64, len: u64, kind: u32| {
        out.extend_from_slice(&addr.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
    };
    for (start, len) in layout::ram_ranges(mem_bytes) {
        add(start, len, 1);
    }
    add(KVM_PAGES.0, KVM_PAGES.1, 2);
    out
}

/// What the fw_cfg device serves for one machine.
pub struct Items<'a> {
    /// RAM.
    pub mem_bytes: u64,
    /// vCPUs.
    pub topology: &'a CpuTopology,
    /// The tables a direct boot gets.
    pub acpi: &'a AcpiTables,
    /// SMBIOS UUID in the type-1 (mixed-endian) byte order, if any.
    pub uuid: Option<[u8; 16]>,
    /// SMBIOS product name.
    pub name: &'a str,
    /// `bootorder` lines.
    pub boot_order: &'a [String],
}

/// Builds the fw_cfg device.
pub fn fw_cfg(items: &Items, fw: &str) -> Result<FwCfg, FirmwareError> {
    let err = |e: &dyn std::fmt::Display| FirmwareError::Item(fw.to_string(), e.to_string());
    let mut f = FwCfg::new();
    let n = items.topology.vcpus();
    let max_apic = (0..n).map(|i| crate::cpuid::apic_id(items.topology, i)).max().unwrap_or(0);
    f.set(fw_cfg::KEY_RAM_SIZE, items.mem_bytes.to_le_bytes().to_vec());
    f.set(fw_cfg::KEY_NOGRAPHIC, 0u16.to_le_bytes().to_vec());
    f.set(fw_cfg::KEY_NB_CPUS, (n as u16).to_le_bytes().to_vec());
    f.set(fw_cfg::KEY_MAX_CPUS, (n as u16).to_le_bytes().to_vec());
    f.set(fw_cfg::KEY_BOOT_MENU, 0u16.to_le_bytes().to_vec());
    f.set(fw_cfg::KEY_IRQ0_OVERRIDE, 1u32.to_le_bytes().to_vec());
    f.set(fw_cfg::KEY_ACPI_TABLES, 0u16.to_le_bytes().to_vec());
    f.set(fw_cfg::KEY_NUMA, vec![0u8; 8 + 8 * (max_apic as usize + 1)]);
    if let Some(u) = items.uuid {
        // fw_cfg carries the UUID in the string's byte order; SMBIOS type 1 swaps 3 fields.
        let mut b = u;
        b[0..4].reverse();
        b[4..6].reverse();
        b[6..8].reverse();
        f.set(fw_cfg::KEY_UUID, b.to_vec());
    }
    let files = loader::build(items.acpi).map_err(|e| err(&e))?;
    f.add_file(loader::TABLES_FILE, files.tables).map_err(|e| err(&e))?;
    f.add_file(loader::RSDP_FILE, files.rsdp).map_err(|e| err(&e))?;
    f.add_file(loader::LOADER_FILE, files.loader).map_err(|e| err(&e))?;
    f.add_file("etc/e820", e820(items.mem_bytes)).map_err(|e| err(&e))?;
    let smbios = crate::tables::smbios(0, items.uuid, items.name);
    let (anchor, tables) = smbios.split_at(0x20.min(smbios.len()));
    f.add_file("etc/smbios/smbios-anchor", anchor[..0x1f.min(anchor.len())].to_vec()).map_err(|e| err(&e))?;
    f.add_file("etc/smbios/smbios-tables", tables.to_vec()).map_err(|e| err(&e))?;
    if !items.boot_order.is_empty() {
        let mut b = items.boot_order.join("\n").into_bytes();
        b.push(0);
        f.add_file("bootorder", b).map_err(|e| err(&e))?;
    }
    f.add_file("etc/boot-fail-wait", u32::MAX.to_le_bytes().to_vec()).map_err(|e| err(&e))?;
    Ok(f)
}

/// The firmware devices of one boot.
pub struct Devices {
    /// fw_cfg.
    pub fw_cfg: Mutex<FwCfg>,
    /// PAM segments.
    pub pam: Arc<Mutex<pam::Pam>>,
    /// Debug console and the other ISA ports.
    pub ports: Mutex<ports::Ports>,
    /// OVMF's flash units.
    pub pflash: Option<Mutex<pflash::Pflash>>,
    /// Guest RAM (fw_cfg DMA).
    pub mem: Memory,
    _rom: Memory,
}

impl Devices {
    /// Maps `image` below 4 GiB and behind PAM, and builds the devices.
    pub fn new(vm: &Arc<VmFd>, mem: &Memory, image: &FirmwareImage, machine: Machine, cfg: FwCfg) -> Result<Self, FirmwareError> {
        let kvm = |e: &dyn std::fmt::Display| FirmwareError::Kvm(image.name.clone(), e.to_string());
        let len = image.data.len() as u64;
        let (rom, flash) = match &image.vars {
            Some(vars) => {
                let data = vars.read()?;
                check_image(&image.name, &image.data, Some((&vars.name, data.len())))?;
                let units = vec![
                    pflash::UnitSource { name: image.name.clone(), data: image.data.clone(), readonly: true, file: None },
                    pflash::UnitSource { name: vars.name.clone(), data: data.into(), readonly: false, file: Some(vars.file.clone()) },
                ];
                let p = pflash::Pflash::new(vm.clone(), units).map_err(|e| kvm(&e))?;
                let rom = p.memory(0).cloned().ok_or_else(|| kvm(&"no unit 0"))?;
                (rom, Some(Mutex::new(p)))
            }
            None => {
                check_image(&image.name, &image.data, None)?;
                let rom = Memory::from_ranges(&[(GuestAddress(0), image.data.len())]).map_err(|e| kvm(&e))?;
                rom.write_slice(&image.data, GuestAddress(0)).map_err(|e| kvm(&e))?;
                let host = rom.get_host_address(GuestAddress(0)).map_err(|e| kvm(&e))?;
                let r = kvm_userspace_memory_region {
                    slot: ROM_SLOT,
                    flags: KVM_MEM_READONLY,
                    guest_phys_addr: (1u64 << 32) - len,
                    memory_size: len,
                    userspace_addr: host as u64,
                };
                // SAFETY: `host..host+len` is `rom`'s mapping, which `Devices` keeps (as `_rom`,
                // and inside `Pam`) as long as the `Vm` that owns both it and the VM fd.
                unsafe { vm.set_user_memory_region(r) }.map_err(|e| kvm(&e))?;
                (rom, None)
            }
        };
        let pam = pam::Pam::new(vm.clone(), mem.clone(), rom.clone(), len).map_err(|e| kvm(&e))?;
        let sink: Option<Box<dyn std::io::Write + Send>> = match &image.debugcon {
            Some(p) => Some(Box::new(
                std::fs::OpenOptions::new().create(true).append(true).custom_flags(libc::O_NOFOLLOW).open(p).map_err(|e| FirmwareError::Item(p.display().to_string(), e.to_string()))?,
            )),
            None => None,
        };
        Ok(Devices {
            fw_cfg: Mutex::new(cfg),
            pam: Arc::new(Mutex::new(pam)),
            ports: Mutex::new(ports::Ports::new(machine == Machine::Q35, sink)),
            pflash: flash,
            mem: mem.clone(),
            _rom: rom,
        })
    }

    /// Port reads the firmware devices decode; false for other ports.
    pub fn pio_read(&self, port: u16, data: &mut [u8]) -> bool {
        if FwCfg::decodes(port) {
            if let Ok(mut f) = self.fw_cfg.lock() {
                f.read(port, data);
            }
            return true;
        }
        let Ok(mut p) = self.ports.lock() else { return false };
        if p.decodes(port) {
            p.read(port, data);
            return true;
        }
        false
    }

    /// Port writes; None if the port is not theirs, Some(action) otherwise.
    pub fn pio_write(&self, port: u16, data: &[u8]) -> Option<Option<crate::devices::Action>> {
        if FwCfg::decodes(port) {
            if let Ok(mut f) = self.fw_cfg.lock() {
                f.write(port, data, &self.mem);
            }
            return Some(None);
        }
        let mut p = self.ports.lock().ok()?;
        p.decodes(port).then(|| p.write(port, data))
    }

    /// An MMIO write that exited inside the PAM area or a flash unit; false outside them.
    pub fn mmio_write(&self, addr: u64, data: &[u8]) -> bool {
        if let Some(f) = &self.pflash {
            if let Ok(mut f) = f.lock() {
                match f.write(addr, data) {
                    Ok(true) => return true,
                    Ok(false) => {}
                    Err(e) => {
                        eprintln!("ferry runtime: {e}");
                        return true;
                    }
                }
            }
        }
        self.pam.lock().map(|p| p.write(addr, data)).unwrap_or(false)
    }

    /// An MMIO read that exited inside a flash unit (a command mode); false elsewhere.
    pub fn mmio_read(&self, addr: u64, data: &mut [u8]) -> bool {
        self.pflash.as_ref().and_then(|f| f.lock().ok()).is_some_and(|mut f| f.read(addr, data))
    }

    /// The debug console's bytes so far.
    pub fn debugcon(&self) -> Vec<u8> {
        self.ports.lock().ok().and_then(|p| p.debugcon.lock().ok().map(|d| d.clone())).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_formats::layout::{PciAddr, ScsiDisk, VirtioModel};

    #[test]
    fn boot_order_uses_qemu_device_paths() {
        let disk = |slot, function, bootindex| SpecDevice {
            id: format!("d{slot}"),
            addr: PciAddr { bus: 0, slot, function },
            model: VirtioModel::Modern,
            kind: DeviceKind::VirtioBlk {
                file: "x".into(),
                format: "raw".into(),
                serial: "s".into(),
                readonly: false,
                logical_block_size: 512,
                physical_block_size: 512,
                bootindex,
            },
        };
        let mut behind = disk(0, 0, Some(4));
        behind.addr.bus = 1;
        let mut orphan = disk(0, 0, Some(5));
        orphan.addr.bus = 7;
        let scsi_disk = |target: u8, bootindex| ScsiDisk { id: format!("s{target}"), target, file: "x".into(), format: "raw".into(), serial: "s".into(), readonly: false, logical_block_size: 512, physical_block_size: 512, bootindex };
        let scsi = SpecDevice { id: "scsi0".into(), addr: PciAddr { bus: 0, slot: 0x0e, function: 0 }, model: VirtioModel::Modern, kind: DeviceKind::VirtioScsi { disks: vec![scsi_disk(0, None), scsi_disk(0x11, Some(6))] } };
        let devs = [disk(0x0d, 0, Some(2)), disk(4, 0, Some(1)), disk(5, 1, None), disk(0x1e, 3, Some(3)), behind, orphan, scsi];
        let rp = SpecBridge { id: "rp1".into(), addr: PciAddr { bus: 0, slot: 0x1c, function: 0 }, bus: 1, kind: "pcie-root-port".into(), chassis: 1, port: Some(0x10) };
        assert_eq!(
            boot_order(&devs, &[rp]),
            [
                "/pci@i0cf8/scsi@4/disk@0,0",
                "/pci@i0cf8/scsi@d/disk@0,0",
                "/pci@i0cf8/scsi@1e,3/disk@0,0",
                "/pci@i0cf8/pci-bridge@1c/scsi@0/disk@0,0",
                "/pci@i0cf8/scsi@e/channel@0/disk@11,0"
            ]
        );
    }

    #[test]
    fn image_sizes_and_e820() {
        assert!(check_image("x", &[0; 0x40000], None).is_ok());
        assert!(check_image("x", &[0; 1000], None).is_err());
        assert!(check_image("x", &[], None).is_err());
        assert!(check_image("x", &[0; 0x37c000], Some(("v", 0x84000))).is_ok());
        assert!(check_image("x", &[0; 0x37c000], None).is_err());
        let e = e820(128 << 20);
        assert_eq!(e.len(), 40);
        assert_eq!(&e[8..16], &(128u64 << 20).to_le_bytes());
    }
}
