//! libvirt domain XML with every PCI address pinned from the layout; disks on virtio-blk
//! (`vdX`) or on one virtio-scsi controller (`sdX`, `<address type='drive'>` target N). A UEFI
//! guest names its firmware by hand (`<loader type='pflash'>` and `<nvram template=...>`, not
//! libvirt's `firmware='efi'` autoselection, which older libvirt lets override a given
//! loader): the OVMF build the QEMU script starts and the per-VM variable store beside the
//! descriptions that the script and `ferry run` use.

use super::{libvirt_pci, xml_escape as esc};
use ferry_formats::layout::{DeviceKind, Firmware, Layout, NetBackend};
use std::fmt::Write;
use std::path::Path;

/// Target device name for the n-th disk: vda, vdb, ..., vdz, vdaa.
pub fn drive_name(prefix: &str, mut n: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'a' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    s.reverse();
    format!("{prefix}{}", String::from_utf8_lossy(&s))
}

/// The domain XML for `layout`, whose descriptions are written to `dir` (passes
/// `virt-xml-validate FILE domain`).
pub fn libvirt_xml(layout: &Layout, dir: &Path) -> String {
    let spec = &layout.spec;
    let p = &layout.profile;
    let mut x = String::new();
    let w = &mut x;
    let _ = writeln!(w, "<domain type='kvm'>");
    let _ = writeln!(w, "  <name>{}</name>", esc(&spec.name));
    if let Some(u) = &spec.uuid {
        let _ = writeln!(w, "  <uuid>{}</uuid>", esc(u));
    }
    if let Some(g) = &layout.genid {
        let _ = writeln!(w, "  <genid>{}</genid>", esc(g));
    }
    let _ = writeln!(w, "  <metadata>");
    let _ = writeln!(w, "    <ferry:profile xmlns:ferry='https://ferry.invalid/xmlns/1'>{}</ferry:profile>", esc(&p.name));
    let _ = writeln!(w, "  </metadata>");
    let kib = spec.memory_mib * 1024;
    let _ = writeln!(w, "  <memory unit='KiB'>{kib}</memory>");
    let _ = writeln!(w, "  <currentMemory unit='KiB'>{kib}</currentMemory>");
    match spec.max_vcpus {
        Some(max) => {
            let _ = writeln!(w, "  <vcpu placement='static' current='{}'>{max}</vcpu>", spec.vcpus);
        }
        None => {
            let _ = writeln!(w, "  <vcpu placement='static'>{}</vcpu>", spec.vcpus);
        }
    }
    if let Some(u) = &spec.smbios_uuid {
        let _ = writeln!(w, "  <sysinfo type='smbios'>\n    <system>\n      <entry name='uuid'>{}</entry>\n    </system>\n  </sysinfo>", esc(u));
    }
    let efi = spec.firmware == Firmware::Uefi;
    let _ = writeln!(w, "  <os>");
    let _ = writeln!(w, "    <type arch='x86_64' machine='{}'>hvm</type>", esc(&p.qemu_machine));
    if efi {
        let (code, vars) = super::ovmf_files(layout.secure_boot);
        let secure = if layout.secure_boot { " secure='yes'" } else { "" };
        let store = dir.join(super::nvram_file(&spec.name));
        let _ = writeln!(w, "    <loader readonly='yes'{secure} type='pflash'>{code}</loader>");
        let _ = writeln!(w, "    <nvram template='{vars}'>{}</nvram>", esc(&store.to_string_lossy()));
    }
    let _ = writeln!(w, "    <smbios mode='sysinfo'/>");
    let _ = writeln!(w, "  </os>");
    let smm = if efi && layout.secure_boot { "\n    <smm state='on'/>" } else { "" };
    let _ = writeln!(w, "  <features>\n    <acpi/>\n    <apic/>{smm}\n  </features>");
    match spec.topology {
        Some(t) => {
            let _ = writeln!(
                w,
                "  <cpu mode='host-model'>\n    <topology sockets='{}' dies='1' cores='{}' threads='{}'/>\n  </cpu>",
                t.sockets, t.cores, t.threads
            );
        }
        None => {
            let _ = writeln!(w, "  <cpu mode='host-model'/>");
        }
    }
    let _ = writeln!(w, "  <clock offset='{}'/>", if layout.localtime_rtc { "localtime" } else { "utc" });
    let _ = writeln!(w, "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  <on_crash>restart</on_crash>");
    let _ = writeln!(w, "  <devices>");
    let mut ndisk = 0;
    let mut nscsi = 0;
    for d in &spec.devices {
        let addr = libvirt_pci(d.addr);
        match &d.kind {
            DeviceKind::VirtioBlk { file, format, serial, readonly, bootindex, .. } => {
                let _ = writeln!(w, "    <disk type='file' device='disk' model='{}'>", d.model.libvirt());
                let _ = writeln!(w, "      <driver name='qemu' type='{}'/>", esc(format));
                let _ = writeln!(w, "      <source file='{}'/>", esc(&file.to_string_lossy()));
                let _ = writeln!(w, "      <target dev='{}' bus='virtio'/>", drive_name("vd", ndisk));
                if *readonly {
                    let _ = writeln!(w, "      <readonly/>");
                }
                let _ = writeln!(w, "      <serial>{}</serial>", esc(serial));
                if let Some(b) = bootindex {
                    let _ = writeln!(w, "      <boot order='{b}'/>");
                }
                let _ = writeln!(w, "      <alias name='ua-{}'/>", d.id);
                let _ = writeln!(w, "      {addr}\n    </disk>");
                ndisk += 1;
            }
            DeviceKind::VirtioNet { mac, backend } => {
                let (kind, src) = match backend {
                    NetBackend::Network { name } => ("network", format!("<source network='{}'/>", esc(name))),
                    NetBackend::Bridge { name } => ("bridge", format!("<source bridge='{}'/>", esc(name))),
                    NetBackend::Tap { name } => ("ethernet", format!("<target dev='{}' managed='no'/>", esc(name))),
                    NetBackend::User => ("user", String::new()),
                };
                let _ = writeln!(w, "    <interface type='{kind}'>");
                let _ = writeln!(w, "      <mac address='{}'/>", esc(mac));
                if !src.is_empty() {
                    let _ = writeln!(w, "      {src}");
                }
                let _ = writeln!(w, "      <model type='{}'/>", d.model.libvirt());
                let _ = writeln!(w, "      <alias name='ua-{}'/>", d.id);
                let _ = writeln!(w, "      {addr}\n    </interface>");
            }
            DeviceKind::VirtioConsole => {
                let _ = writeln!(w, "    <controller type='virtio-serial' index='0' model='{}'>", d.model.libvirt());
                let _ = writeln!(w, "      <alias name='ua-{}'/>\n      {addr}\n    </controller>", d.id);
                let _ = writeln!(w, "    <channel type='unix'>\n      <target type='virtio' name='org.qemu.guest_agent.0'/>");
                let _ = writeln!(w, "      <address type='virtio-serial' controller='0' bus='0' port='1'/>\n    </channel>");
            }
            DeviceKind::VirtioRng => {
                let _ = writeln!(w, "    <rng model='{}'>\n      <backend model='random'>/dev/urandom</backend>", d.model.libvirt());
                let _ = writeln!(w, "      <alias name='ua-{}'/>\n      {addr}\n    </rng>", d.id);
            }
            DeviceKind::VirtioBalloon => {
                let _ = writeln!(w, "    <memballoon model='{}'>", d.model.libvirt());
                let _ = writeln!(w, "      <alias name='ua-{}'/>\n      {addr}\n    </memballoon>", d.id);
            }
            // virtio-scsi: the controller at its PCI address (its model, as every virtio
            // device's, modern-only or transitional), each disk `sdX` at target N, unit 0.
            DeviceKind::VirtioScsi { disks } => {
                let _ = writeln!(w, "    <controller type='scsi' index='0' model='{}'>", d.model.libvirt());
                let _ = writeln!(w, "      <alias name='ua-{}'/>\n      {addr}\n    </controller>", d.id);
                for disk in disks {
                    let _ = writeln!(w, "    <disk type='file' device='disk'>");
                    let _ = writeln!(w, "      <driver name='qemu' type='{}'/>", esc(&disk.format));
                    let _ = writeln!(w, "      <source file='{}'/>", esc(&disk.file.to_string_lossy()));
                    let _ = writeln!(w, "      <target dev='{}' bus='scsi'/>", drive_name("sd", usize::from(disk.target)));
                    if disk.readonly {
                        let _ = writeln!(w, "      <readonly/>");
                    }
                    let _ = writeln!(w, "      <serial>{}</serial>", esc(&disk.serial));
                    if let Some(b) = disk.bootindex {
                        let _ = writeln!(w, "      <boot order='{b}'/>");
                    }
                    let _ = writeln!(w, "      <alias name='ua-{}'/>", disk.id);
                    let _ = writeln!(w, "      <address type='drive' controller='0' bus='0' target='{}' unit='0'/>\n    </disk>", disk.target);
                    nscsi = nscsi.max(usize::from(disk.target) + 1);
                }
            }
        }
    }
    // SATA CD-ROMs are `sdX` too: named after the SCSI disks.
    let cd_base = if p.cdrom.libvirt_prefix == "sd" { nscsi } else { 0 };
    for cd in &layout.cdroms {
        let (bus, unit) = if p.cdrom.controller == "ide" { (cd.port / 2, cd.port % 2) } else { (0, cd.port) };
        let _ = writeln!(w, "    <disk type='file' device='cdrom'>\n      <driver name='qemu' type='raw'/>");
        let _ = writeln!(w, "      <target dev='{}' bus='{}'/>\n      <readonly/>", drive_name(&p.cdrom.libvirt_prefix, cd_base + cd.port as usize), p.cdrom.libvirt_bus);
        let _ = writeln!(w, "      <alias name='ua-{}'/>", cd.id);
        let _ = writeln!(w, "      <address type='drive' controller='0' bus='{bus}' target='0' unit='{unit}'/>\n    </disk>");
    }
    let (root_model, storage) = if p.machine == "q35" { ("pcie-root", "sata") } else { ("pci-root", "ide") };
    let _ = writeln!(w, "    <controller type='pci' index='0' model='{root_model}'/>");
    for b in &spec.bridges {
        let shared = spec.bridges.iter().any(|o| o.addr.slot == b.addr.slot && o.addr.function != 0);
        let mut addr = libvirt_pci(b.addr);
        if b.addr.function == 0 && shared {
            addr = addr.replace("/>", " multifunction='on'/>");
        }
        let target = match b.port {
            Some(port) => format!("<target chassis='{}' port='0x{port:x}'/>", b.chassis),
            None => format!("<target chassisNr='{}'/>", b.chassis),
        };
        let kind = esc(&b.kind);
        let _ = writeln!(w, "    <controller type='pci' index='{}' model='{kind}'>\n      <model name='{kind}'/>\n      {target}\n      {addr}\n    </controller>", b.bus);
    }
    if let Some(f) = p.chipset.iter().find(|f| f.function == p.cdrom.controller) {
        if let Some(a) = ferry_formats::layout::parse_addr(&f.addr) {
            let _ = writeln!(w, "    <controller type='{storage}' index='0'>\n      {}\n    </controller>", libvirt_pci(a));
        }
    }
    let _ = writeln!(w, "    <controller type='usb' index='0' model='none'/>");
    let _ = writeln!(w, "    <serial type='pty'>\n      <target port='0'/>\n    </serial>");
    let _ = writeln!(w, "    <console type='pty'>\n      <target type='serial' port='0'/>\n    </console>");
    let _ = writeln!(w, "    <input type='mouse' bus='ps2'/>\n    <input type='keyboard' bus='ps2'/>");
    let _ = writeln!(w, "    <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>");
    let _ = writeln!(w, "    <video>\n      <model type='vga' vram='16384' heads='1' primary='yes'/>");
    let _ = writeln!(w, "      <alias name='ua-video0'/>\n      {}\n    </video>", libvirt_pci(layout.video));
    let _ = writeln!(w, "  </devices>\n</domain>");
    x
}

#[cfg(test)]
mod tests {
    use super::drive_name;

    #[test]
    fn drive_names() {
        assert_eq!(drive_name("vd", 0), "vda");
        assert_eq!(drive_name("vd", 25), "vdz");
        assert_eq!(drive_name("vd", 26), "vdaa");
        assert_eq!(drive_name("sd", 27), "sdab");
    }
}
