//! `device_add` / `device_del` / `blockdev-add` / `blockdev-del`, answered the way QEMU 10
//! answers them for the machine the profile names (checked in the same order: driver, bus,
//! hotplug support, then the rest).
//!
//! * Root bus without hotplug (`root_hotplug: "none"`, q35's `pcie.0`, a PCIe root complex):
//!   QEMU refuses every `device_add`/`device_del` there with GenericError "Bus 'pcie.0' does
//!   not support hotplugging"; so does the runtime.
//! * Root bus with ACPI PCI hotplug (`"acpi-pcihp"`, pc's `pci.0`): virtio-blk, virtio-net and
//!   virtio-rng are hot-plugged and unplugged as on QEMU ([`crate::hotplug`]): the PIIX4
//!   hotplug registers, the DSDT's slot objects and the GPE tell the guest.
//! * Behind pc's PCI bridge (`bus: "pci.N"`, or `device_del` of a device there): the same,
//!   through the bridge's own bus selector (QEMU's acpi-pci-hotplug-with-bridge-support).
//! * Behind a PCIe root port (q35): QEMU hot-plugs through ACPI there too; the runtime
//!   refuses naming what it lacks (the layouts fill every root port they create).
use crate::hotplug::{esc, generic, Model, QmpError, Request};
use crate::vm::Shared;
use crate::Controller;
use ferry_formats::layout::SlotClass;
use std::sync::Arc;
use serde_json::{json, Value};

fn error(class: &str, desc: String) -> Value {
    json!({"error": {"class": class, "desc": desc}})
}

/// What the runtime lacks for ACPI PCI hotplug behind bridge `bus`.
fn bridge_hotplug_missing(bus: &str) -> Value {
    error(
        "GenericError",
        format!(
            "Bus '{bus}' hotplug is not available in ferry-runtime: QEMU does it through ACPI PCI hotplug \
             (the DSDT's per-bridge device with BSEL and slot objects with _SUN/_EJ0, and the hotplug \
             registers), which the runtime's ACPI tables do not provide"
        ),
    )
}

/// Every `query-pci` row, those behind bridges included, with the id of the bridge in front.
fn flatten(rows: &[Value], parent: Option<&str>, out: &mut Vec<(Option<String>, Value)>) {
    for r in rows {
        out.push((parent.map(str::to_string), r.clone()));
        if let Some(devs) = r.get("pci_bridge").and_then(|b| b.get("devices")).and_then(Value::as_array) {
            flatten(devs, r.get("qdev_id").and_then(Value::as_str), out);
        }
    }
}

fn no_hotplug(bus: &str) -> Value {
    error("GenericError", format!("Bus '{bus}' does not support hotplugging"))
}

/// The running boot and its PCI functions (`query-pci` rows).
fn machine(ctl: &Controller) -> Option<(Arc<Shared>, Vec<Value>)> {
    let shared = ctl.current.lock().ok().and_then(|c| c.clone())?;
    let pci = shared.pci.lock().ok().map(|p| p.describe()).unwrap_or_default();
    Some((shared, pci))
}

fn answer(r: Result<(), QmpError>) -> Value {
    match r {
        Ok(()) => json!({"return": {}}),
        Err(e) => error(e.class, e.desc),
    }
}

/// A QEMU `addr` property: a number (devfn) or "slot[.function]" in hex.
fn parse_addr(v: &Value) -> Option<(u8, u8)> {
    if let Some(n) = v.as_u64() {
        return (n < 256).then_some(((n >> 3) as u8, (n & 7) as u8));
    }
    let s = v.as_str()?;
    let (slot, func) = s.split_once('.').unwrap_or((s, "0"));
    let slot = u8::from_str_radix(slot.trim_start_matches("0x").trim_start_matches("0X"), 16).ok().filter(|s| *s < 32)?;
    let func = func.parse::<u8>().ok().filter(|f| *f < 8)?;
    Some((slot, func))
}

/// The hot-plug request for `driver` of slot class `class` on pc's spec bus `bus` (the root
/// bus, or one behind a PCI bridge).
fn request(shared: &Shared, pci: &[Value], args: &Value, driver: &str, class: &SlotClass, bus: u8) -> Result<Request, QmpError> {
    let Some(id) = args.get("id").and_then(Value::as_str) else {
        return Err(generic("ferry-runtime needs an 'id' for a hot-plugged device".into()));
    };
    let mut rows = Vec::new();
    flatten(pci, None, &mut rows);
    if rows.iter().any(|(_, r)| r.get("qdev_id").and_then(Value::as_str) == Some(id)) {
        return Err(generic(format!("Duplicate device ID '{}'", esc(id))));
    }
    let (slot, function) = match args.get("addr") {
        Some(a) => parse_addr(a).ok_or_else(|| generic(format!("Property '{driver}.addr' doesn't take value {a}")))?,
        None => (shared.pci.lock().ok().and_then(|p| p.first_free_slot(bus)).ok_or_else(|| generic(format!("PCI: no slot/function available for {driver}, all in use")))?, 0),
    };
    if function != 0 {
        return Err(generic(format!("ferry-runtime hot-plugs function 0 of a slot only, not {slot:#x}.{function}")));
    }
    let model = match class.class.as_str() {
        "disk" => {
            let node = args.get("drive").and_then(Value::as_str).ok_or_else(|| generic("drive property not set".into()))?;
            let serial = args.get("serial").and_then(Value::as_str).unwrap_or_default();
            Model::Blk { node: node.to_string(), serial: serial.to_string() }
        }
        "nic" => {
            if let Some(n) = args.get("netdev").and_then(Value::as_str) {
                return Err(generic(format!("Property '{driver}.netdev' can't find value '{}'", esc(n))));
            }
            Model::Net { mac: args.get("mac").and_then(Value::as_str).map(str::to_string) }
        }
        "rng" => Model::Rng,
        other => return Err(generic(format!("ferry-runtime hot-plugs virtio-blk, virtio-net and virtio-rng: '{driver}' ({other}) is cold-plugged only"))),
    };
    // The modern-only name is the profile's; the base name is transitional on a conventional
    // PCI bus, as in QEMU.
    let transitional = driver != class.qemu_device;
    Ok(Request { id: id.to_string(), bus, slot, transitional, vectors: class.msix_vectors, model })
}

fn not_running() -> Value {
    error("GenericError", "No machine is running".into())
}

/// `device_add`.
pub(super) fn device_add(ctl: &Controller, args: &Value) -> Value {
    let Some(driver) = args.get("driver").and_then(Value::as_str) else {
        return error("GenericError", "Parameter 'driver' is missing".into());
    };
    let Some((shared, pci)) = machine(ctl) else { return not_running() };
    let profile = &shared.profile;
    // The device models the profile places: QEMU's modern-only names, their transitional forms
    // and their base names.
    let transitional = |c: &ferry_formats::layout::SlotClass| ferry_formats::layout::VirtioModel::Transitional.qemu_device(&c.qemu_device);
    let known = profile.classes.iter().find(|c| {
        c.qemu_device == driver || c.qemu_device.strip_suffix("-non-transitional") == Some(driver) || transitional(c).as_deref() == Some(driver)
    });
    let Some(class) = known else {
        return error("GenericError", format!("'{}' is not a valid device model name", esc(driver)));
    };
    let (bus, spec_bus) = match args.get("bus").and_then(Value::as_str) {
        Some(b) if b != profile.root_bus => {
            // A PCI bridge with ACPI hotplug (pc) takes the device; a root port does not yet.
            if let Some(h) = shared.hotplug.as_ref().and_then(|h| h.bridges.iter().find(|x| x.id == b)) {
                (b, h.bus)
            } else {
                let mut rows = Vec::new();
                flatten(&pci, None, &mut rows);
                let bridge = rows.iter().any(|(_, r)| r.get("pci_bridge").is_some() && r.get("qdev_id").and_then(Value::as_str) == Some(b));
                return if bridge { bridge_hotplug_missing(b) } else { error("GenericError", format!("Bus '{}' not found", esc(b))) };
            }
        }
        _ => (profile.root_bus.as_str(), 0),
    };
    match profile.root_hotplug.as_str() {
        "none" => no_hotplug(bus),
        _ => answer(request(&shared, &pci, args, driver, class, spec_bus).and_then(|r| shared.plug(&r, driver))),
    }
}

/// `device_del`.
pub(super) fn device_del(ctl: &Controller, args: &Value) -> Value {
    let Some(id) = args.get("id").and_then(Value::as_str) else {
        return error("GenericError", "Parameter 'id' is missing".into());
    };
    let Some((shared, pci)) = machine(ctl) else { return not_running() };
    let profile = &shared.profile;
    let mut rows = Vec::new();
    flatten(&pci, None, &mut rows);
    let Some((parent, _)) = rows.iter().find(|(_, d)| d.get("qdev_id").and_then(Value::as_str) == Some(id)) else {
        return error("DeviceNotFound", format!("Device '{id}' not found"));
    };
    if let Some(b) = parent {
        if !shared.hotplug.as_ref().is_some_and(|h| h.bridges.iter().any(|x| x.id == *b)) {
            return bridge_hotplug_missing(b);
        }
    }
    if profile.root_hotplug == "none" {
        return no_hotplug(&profile.root_bus);
    }
    let at = shared.pci.lock().ok().and_then(|p| p.find(id));
    match at {
        Some((bus, slot, _)) => answer(shared.request_unplug(id, bus, slot)),
        None => error("DeviceNotFound", format!("Device '{}' not found", esc(id))),
    }
}

/// `blockdev-add`: a node for a later `device_add`.
pub(super) fn blockdev_add(ctl: &Controller, args: &Value) -> Value {
    answer(ctl.registry.blockdev_add(args))
}

/// `blockdev-del`.
pub(super) fn blockdev_del(ctl: &Controller, args: &Value) -> Value {
    answer(ctl.registry.blockdev_del(args))
}
