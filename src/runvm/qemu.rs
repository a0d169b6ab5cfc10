//! The QEMU command line equivalent to a MachineSpec, for `ferry validate --engine qemu`:
//! the profile's versioned machine type and root bus, every device at its spec address.
use ferry_formats::layout::{DeviceKind, MachineSpec, Profile};
use std::ffi::OsString;
use std::path::PathBuf;

/// How QEMU starts the guest.
pub enum QemuBoot {
    /// `-kernel`, `-initrd`, `-append` (host files).
    Direct { kernel: PathBuf, initrd: Option<PathBuf>, cmdline: String },
    /// SeaBIOS (`-bios`), or OVMF as two pflash drives (code read-only, this VM's variables).
    Firmware { code: PathBuf, vars: Option<PathBuf> },
}

/// Arguments for `qemu-system-x86_64` (without the accelerator and console options).
pub fn args(spec: &MachineSpec, boot: &QemuBoot) -> anyhow::Result<Vec<OsString>> {
    let profile = Profile::builtin(&spec.profile)?;
    let (machine, bus) = (profile.qemu_machine.as_str(), profile.root_bus.as_str());
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |x: String| a.push(OsString::from(x));
    // `-cpu max` as the emitted script has it.
    for x in ["-nodefaults", "-no-user-config", "-display", "none", "-machine", machine, "-cpu", "max"] {
        push(x.to_string());
    }
    push("-m".into());
    push(spec.memory_mib.to_string());
    push("-smp".into());
    let max = spec.max_vcpus.map(|m| format!(",maxcpus={m}")).unwrap_or_default();
    push(match spec.topology {
        Some(t) => format!("{}{max},sockets={},cores={},threads={}", spec.vcpus, t.sockets, t.cores, t.threads),
        None => format!("{}{max}", spec.vcpus),
    });
    if let Some(u) = &spec.smbios_uuid {
        push("-smbios".into());
        push(format!("type=1,uuid={u}"));
    }
    // The VGA adapter the emitted script places (the runtime presents it too), unless the
    // spec uses its slot.
    if let Ok(video) = profile.class("video") {
        if !spec.devices.iter().any(|d| d.addr.bus == 0 && d.addr.slot == video.first) {
            push("-device".into());
            push(format!("{},id=video0,bus={bus},addr=0x{:x}.0", video.qemu_device, video.first));
        }
    }
    let bus_of = |b: u8| if b == 0 { bus.to_string() } else { format!("pci.{b}") };
    for b in &spec.bridges {
        let shared = spec.bridges.iter().any(|o| o.addr.slot == b.addr.slot && o.addr.function != 0);
        let multi = if b.addr.function == 0 && shared { ",multifunction=on" } else { "" };
        let at = format!("bus={bus},addr=0x{:x}.{}{multi}", b.addr.slot, b.addr.function);
        push("-device".into());
        push(match b.port {
            Some(port) => format!("{},id={},chassis={},port=0x{port:x},{at}", b.kind, b.id, b.chassis),
            None => format!("{},id={},chassis_nr={},{at}", b.kind, b.id, b.chassis),
        });
    }
    for d in &spec.devices {
        let addr = format!("bus={},addr=0x{:x}.{}", bus_of(d.addr.bus), d.addr.slot, d.addr.function);
        let drv = |modern: &str| d.model.qemu_device(modern).unwrap_or_else(|| modern.to_string());
        match &d.kind {
            DeviceKind::VirtioBlk { file, format, serial, readonly, logical_block_size, physical_block_size, bootindex } => {
                push("-drive".into());
                push(format!(
                    "if=none,id=drv-{},file={},format={format},readonly={}",
                    d.id,
                    file.display().to_string().replace(',', ",,"),
                    if *readonly { "on" } else { "off" }
                ));
                push("-device".into());
                push(format!(
                    "{1},drive=drv-{0},id={0},serial={serial},logical_block_size={logical_block_size},physical_block_size={physical_block_size},{addr}{2}",
                    d.id,
                    drv("virtio-blk-pci-non-transitional"),
                    // the boot order the emitted script and the runtime's fw_cfg `bootorder` give
                    bootindex.map(|b| format!(",bootindex={b}")).unwrap_or_default()
                ));
            }
            DeviceKind::VirtioNet { mac, .. } => {
                push("-netdev".into());
                push(format!("user,id=nd-{}", d.id));
                push("-device".into());
                push(format!("{1},netdev=nd-{0},id={0},mac={mac},{addr}", d.id, drv("virtio-net-pci-non-transitional")));
            }
            DeviceKind::VirtioConsole => {
                push("-device".into());
                push(format!("{},id={},{addr}", drv("virtio-serial-pci-non-transitional"), d.id));
            }
            DeviceKind::VirtioRng => {
                push("-device".into());
                push(format!("{},id={},{addr}", drv("virtio-rng-pci-non-transitional"), d.id));
            }
            DeviceKind::VirtioBalloon => {
                push("-device".into());
                push(format!("{},id={},{addr}", drv("virtio-balloon-pci-non-transitional"), d.id));
            }
            DeviceKind::VirtioScsi { disks } => {
                push("-device".into());
                push(format!("{},id={},{addr}", drv("virtio-scsi-pci-non-transitional"), d.id));
                for s in disks {
                    push("-drive".into());
                    push(format!(
                        "if=none,id=drv-{},file={},format={},readonly={}",
                        s.id,
                        s.file.display().to_string().replace(',', ",,"),
                        s.format,
                        if s.readonly { "on" } else { "off" }
                    ));
                    push("-device".into());
                    push(format!(
                        "scsi-hd,bus={}.0,channel=0,scsi-id={},lun=0,drive=drv-{},id={},serial={},logical_block_size={},physical_block_size={}{}",
                        d.id,
                        s.target,
                        s.id,
                        s.id,
                        s.serial,
                        s.logical_block_size,
                        s.physical_block_size,
                        s.bootindex.map(|b| format!(",bootindex={b}")).unwrap_or_default()
                    ));
                }
            }
        }
    }
    match boot {
        QemuBoot::Direct { kernel, initrd, cmdline } => {
            a.push("-kernel".into());
            a.push(kernel.clone().into_os_string());
            if let Some(i) = initrd {
                a.push("-initrd".into());
                a.push(i.clone().into_os_string());
            }
            a.push("-append".into());
            a.push(cmdline.into());
        }
        QemuBoot::Firmware { code, vars: None } => {
            a.push("-bios".into());
            a.push(code.clone().into_os_string());
        }
        QemuBoot::Firmware { code, vars: Some(vars) } => {
            let drive = |unit: u32, f: &std::path::Path, ro: bool| {
                let mut s = OsString::from(format!("if=pflash,format=raw,unit={unit},readonly={},file=", if ro { "on" } else { "off" }));
                s.push(f.display().to_string().replace(',', ",,"));
                s
            };
            a.push("-drive".into());
            a.push(drive(0, code, true));
            a.push("-drive".into());
            a.push(drive(1, vars, false));
        }
    }
    Ok(a)
}
