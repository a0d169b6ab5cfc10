//! The DSDT's ACPI PCI hotplug objects for pc's root bus, named and shaped as in QEMU's i440fx
//! DSDT (the guest's `acpiphp` sees the same slots): inside `\_SB.PCI0` the register fields
//! (`PCIU`/`PCID` at 0xae00, `B0EJ` at 0xae08, `BNUM` at 0xae10), the `BLCK` mutex, `BSEL`
//! (the root bus is bus selector 0), `PCEJ` (eject), a device `Sxx` (xx = devfn) per
//! hot-pluggable slot with `_ADR`, `_SUN` and `_EJ0` (those of the slots holding a device
//! first, as QEMU defines a present device's object before the empty slots': the guest
//! walks them in that order), `DVNT` (notify the slots of a bitmap)
//! and `PCNT` (device check for plugged slots, eject request for unplugged ones); and
//! `\_GPE._E01`, which runs `PCNT` when the hotplug registers raise GPE0 bit 1.
use crate::devices::pcihp;
use acpi_tables::aml::{
    Acquire, And, Arg, Device, Field, FieldAccessType, FieldEntry, FieldLockRule, FieldUpdateRule, If, Method, MethodCall, Mutex, Name, Notify,
    OpRegion, OpRegionSpace, Path, Release, Return, Scope, ShiftLeft, Store, ONE, ZERO,
};
use acpi_tables::Aml;
use super::dsdt::Raw;

/// An I/O region of 32-bit fields named `fields`.
fn io_fields(region: &str, port: u16, fields: &[&str], out: &mut Vec<u8>) {
    let (at, len) = (u32::from(port), 4 * fields.len() as u32);
    OpRegion::new(region.into(), OpRegionSpace::SystemIO, &at, &len).to_aml_bytes(out);
    let entries = fields.iter().map(|f| FieldEntry::Named(f.as_bytes().try_into().unwrap_or(*b"____"), 32)).collect();
    Field::new(region.into(), FieldAccessType::DWord, FieldLockRule::NoLock, FieldUpdateRule::WriteAsZeroes, entries).to_aml_bytes(out);
}

fn slot_name(slot: u8) -> String {
    format!("S{:02X}_", slot << 3)
}

/// The slot devices of one bus (those in `present` first), then its `DVNT` and its `PCNT`
/// (which selects `BSEL` and then calls `more`, the bridges' `PCNT`s).
fn bus_objects(slots: u32, present: u32, more: &[String], out: &mut Vec<u8>) {
    let hot: Vec<u8> = (0..32u8).filter(|s| slots & (1 << s) != 0).collect();
    let (full, empty): (Vec<u8>, Vec<u8>) = hot.iter().partition(|&&s| present & (1 << s) != 0);
    for s in full.into_iter().chain(empty) {
        let adr = u32::from(s) << 16;
        let sun = u32::from(s);
        let adr_n = Name::new("_ADR".into(), &adr);
        let sun_n = Name::new("_SUN".into(), &sun);
        let (bsel, sun_p) = (Path::new("BSEL"), Path::new("_SUN"));
        let call = MethodCall::new("PCEJ".into(), vec![&bsel, &sun_p]);
        let ej0 = Method::new("_EJ0".into(), 1, false, vec![&call]);
        Device::new(slot_name(s).as_str().into(), vec![&adr_n, &sun_n, &ej0]).to_aml_bytes(out);
    }
    // DVNT(bitmap, event): Notify(Sxx, event) for every slot whose bit is set.
    let names: Vec<Path> = hot.iter().map(|&s| Path::new(&slot_name(s))).collect();
    let masks: Vec<u32> = hot.iter().map(|&s| 1u32 << s).collect();
    let tests: Vec<And> = masks.iter().map(|m| And::new(&ZERO, &Arg(0), m)).collect();
    let notifies: Vec<Notify> = names.iter().map(|n| Notify::new(n, &Arg(1))).collect();
    let ifs: Vec<If> = tests.iter().zip(&notifies).map(|(t, n)| If::new(t, vec![n])).collect();
    Method::new("DVNT".into(), 2, false, ifs.iter().map(|i| i as &dyn Aml).collect()).to_aml_bytes(out);
    // PCNT: select this bus, then device check (1) for plugged slots, eject request (3) for
    // slots asked to go; then the buses behind.
    let (bnum, bsel, pciu, pcid) = (Path::new("BNUM"), Path::new("BSEL"), Path::new("PCIU"), Path::new("PCID"));
    let sel = Store::new(&bnum, &bsel);
    let three = 3u8;
    let up = MethodCall::new("DVNT".into(), vec![&pciu, &ONE]);
    let down = MethodCall::new("DVNT".into(), vec![&pcid, &three]);
    let calls: Vec<MethodCall> = more.iter().map(|m| MethodCall::new(m.as_str().into(), vec![])).collect();
    let mut body: Vec<&dyn Aml> = vec![&sel, &up, &down];
    body.extend(calls.iter().map(|c| c as &dyn Aml));
    Method::new("PCNT".into(), 0, false, body).to_aml_bytes(out);
}

/// The objects inside `\_SB.PCI0` for `hp`'s root-bus slots and bridges.
pub(super) fn pci0_objects(hp: &super::Hotplug) -> Vec<u8> {
    let mut out = Vec::new();
    io_fields("PCST", pcihp::BASE, &["PCIU", "PCID"], &mut out);
    io_fields("SEJ_", pcihp::BASE + 8, &["B0EJ"], &mut out);
    io_fields("BNMR", pcihp::BASE + 0x10, &["BNUM"], &mut out);
    Mutex::new("BLCK".into(), 0).to_aml_bytes(&mut out);
    let (bnum, b0ej) = (Path::new("BNUM"), Path::new("B0EJ"));
    let take = Acquire::new("BLCK".into(), 0xffff);
    let select = Store::new(&bnum, &Arg(0));
    let eject = ShiftLeft::new(&b0ej, &ONE, &Arg(1));
    let give = Release::new("BLCK".into());
    let ret = Return::new(&ZERO);
    Method::new("PCEJ".into(), 2, false, vec![&take, &select, &eject, &give, &ret]).to_aml_bytes(&mut out);
    Name::new("BSEL".into(), &ZERO).to_aml_bytes(&mut out);
    // Each PCI bridge: a device at its root slot with its own BSEL, slot devices, DVNT, PCNT.
    let mut pcnts = Vec::new();
    for (i, b) in hp.bridges.iter().enumerate() {
        let name = slot_name(b.slot);
        let adr = u32::from(b.slot) << 16;
        let bsel = i as u32 + 1;
        let adr_n = Name::new("_ADR".into(), &adr);
        let bsel_n = Name::new("BSEL".into(), &bsel);
        let mut inner = Vec::new();
        bus_objects(u32::MAX, b.present, &[], &mut inner);
        let inner = Raw(inner);
        Device::new(name.as_str().into(), vec![&adr_n, &bsel_n, &inner]).to_aml_bytes(&mut out);
        pcnts.push(format!("\\_SB_.PCI0.{name}.PCNT"));
    }
    bus_objects(hp.slots, hp.present, &pcnts, &mut out);
    out
}

/// `\_GPE` with `_E01`: the hotplug event runs `\_SB.PCI0.PCNT` under `BLCK`.
pub(super) fn gpe_scope() -> Vec<u8> {
    let hid = Name::new("_HID".into(), &"ACPI0006");
    let take = Acquire::new("\\_SB_.PCI0.BLCK".into(), 0xffff);
    let pcnt = MethodCall::new("\\_SB_.PCI0.PCNT".into(), vec![]);
    let give = Release::new("\\_SB_.PCI0.BLCK".into());
    let e01 = Method::new(format!("_E{:02X}", pcihp::GPE_BIT).as_str().into(), 0, false, vec![&take, &pcnt, &give]);
    let mut out = Vec::new();
    Scope::new("\\_GPE".into(), vec![&hid, &e01]).to_aml_bytes(&mut out);
    out
}
