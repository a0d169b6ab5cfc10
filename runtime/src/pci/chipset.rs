//! The chipset functions of each machine profile, with the config headers QEMU presents
//! (`-machine q35|pc -nodefaults`; measured with the pcidump micro-guest).
use super::config::{BarKind, ConfigSpace};

/// QEMU's default PCI subsystem (Red Hat, "QEMU").
pub const QEMU_SUBSYSTEM: (u16, u16) = (0x1af4, 0x1100);

/// A chipset function: (slot, function, header).
pub type Stub = (u8, u8, ConfigSpace);

/// The machine profiles this runtime knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// q35 + ICH9 (`-machine q35`).
    Q35V1,
    /// i440FX + PIIX3/4 (`-machine pc`).
    PcV1,
}

impl Profile {
    /// Parses a profile name from the spec.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "q35-v1" => Some(Profile::Q35V1),
            "pc-v1" => Some(Profile::PcV1),
            _ => None,
        }
    }
    /// QEMU's machine type name.
    pub fn qemu_machine(&self) -> &'static str {
        match self {
            Profile::Q35V1 => "q35",
            Profile::PcV1 => "pc",
        }
    }
    /// QEMU's root bus name.
    pub fn qemu_root_bus(&self) -> &'static str {
        match self {
            Profile::Q35V1 => "pcie.0",
            Profile::PcV1 => "pci.0",
        }
    }
    /// The chipset stubs.
    pub fn chipset(&self) -> Vec<Stub> {
        match self {
            Profile::Q35V1 => q35(),
            Profile::PcV1 => pc(),
        }
    }
}

fn q35() -> Vec<Stub> {
    let mut mch = ConfigSpace::new(0x8086, 0x29c0, 0x0600_0000, 0, QEMU_SUBSYSTEM);
    mch.writable(0x40, 0x100);
    mch.set16(0x50, 0x0010); // GGC
    mch.set32(0x60, (crate::layout::ECAM_BASE as u32) | 1); // PCIEXBAR: 256 buses, enabled
    mch.set8(0x9d, 0x02); // SMRAM
    mch.set8(0x9e, 0x38); // ESMRAMC
    let mut lpc = ConfigSpace::new(0x8086, 0x2918, 0x0601_0002, 0x80, QEMU_SUBSYSTEM);
    lpc.writable(0x40, 0x100);
    lpc.set32(0x60, 0x8080_8080); // PIRQA-D routing: disabled
    lpc.set32(0x68, 0x8080_8080); // PIRQE-H
    let mut ahci = ConfigSpace::new(0x8086, 0x2922, 0x0106_0102, 0x80, QEMU_SUBSYSTEM);
    ahci.add_bar(4, 0x20, BarKind::Io);
    ahci.add_bar(5, 0x1000, BarKind::Mem32);
    ahci.set8(0x3d, 1);
    ahci.set_cap_head(0x80);
    ahci.add_cap(0x80, 0x05, 0xa8, &[0x80, 0x00], &[0x01, 0x00]); // MSI, 64-bit capable
    ahci.writable(0x84, 0x90); // MSI address and data
    ahci.add_cap(0xa8, 0x12, 0x00, &[0x10, 0x00, 0x48, 0x00, 0x00, 0x00], &[]); // SATA, BAR offset
    let mut smbus = ConfigSpace::new(0x8086, 0x2930, 0x0c05_0002, 0x80, QEMU_SUBSYSTEM);
    smbus.add_bar(4, 0x40, BarKind::Io);
    smbus.set8(0x3d, 1);
    smbus.writable(0x40, 0x41);
    vec![(0, 0, mch), (0x1f, 0, lpc), (0x1f, 2, ahci), (0x1f, 3, smbus)]
}

fn pc() -> Vec<Stub> {
    let mut host = ConfigSpace::new(0x8086, 0x1237, 0x0600_0002, 0, QEMU_SUBSYSTEM);
    host.writable(0x50, 0x80); // PAM, SMRAM
    host.set8(0x72, 0x02); // SMRAM
    let mut isa = ConfigSpace::new(0x8086, 0x7000, 0x0601_0000, 0x80, QEMU_SUBSYSTEM);
    isa.set16(6, 0x0200); // status: DEVSEL medium
    isa.writable(0x4c, 0x100);
    isa.set32(0x60, 0x8080_8080);
    let mut ide = ConfigSpace::new(0x8086, 0x7010, 0x0101_8000, 0, QEMU_SUBSYSTEM);
    ide.set16(6, 0x0280);
    ide.add_bar(4, 0x10, BarKind::Io);
    ide.writable(0x40, 0x44);
    let mut pm = ConfigSpace::new(0x8086, 0x7113, 0x0680_0003, 0, QEMU_SUBSYSTEM);
    pm.set16(6, 0x0280);
    pm.set8(0x3c, 0x09);
    pm.set8(0x3d, 1);
    pm.writable(0x40, 0xe0);
    vec![(0, 0, host), (1, 0, isa), (1, 1, ide), (1, 3, pm)]
}
