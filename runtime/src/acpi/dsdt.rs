//! DSDT: `\_SB.PCI0` host bridge with the runtime's bus range and I/O + MMIO windows, COM1,
//! RTC, PS/2 keyboard controller, and `\_S5`; a `_PRT` routing INTx straight to GSIs (APIC mode);
//! on pc, the ACPI PCI hotplug objects of the root bus's hot-pluggable slots ([`super::pcihp`]).
use crate::devices::intx;
use crate::devices::pm::S5_SLP_TYP;
use crate::layout;
use crate::pci::Machine;
use acpi_tables::aml::{
    AddressSpace, AddressSpaceCacheable, And, Arg, CreateDWordField, Device, EISAName, Else, Equal, If, Interrupt, Local, Method, Name, NotEqual, Or,
    Package, Path, ResourceTemplate, Return, Scope, Store, Uuid, IO,
};
use acpi_tables::sdt::Sdt;
use acpi_tables::Aml;

/// AML already encoded.
pub(super) struct Raw(pub(super) Vec<u8>);

impl Aml for Raw {
    fn to_aml_bytes(&self, sink: &mut dyn acpi_tables::AmlSink) {
        sink.vec(&self.0);
    }
}

/// Buses decoded by the ECAM window (1 MiB per bus).
pub const LAST_BUS: u16 = (layout::ECAM_SIZE >> 20) as u16 - 1;

fn isa_device(name: &str, hid: &str, ports: &[(u16, u8)], irq: u32, uid: Option<u8>) -> Vec<u8> {
    let ios: Vec<IO> = ports.iter().map(|&(base, len)| IO::new(base, base, 1, len)).collect();
    let int = Interrupt::new(true, true, false, false, irq);
    let mut res: Vec<&dyn Aml> = ios.iter().map(|i| i as &dyn Aml).collect();
    res.push(&int);
    let crs = ResourceTemplate::new(res);
    let hid = EISAName::new(hid);
    let hid_n = Name::new("_HID".into(), &hid);
    let crs_n = Name::new("_CRS".into(), &crs);
    let uid_v = uid.unwrap_or(0);
    let uid_n = Name::new("_UID".into(), &uid_v);
    let mut children: Vec<&dyn Aml> = vec![&hid_n, &crs_n];
    if uid.is_some() {
        children.push(&uid_n);
    }
    let mut out = Vec::new();
    Device::new(name.into(), children).to_aml_bytes(&mut out);
    out
}

/// `_PRT` rows (address, pin 0..3, GSI) for the INTx routing of [`intx::gsi`], APIC mode.
fn prt_rows(profile: Machine) -> Vec<(u32, u8, u32)> {
    let mut rows = Vec::new();
    for slot in 0..32u8 {
        for pin in 0..4u8 {
            if let Some(gsi) = intx::gsi(profile, slot, pin + 1) {
                rows.push(((u32::from(slot) << 16) | 0xffff, pin, gsi));
            }
        }
    }
    rows
}

/// PCI Express `_OSC` (q35): grants SHPC, PME, AER and PCIe capability control but not native
/// PCIe hotplug — QEMU's mask 0x1e while ACPI PCI hotplug is on, which it is for the profiles'
/// pc-q35-7.2 (ICH9 `acpi-pci-hotplug-with-bridge-support`; read from QEMU 10's DSDT): guests
/// then leave the root ports' hot-plug slots to ACPI, as under QEMU. Flags masked bits and
/// unknown revisions, rejects other UUIDs.
fn osc() -> Vec<u8> {
    let (cdw1, cdw3): (Path, Path) = ("CDW1".into(), "CDW3".into());
    let (zero, eight, one) = (0u8, 8u8, 1u8);
    let c1 = CreateDWordField::new(&cdw1, &Arg(3), &zero);
    let c3 = CreateDWordField::new(&cdw3, &Arg(3), &eight);
    let (mask, unknown_rev, masked, bad_uuid) = (0x1eu8, 0x08u8, 0x10u8, 0x04u8);
    let keep = And::new(&Local(0), &cdw3, &mask);
    let rev = Or::new(&cdw1, &cdw1, &unknown_rev);
    let (arg1, local0) = (Arg(1), Local(0));
    let rev_differs = NotEqual::new(&arg1, &one);
    let if_rev = If::new(&rev_differs, vec![&rev]);
    let flag = Or::new(&cdw1, &cdw1, &masked);
    let was_masked = NotEqual::new(&cdw3, &local0);
    let if_masked = If::new(&was_masked, vec![&flag]);
    let store = Store::new(&cdw3, &Local(0));
    let uuid = Uuid::new("33DB4D5B-1FF7-401C-9657-7441C03DD766");
    let is_pcie = Equal::new(&Arg(0), &uuid);
    let then = If::new(&is_pcie, vec![&c3, &keep, &if_rev, &if_masked, &store]);
    let reject = Or::new(&cdw1, &cdw1, &bad_uuid);
    let other = Else::new(vec![&reject]);
    let ret = Return::new(&Arg(3));
    let mut out = Vec::new();
    Method::new("_OSC".into(), 4, false, vec![&c1, &then, &other, &ret]).to_aml_bytes(&mut out);
    out
}

fn pci0(profile: Machine, hotplug: &super::Hotplug) -> Vec<u8> {
    let bus = AddressSpace::<u16>::new_bus_number(0, LAST_BUS);
    let cf8 = IO::new(0xcf8, 0xcf8, 1, 8);
    let io_lo = AddressSpace::<u16>::new_io(0x0000, 0x0cf7, None);
    let io_hi = AddressSpace::<u16>::new_io(0x0d00, 0xffff, None);
    let mmio = AddressSpace::<u32>::new_memory(
        AddressSpaceCacheable::NotCacheable,
        true,
        layout::PCI_MMIO_START as u32,
        (layout::PCI_MMIO_END - 1) as u32,
        None,
    );
    let crs = ResourceTemplate::new(vec![&bus, &cf8, &io_lo, &io_hi, &mmio]);
    let (hid, cid) = match profile {
        Machine::Q35 => (EISAName::new("PNP0A08"), Some(EISAName::new("PNP0A03"))),
        Machine::Pc => (EISAName::new("PNP0A03"), None),
    };
    let hid_n = Name::new("_HID".into(), &hid);
    let cid_n = cid.as_ref().map(|c| Name::new("_CID".into(), c));
    let zero = 0u8;
    let adr = Name::new("_ADR".into(), &zero);
    let uid = Name::new("_UID".into(), &zero);
    let seg = Name::new("_SEG".into(), &zero);
    let bbn = Name::new("_BBN".into(), &zero);
    let crs_n = Name::new("_CRS".into(), &crs);
    let rows = prt_rows(profile);
    let rows_aml: Vec<Package> = rows.iter().map(|(a, p, g)| Package::new(vec![a as &dyn Aml, p, &zero, g])).collect();
    let prt = Package::new(rows_aml.iter().map(|r| r as &dyn Aml).collect());
    let prt_n = Name::new("_PRT".into(), &prt);
    let mut children: Vec<&dyn Aml> = vec![&hid_n];
    if let Some(c) = &cid_n {
        children.push(c);
    }
    children.extend([&adr as &dyn Aml, &uid, &seg, &bbn, &crs_n]);
    if !rows.is_empty() {
        children.push(&prt_n);
    }
    let osc = Raw(osc());
    if profile == Machine::Q35 {
        children.push(&osc);
    }
    let hp = (hotplug.slots != 0).then(|| Raw(super::pcihp::pci0_objects(hotplug)));
    if let Some(hp) = &hp {
        children.push(hp);
    }
    let mut out = Vec::new();
    Device::new("PCI0".into(), children).to_aml_bytes(&mut out);
    out
}

/// The DSDT for `profile`, with hotplug objects for the root-bus slots of `hotplug` (pc only).
pub fn dsdt(profile: Machine, hotplug: &super::Hotplug) -> Vec<u8> {
    let none = super::Hotplug::NONE;
    let hotplug = if profile == Machine::Pc { hotplug } else { &none };
    let mut t = Sdt::new(*b"DSDT", 36, 2, super::OEM_ID, *b"FERRYDSD", 1);
    let mut sb = pci0(profile, hotplug);
    sb.extend(isa_device("COM1", "PNP0501", &[(0x3f8, 8)], 4, Some(1)));
    sb.extend(isa_device("RTC_", "PNP0B00", &[(0x70, 2)], 8, None));
    sb.extend(isa_device("KBD_", "PNP0303", &[(0x60, 1), (0x64, 1)], 1, None));
    t.append_slice(&Scope::raw("\\_SB_".into(), sb));
    let typ = S5_SLP_TYP as u8;
    let zero = 0u8;
    let s5 = Package::new(vec![&typ, &typ, &zero, &zero]);
    let mut b = Vec::new();
    Name::new("_S5_".into(), &s5).to_aml_bytes(&mut b);
    t.append_slice(&b);
    if hotplug.slots != 0 {
        t.append_slice(&super::pcihp::gpe_scope());
    }
    t.as_slice().to_vec()
}
