//! `device_add` / `device_del`, answered the way QEMU 10 answers them for the machine the
//! profile names (checked in the same order: driver, bus, hotplug support, then the rest).
//!
//! * Root bus without hotplug (`root_hotplug: "none"`, q35's `pcie.0`, a PCIe root complex):
//!   QEMU refuses every `device_add`/`device_del` there with GenericError "Bus 'pcie.0' does
//!   not support hotplugging"; so does the runtime.
//! * Root bus with ACPI PCI hotplug (`"acpi-pcihp"`, pc's `pci.0`): QEMU accepts. The runtime
//!   refuses with a GenericError naming what it lacks (the PIIX4 hotplug registers and the
//!   DSDT slot objects), so nothing is half-plugged.
//! * Behind a PCIe root port or PCI bridge (`bus: "pci.N"`, or `device_del` of a device there):
//!   QEMU hot-plugs through ACPI PCI hotplug there too (the machine types' ICH9/PIIX4
//!   `acpi-pci-hotplug-with-bridge-support`); the runtime refuses naming what it lacks.
use crate::Controller;
use serde_json::{json, Value};

fn error(class: &str, desc: String) -> Value {
    json!({"error": {"class": class, "desc": desc}})
}

/// What the runtime lacks for ACPI PCI hotplug on `bus`.
fn acpi_hotplug_missing(bus: &str) -> Value {
    error(
        "GenericError",
        format!(
            "Bus '{bus}' hotplug is not available in ferry-runtime: QEMU does it through ACPI PCI hotplug \
             (the PIIX4 PM hotplug registers at I/O 0xae00-0xae13 and the DSDT's \\_SB.PCI0 slot objects with \
             _SUN/_EJ0 and the PCNT notify method), which the runtime's ACPI tables do not provide"
        ),
    )
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

/// The running boot's profile and PCI functions (`query-pci` rows).
fn machine(ctl: &Controller) -> Option<(ferry_formats::layout::Profile, Vec<Value>)> {
    let shared = ctl.current.lock().ok().and_then(|c| c.clone())?;
    let pci = shared.pci.lock().ok().map(|p| p.describe()).unwrap_or_default();
    Some((shared.profile.clone(), pci))
}

fn not_running() -> Value {
    error("GenericError", "No machine is running".into())
}

/// `device_add`.
pub(super) fn device_add(ctl: &Controller, args: &Value) -> Value {
    let Some(driver) = args.get("driver").and_then(Value::as_str) else {
        return error("GenericError", "Parameter 'driver' is missing".into());
    };
    let Some((profile, pci)) = machine(ctl) else { return not_running() };
    // The device models the profile places: QEMU's modern-only names, their transitional forms
    // and their base names.
    let transitional = |c: &ferry_formats::layout::SlotClass| ferry_formats::layout::VirtioModel::Transitional.qemu_device(&c.qemu_device);
    let known = profile.classes.iter().any(|c| {
        c.qemu_device == driver || c.qemu_device.strip_suffix("-non-transitional") == Some(driver) || transitional(c).as_deref() == Some(driver)
    });
    if !known {
        return error("GenericError", format!("'{driver}' is not a valid device model name"));
    }
    let bus = match args.get("bus").and_then(Value::as_str) {
        Some(b) if b != profile.root_bus => {
            let mut rows = Vec::new();
            flatten(&pci, None, &mut rows);
            let bridge = rows.iter().any(|(_, r)| r.get("pci_bridge").is_some() && r.get("qdev_id").and_then(Value::as_str) == Some(b));
            return if bridge { bridge_hotplug_missing(b) } else { error("GenericError", format!("Bus '{b}' not found")) };
        }
        _ => profile.root_bus.as_str(),
    };
    match profile.root_hotplug.as_str() {
        "none" => no_hotplug(bus),
        _ => acpi_hotplug_missing(bus),
    }
}

/// `device_del`.
pub(super) fn device_del(ctl: &Controller, args: &Value) -> Value {
    let Some(id) = args.get("id").and_then(Value::as_str) else {
        return error("GenericError", "Parameter 'id' is missing".into());
    };
    let Some((profile, pci)) = machine(ctl) else { return not_running() };
    let mut rows = Vec::new();
    flatten(&pci, None, &mut rows);
    let Some((parent, _)) = rows.iter().find(|(_, d)| d.get("qdev_id").and_then(Value::as_str) == Some(id)) else {
        return error("DeviceNotFound", format!("Device '{id}' not found"));
    };
    if let Some(b) = parent {
        return bridge_hotplug_missing(b);
    }
    match profile.root_hotplug.as_str() {
        "none" => no_hotplug(&profile.root_bus),
        _ => acpi_hotplug_missing(&profile.root_bus),
    }
}
