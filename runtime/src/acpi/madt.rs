//! MADT: one LAPIC (or x2APIC) entry per vCPU with `cpuid`'s APIC IDs, the IOAPIC, ISA
//! overrides IRQ0 → GSI 2 and IRQs 5, 9 (SCI), 10, 11 level/active-high (QEMU's set), LINT1 NMI.
use crate::cpuid::{apic_id, CpuTopology};
use crate::devices::pm::SCI_IRQ;
use crate::layout;
use crate::tables::ioapic_id;
use acpi_tables::madt::{EnabledStatus, IoApic, ProcessorLocalApic};
use acpi_tables::sdt::Sdt;
use acpi_tables::Aml;

/// MPS INTI flags: level-triggered, active high.
const LEVEL_HIGH: u16 = 0x000d;
/// MADT flags: PC-AT compatible dual 8259s present.
const PCAT_COMPAT: u32 = 1;

fn iso(irq: u8, gsi: u32, flags: u16) -> [u8; 10] {
    let mut e = [2u8, 10, 0, irq, 0, 0, 0, 0, 0, 0];
    e[4..8].copy_from_slice(&gsi.to_le_bytes());
    e[8..10].copy_from_slice(&flags.to_le_bytes());
    e
}

fn x2apic(uid: u32, id: u32) -> [u8; 16] {
    let mut e = [0u8; 16];
    e[0] = 9;
    e[1] = 16;
    e[4..8].copy_from_slice(&id.to_le_bytes());
    e[8..12].copy_from_slice(&1u32.to_le_bytes()); // enabled
    e[12..16].copy_from_slice(&uid.to_le_bytes());
    e
}

/// The MADT for `topo`.
pub fn madt(topo: &CpuTopology) -> Vec<u8> {
    let mut t = Sdt::new(*b"APIC", 44, 3, super::OEM_ID, *b"FERRYAPI", 1);
    t.write_u32(36, layout::LAPIC_ADDR as u32);
    t.write_u32(40, PCAT_COMPAT);
    let mut wide = false;
    for i in 0..topo.vcpus() {
        let id = apic_id(topo, i);
        match (u8::try_from(i), u8::try_from(id)) {
            (Ok(uid), Ok(id8)) if id8 != 0xff => {
                let mut b = Vec::new();
                ProcessorLocalApic::new(uid, id8, EnabledStatus::Enabled).to_aml_bytes(&mut b);
                t.append_slice(&b);
            }
            _ => {
                t.append_slice(&x2apic(i, id));
                wide = true;
            }
        }
    }
    let mut b = Vec::new();
    IoApic::new(ioapic_id(topo), layout::IOAPIC_ADDR as u32, 0).to_aml_bytes(&mut b);
    t.append_slice(&b);
    t.append_slice(&iso(0, 2, 0));
    // QEMU's set: the SCI and the PCI-link IRQs 5, 10, 11 are level, active high.
    for irq in [5u8, SCI_IRQ as u8, 10, 11] {
        t.append_slice(&iso(irq, u32::from(irq), LEVEL_HIGH));
    }
    t.append_slice(&[4, 6, 0xff, 0, 0, 1]); // LAPIC NMI: all processors, LINT1
    if wide {
        t.append_slice(&[0x0a, 12, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0]); // x2APIC NMI, LINT1
    }
    t.as_slice().to_vec()
}
