//! FADT (full, not hardware-reduced: fixed power button, PM timer, GPE0) and FACS.
use crate::devices::pm::{PmPorts, SCI_IRQ};
use crate::pci::Machine;
use acpi_tables::fadt::{FADTBuilder, Flags};
use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
use acpi_tables::Aml;

/// IAPC_BOOT_ARCH bit: the machine has an 8042 (QEMU sets it on q35, not on pc).
const BOOT_ARCH_8042: u16 = 1 << 1;

fn io(len: u8, access: AccessSize, port: u16) -> GAS {
    GAS::new(AddressSpace::SystemIo, len * 8, 0, access, u64::from(port))
}

/// The FADT pointing at the DSDT and FACS, with the PM blocks at `ports`.
pub fn fadt(profile: Machine, ports: PmPorts, dsdt: u64, facs: u64) -> Vec<u8> {
    let mut b = FADTBuilder::new(super::OEM_ID, *b"FERRYFAC", 1)
        .dsdt_64(dsdt)
        // Also the 32-bit field, as QEMU fills both: SeaBIOS parses the DSDT it names.
        .dsdt_32(u32::try_from(dsdt).unwrap_or(0))
        .firmware_ctrl_64(facs)
        .flag(Flags::Wbinvd)
        .flag(Flags::ProcC1)
        .flag(Flags::SlpButton) // no fixed sleep button
        .flag(Flags::RtcS4)
        .flag(Flags::ResetRegSup)
        .gpe_info(u32::from(ports.gpe0), 0, ports.gpe0_len, 0, 0);
    // SMI_CMD = 0: the machine is always in ACPI mode (SCI_EN reads 1).
    b.sci_int = (SCI_IRQ as u16).into();
    b.pm1a_evt_blk = u32::from(ports.evt).into();
    b.pm1a_cnt_blk = u32::from(ports.cnt).into();
    b.pm_tmr_blk = u32::from(ports.tmr).into();
    b.pm1_evt_len = 4;
    b.pm1_cnt_len = 2;
    b.pm_tmr_len = 4;
    b.x_pm1a_evt_blk = io(4, AccessSize::WordAccess, ports.evt);
    b.x_pm1a_cnt_blk = io(2, AccessSize::WordAccess, ports.cnt);
    b.x_pm_tmr_blk = io(4, AccessSize::DwordAccess, ports.tmr);
    b.x_gpe0_blk = io(ports.gpe0_len, AccessSize::ByteAccess, ports.gpe0);
    b.p_lvl2_lat = 0x0fff_u16.into(); // C2 not supported
    b.p_lvl3_lat = 0x0fff_u16.into(); // C3 not supported
    b.century = 0x32; // CMOS century byte, as the runtime's RTC serves it
    b.iapc_boot_arch = match profile {
        Machine::Q35 => BOOT_ARCH_8042,
        Machine::Pc => 0,
    }
    .into();
    b.reset_reg = io(1, AccessSize::ByteAccess, 0xcf9);
    b.reset_value = 0x06;
    let mut out = Vec::new();
    b.finalize().to_aml_bytes(&mut out);
    out
}

/// The FACS (64 bytes, 64-byte aligned).
pub fn facs() -> Vec<u8> {
    let mut out = Vec::new();
    acpi_tables::facs::FACS::new().to_aml_bytes(&mut out);
    out
}
