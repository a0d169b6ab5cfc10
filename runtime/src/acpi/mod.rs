//! ACPI tables built with the `acpi_tables` crate and placed in the BIOS area
//! ([`layout::ACPI_START`]..[`layout::ACPI_END`]), RSDP first, where OSes scan for it:
//! RSDP → XSDT → FADT (→ FACS, DSDT), MADT, MCFG (q35 only, the ECAM window).
mod dsdt;
mod fadt;
mod madt;
mod pcihp;

use crate::cpuid::CpuTopology;
use crate::devices::pm::PmPorts;
use crate::layout;
use crate::pci::Machine;
use acpi_tables::{mcfg::MCFG, rsdp::Rsdp, xsdt::XSDT, Aml};

/// OEM ID in every table header.
pub(crate) const OEM_ID: [u8; 6] = *b"FERRY ";

/// The tables do not fit the reserved area.
#[derive(Debug, thiserror::Error)]
#[error("invalid ACPI table size {0} bytes: the area {start:#x}..{end:#x} holds {cap}", start = layout::ACPI_START, end = layout::ACPI_END, cap = layout::ACPI_END - layout::ACPI_START)]
pub struct AcpiError(pub u64);

/// The tables of one machine, each with its guest-physical address.
#[derive(Clone, Debug)]
pub struct AcpiTables {
    /// (signature, address, bytes); the RSDP first (signature "RSD PTR ").
    pub tables: Vec<(String, u64, Vec<u8>)>,
}

impl AcpiTables {
    /// Address of the RSDP.
    pub fn rsdp_addr(&self) -> u64 {
        layout::ACPI_START
    }
}

/// Builds and places the tables for `profile` and `topo`; on pc every root-bus slot from 3 up
/// takes hot-plugged devices (see [`build_with`]).
pub fn build(profile: Machine, topo: &CpuTopology) -> Result<AcpiTables, AcpiError> {
    build_with(profile, topo, Hotplug::DEFAULT)
}

/// pc's slots with ACPI hotplug objects (bit N = slot N).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hotplug {
    /// The root-bus slots that take hot-plugged devices (0: no hotplug objects).
    pub slots: u32,
    /// Those that hold a device at boot.
    pub present: u32,
    /// PCI bridges on the root bus, in bus-selector order (BSEL 1, 2, ...): all 32 slots of
    /// each take hot-plugged devices.
    pub bridges: Vec<BridgeHotplug>,
}

/// A PCI bridge with hotplug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BridgeHotplug {
    /// Its slot on the root bus.
    pub slot: u8,
    /// The slots behind it holding a device at boot.
    pub present: u32,
}

impl Hotplug {
    /// No hotplug objects.
    pub const NONE: Hotplug = Hotplug { slots: 0, present: 0, bridges: Vec::new() };
    /// When nothing else is known: all but the host bridge (0), the PIIX3 functions (1) and
    /// the VGA (2), which QEMU does not hot-plug; all empty; no bridge.
    pub const DEFAULT: Hotplug = Hotplug { slots: !0b111, present: 0, bridges: Vec::new() };
}

/// Like [`build`], with the DSDT's hotplug slots on pc's root bus given.
pub fn build_with(profile: Machine, topo: &CpuTopology, hotplug: Hotplug) -> Result<AcpiTables, AcpiError> {
    let ports = PmPorts::for_profile(profile);
    let mut next = layout::ACPI_START + 64; // RSDP (36 bytes) at the start
    let mut place = |len: usize, align: u64| {
        let at = next.next_multiple_of(align);
        next = at + len as u64;
        at
    };
    let facs = fadt::facs();
    let facs_at = place(facs.len(), 64);
    let dsdt = dsdt::dsdt(profile, &hotplug);
    let dsdt_at = place(dsdt.len(), 16);
    let fadt = fadt::fadt(profile, ports, dsdt_at, facs_at);
    let fadt_at = place(fadt.len(), 16);
    let madt = madt::madt(topo);
    let madt_at = place(madt.len(), 16);
    let mut tables = vec![
        ("FACS".to_string(), facs_at, facs),
        ("DSDT".to_string(), dsdt_at, dsdt),
        ("FACP".to_string(), fadt_at, fadt),
        ("APIC".to_string(), madt_at, madt),
    ];
    if profile == Machine::Q35 {
        let mut m = MCFG::new(OEM_ID, *b"FERRYMCF", 1);
        m.add_ecam(layout::ECAM_BASE, 0, 0, dsdt::LAST_BUS as u8);
        let mut b = Vec::new();
        m.to_aml_bytes(&mut b);
        let at = place(b.len(), 16);
        tables.push(("MCFG".to_string(), at, b));
    }
    let mut xsdt = XSDT::new(OEM_ID, *b"FERRYXSD", 1);
    for (sig, at, _) in &tables {
        if sig != "FACS" && sig != "DSDT" {
            xsdt.add_entry(*at);
        }
    }
    let mut xb = Vec::new();
    xsdt.to_aml_bytes(&mut xb);
    let xsdt_at = place(xb.len(), 16);
    tables.push(("XSDT".to_string(), xsdt_at, xb));
    if next > layout::ACPI_END {
        return Err(AcpiError(next - layout::ACPI_START));
    }
    let mut rb = Vec::new();
    Rsdp::new(OEM_ID, xsdt_at).to_aml_bytes(&mut rb);
    tables.insert(0, ("RSD PTR ".to_string(), layout::ACPI_START, rb));
    Ok(AcpiTables { tables })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |a, x| a.wrapping_add(*x))
    }

    #[test]
    fn tables_checksum_and_fit() {
        for p in [Machine::Q35, Machine::Pc] {
            for topo in [CpuTopology::flat(1), CpuTopology { sockets: 2, cores: 3, threads: 2 }, CpuTopology::flat(64)] {
                let t = build(p, &topo).expect("fits");
                for (sig, at, b) in &t.tables {
                    assert!(*at >= layout::ACPI_START && at + b.len() as u64 <= layout::ACPI_END, "{sig}");
                    match sig.as_str() {
                        "FACS" => assert_eq!(b.len(), 64),
                        "RSD PTR " => assert_eq!((sum(&b[..20]), sum(b)), (0, 0)),
                        _ => assert_eq!(sum(b), 0, "{sig}"),
                    }
                }
                assert_eq!(t.tables.iter().any(|x| x.0 == "MCFG"), p == Machine::Q35);
            }
        }
    }
}
