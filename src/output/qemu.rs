//! A POSIX shell script that starts the converted guest with `qemu-system-x86_64`: no
//! default devices, every device on the root bus at the layout's `addr=`, modern-only
//! or transitional virtio as the layout says, disks on virtio-blk or on one virtio-scsi
//! controller (`scsi-hd`, channel 0, `scsi-id` N, LUN 0), the source's MACs, disk serials and SMBIOS UUID. Extra arguments are appended
//! (`NAME.sh -S -qmp unix:sock,server=on,wait=off -display none`).

use ferry_formats::layout::{DeviceKind, Firmware, Layout, NetBackend, PciAddr, SpecDevice};
use std::fmt::Write;

/// Quotes a word for the shell.
fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Escapes a QEMU option value (commas doubled).
fn qv(s: &str) -> String {
    s.replace(',', ",,")
}

fn at(layout: &Layout, a: PciAddr) -> String {
    let bus = if a.bus == 0 { layout.profile.root_bus.clone() } else { format!("pci.{}", a.bus) };
    match a.function {
        0 => format!("bus={bus},addr=0x{:x}", a.slot),
        f => format!("bus={bus},addr=0x{:x}.0x{f:x}", a.slot),
    }
}

/// The QEMU driver of `d` (the profile's driver in the device's virtio model).
fn device_for(layout: &Layout, d: &SpecDevice) -> String {
    match d.kind.qemu_driver_override() {
        Some(modern) => d.model.qemu_device(modern).unwrap_or_default(),
        None => layout.profile.qemu_device(d.kind.class(), d.model).unwrap_or_default(),
    }
}

/// The launch script for `layout`.
pub fn qemu_script(layout: &Layout) -> String {
    let spec = &layout.spec;
    let p = &layout.profile;
    let mut args: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut a = |s: String| args.push(s);
    a("-no-user-config -nodefaults".into());
    a(format!("-name {}", sh(&qv(&spec.name))));
    let smm = if spec.firmware == Firmware::Uefi && layout.secure_boot { ",smm=on" } else { "" };
    a(format!("-machine {}{smm}", p.qemu_machine));
    a("$accel".into());
    a("-cpu max".into());
    a(format!("-m {}", spec.memory_mib));
    let max = spec.max_vcpus.map(|m| format!(",maxcpus={m}")).unwrap_or_default();
    match spec.topology {
        Some(t) => a(format!("-smp {}{max},sockets={},cores={},threads={}", spec.vcpus, t.sockets, t.cores, t.threads)),
        None => a(format!("-smp {}{max}", spec.vcpus)),
    }
    if let Some(u) = &spec.smbios_uuid {
        a(format!("-uuid {}", sh(u)));
        a(format!("-smbios type=1,uuid={}", sh(&qv(u))));
    }
    if spec.firmware == Firmware::Uefi {
        a("-drive if=pflash,format=raw,unit=0,readonly=on,file=\"$ovmf_code\"".into());
        a("-drive if=pflash,format=raw,unit=1,file=\"$ovmf_vars\"".into());
    }
    a(format!("-device VGA,id=video0,{}", at(layout, layout.video)));
    for b in &spec.bridges {
        let shared = spec.bridges.iter().any(|o| o.addr.slot == b.addr.slot && o.addr.function != 0);
        let multi = if b.addr.function == 0 && shared { ",multifunction=on" } else { "" };
        let qdev = p.expansion.as_ref().map_or(b.kind.as_str(), |e| e.qemu_device.as_str());
        match b.port {
            Some(port) => a(format!("-device {qdev},id={},chassis={},port=0x{port:x},{}{multi}", b.id, b.chassis, at(layout, b.addr))),
            None => a(format!("-device {qdev},id={},chassis_nr={},{}{multi}", b.id, b.chassis, at(layout, b.addr))),
        }
    }
    for d in &spec.devices {
        let loc = at(layout, d.addr);
        match &d.kind {
            DeviceKind::VirtioConsole => a(format!("-device {},id={},{loc}", device_for(layout, d), d.id)),
            DeviceKind::VirtioBalloon => a(format!("-device {},id={},{loc}", device_for(layout, d), d.id)),
            DeviceKind::VirtioRng => {
                a(format!("-object rng-random,id=obj-{},filename=/dev/urandom", d.id));
                a(format!("-device {},rng=obj-{},id={},{loc}", device_for(layout, d), d.id, d.id));
            }
            DeviceKind::VirtioNet { mac, backend } => {
                let what = match backend {
                    NetBackend::Network { name } => format!("network {name}"),
                    NetBackend::Bridge { name } => format!("bridge {name}"),
                    NetBackend::Tap { name } => format!("tap {name}"),
                    NetBackend::User => "user networking".into(),
                };
                a(format!("-netdev user,id=hostnet-{}", d.id));
                notes.push(format!("{}: {} (QEMU user networking here)", d.id, what.replace(['\n', '\r'], " ")));
                a(format!(
                    "-device {},netdev=hostnet-{},id={},mac={},{loc}",
                    device_for(layout, d),
                    d.id,
                    d.id,
                    sh(&qv(mac))
                ));
            }
            DeviceKind::VirtioBlk { file, format, serial, readonly, bootindex, .. } => {
                let ro = if *readonly { ",readonly=on" } else { "" };
                a(format!(
                    "-drive file={},format={},if=none,id=drive-{}{ro}",
                    sh(&qv(&file.to_string_lossy())),
                    qv(format),
                    d.id
                ));
                let boot = bootindex.map(|b| format!(",bootindex={b}")).unwrap_or_default();
                a(format!(
                    "-device {},drive=drive-{},id={},serial={}{boot},{loc}",
                    device_for(layout, d),
                    d.id,
                    d.id,
                    sh(&qv(serial))
                ));
            }
            DeviceKind::VirtioScsi { disks } => {
                a(format!("-device {},id={},{loc}", device_for(layout, d), d.id));
                for disk in disks {
                    let ro = if disk.readonly { ",readonly=on" } else { "" };
                    a(format!(
                        "-drive file={},format={},if=none,id=drive-{}{ro}",
                        sh(&qv(&disk.file.to_string_lossy())),
                        qv(&disk.format),
                        disk.id
                    ));
                    let boot = disk.bootindex.map(|b| format!(",bootindex={b}")).unwrap_or_default();
                    a(format!(
                        "-device scsi-hd,bus={}.0,channel=0,scsi-id={},lun=0,drive=drive-{},id={},serial={}{boot}",
                        d.id,
                        disk.target,
                        disk.id,
                        disk.id,
                        sh(&qv(&disk.serial))
                    ));
                }
            }
        }
    }
    for cd in &layout.cdroms {
        let (bus, unit) = if p.cdrom.controller == "ide" { (cd.port / 2, cd.port % 2) } else { (cd.port, 0) };
        let bus_name = p.cdrom.qemu_bus.replace("{port}", &cd.port.to_string()).replace("{bus}", &bus.to_string());
        a(format!("-drive if=none,id=drive-{},media=cdrom,readonly=on", cd.id));
        a(format!("-device ide-cd,drive=drive-{},id={},bus={bus_name},unit={unit}", cd.id, cd.id));
    }
    a("-serial stdio".into());

    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/sh -");
    let _ = writeln!(s, "# Written by ferry convert. Machine profile {} ({}).", p.name, p.qemu_machine);
    let _ = writeln!(s, "# Extra arguments are passed to QEMU.");
    for n in &notes {
        let _ = writeln!(s, "# {n}");
    }
    let _ = writeln!(s, "set -e");
    let _ = writeln!(s, "# KVM when available, else TCG; FERRY_QEMU_ACCEL overrides (e.g. \"-accel tcg\").");
    let _ = writeln!(s, "# Under kvm_pvm (a nested KVM without hardware virtualization) QEMU's KVM accelerator");
    let _ = writeln!(s, "# cannot run a guest: use TCG there.");
    let _ = writeln!(s, "default_accel=\"-accel kvm -accel tcg\"");
    let _ = writeln!(s, "if [ -z \"${{FERRY_QEMU_ACCEL-}}\" ] && [ -e /sys/module/kvm_pvm ]; then");
    let _ = writeln!(s, "  echo \"$0: this host's KVM is kvm_pvm, where QEMU's KVM accelerator cannot run a guest: using TCG\" >&2");
    let _ = writeln!(s, "  default_accel=\"-accel tcg\"");
    let _ = writeln!(s, "fi");
    let _ = writeln!(s, "accel=\"${{FERRY_QEMU_ACCEL:-$default_accel}}\"");
    if spec.firmware == Firmware::Uefi {
        let (code, vars) = super::ovmf_files(layout.secure_boot);
        let _ = writeln!(s, "ovmf_code=\"${{OVMF_CODE:-{code}}}\"");
        let _ = writeln!(s, "# The guest's UEFI variables live next to this script, created on first start.");
        let _ = writeln!(s, "ovmf_vars=\"$(dirname \"$0\")\"/{}", sh(&super::nvram_file(&spec.name)));
        let _ = writeln!(s, "[ -e \"$ovmf_vars\" ] || cp \"${{OVMF_VARS:-{vars}}}\" \"$ovmf_vars\"");
    }
    let _ = writeln!(s, "exec qemu-system-x86_64 \\");
    for arg in &args {
        let _ = writeln!(s, "  {arg} \\");
    }
    let _ = writeln!(s, "  \"$@\"");
    s
}
