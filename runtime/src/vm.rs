//! One boot of a machine: KVM VM, memory, vCPU threads, devices; runs until the guest exits.
use std::os::unix::fs::OpenOptionsExt;
use crate::boot;
use crate::config::{ConsoleSink, VmConfig};
use crate::cpuid::{self, CpuidQuirks};
use crate::devices::legacy::{I8042, Markers, Rtc, DEBUG_EXIT_PORT, MARKER_PORT};
use crate::devices::pcihp::PciHotplug;
use crate::devices::pm::{Pm, PmPorts, SCI_IRQ};
use crate::devices::serial::{ConsoleOut, IrqTrigger, Uart};
use crate::devices::Action;
use crate::layout;
use crate::memory::{self, Memory};
use crate::pci::bus::Stub;
use crate::pci::PciBus;
use crate::virtio::balloon::{Balloon, BalloonCtl};
use crate::virtio::channel::Channel;
use crate::virtio::{blk::Blk, console::Console, net, pci::VirtioPci, rng::Rng, VirtioDevice};
use crate::{tables, Controller, ExitReason, VmError};
use crate::virtio::tap::Tap;
use ferry_formats::layout::{DeviceKind, NetBackend, VirtioModel};
use kvm_bindings::{kvm_pit_config, KVM_PIT_SPEAKER_DUMMY};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use vmm_sys_util::eventfd::EventFd;

/// Port-I/O devices.
struct Io {
    serial: Uart,
    i8042: I8042,
    rtc: Rtc,
    markers: Markers,
    pm: Pm,
    /// pc's ACPI PCI hotplug registers.
    pcihp: Option<PciHotplug>,
}

/// State shared by the vCPU threads of one boot.
pub(crate) struct Shared {
    io: Mutex<Io>,
    pub(crate) pci: Mutex<PciBus>,
    /// `query-block` rows: the spec's disks, then hot-plugged ones.
    pub(crate) blocks: Mutex<Vec<serde_json::Value>>,
    pub(crate) profile: ferry_formats::layout::Profile,
    pub(crate) balloon: Option<Arc<BalloonCtl>>,
    /// Live hotplug (pc's root bus).
    pub(crate) hotplug: Option<crate::hotplug::Hotplug>,
    firmware: Option<crate::firmware::Devices>,
    exit: Mutex<Option<ExitReason>>,
    exit_cv: Condvar,
    stopping: AtomicBool,
    threads: Mutex<Vec<libc::pthread_t>>,
}

impl Shared {
    pub(crate) fn finish(&self, r: ExitReason) {
        if let Ok(mut e) = self.exit.lock() {
            if e.is_none() {
                *e = Some(r);
            }
        }
        self.exit_cv.notify_all();
    }
    /// Forces every vCPU out of KVM_RUN (they re-check the pause and stop flags).
    pub(crate) fn kick(&self) {
        if let Ok(t) = self.threads.lock() {
            for th in t.iter() {
                // SAFETY: `th` is a live thread of this process (threads are joined only after
                // `stopping` is set and this list is cleared); the signal has a no-op handler.
                unsafe { libc::pthread_kill(*th, vmm_sys_util::signal::SIGRTMIN()) };
            }
        }
    }

    fn pio_read(&self, port: u16, data: &mut [u8]) {
        data.fill(0xff);
        if self.firmware.as_ref().is_some_and(|f| f.pio_read(port, data)) {
            return;
        }
        let Ok(mut io) = self.io.lock() else { return };
        match port {
            0x3f8..=0x3ff => data[0] = io.serial.read((port - 0x3f8) as u8),
            0x60 | 0x64 => data[0] = io.i8042.read(port),
            0x70 | 0x71 => data[0] = io.rtc.read(port),
            p if io.pm.decodes(p) => io.pm.read(p, data),
            p if PciHotplug::decodes(p) && io.pcihp.is_some() => {
                if let Some(h) = io.pcihp.as_mut() {
                    h.read(p, data);
                }
            }
            _ => {
                drop(io);
                if let Ok(mut pci) = self.pci.lock() {
                    if !pci.pio_read(port, data) {
                        pci.io_bar(port, Some(data), &[]);
                    }
                }
            }
        }
    }

    fn pio_write(&self, port: u16, data: &[u8]) -> Option<Action> {
        if let Some(action) = self.firmware.as_ref().and_then(|f| f.pio_write(port, data)) {
            return action;
        }
        let Ok(mut io) = self.io.lock() else { return None };
        let v = data[0];
        match port {
            0x3f8..=0x3ff => {
                if let Err(e) = io.serial.write((port - 0x3f8) as u8, v) {
                    crate::virtio::log("serial", &format!("{e:?}"));
                }
            }
            0x60 | 0x64 => return io.i8042.write(port, v),
            0x70 | 0x71 => io.rtc.write(port, v),
            MARKER_PORT => io.markers.mark(v),
            DEBUG_EXIT_PORT..=0xf7 => return Some(Action::Exit(v)),
            0xcf9 if data.len() == 1 => return (v & 4 != 0).then_some(Action::Reset),
            p if io.pm.decodes(p) => return io.pm.write(p, data).map(|_| Action::PowerOff),
            p if PciHotplug::decodes(p) && io.pcihp.is_some() => {
                let ejected = io.pcihp.as_mut().and_then(|h| h.write(p, data));
                drop(io);
                if let Some((bsel, slots)) = ejected {
                    return self.eject(bsel, slots);
                }
            }
            _ => {
                drop(io);
                if let Ok(mut pci) = self.pci.lock() {
                    if !pci.pio_write(port, data) {
                        pci.io_bar(port, None, data);
                    }
                }
            }
        }
        None
    }

    /// The guest ejected the functions of the slots in `slots` (bitmap) of bus selector
    /// `bsel`: they leave the bus (dropping a function stops its I/O and unregisters its
    /// notifications).
    fn eject(&self, bsel: usize, slots: u32) -> Option<Action> {
        let hp = self.hotplug.as_ref()?;
        let bus = hp.bus_of(bsel)?;
        let mut gone = Vec::new();
        if let Ok(mut pci) = self.pci.lock() {
            for slot in (0..32u8).filter(|s| slots & (1 << s) != 0) {
                gone.extend(pci.remove_slot(bus, slot));
            }
        }
        let ids: Vec<String> = gone.iter().map(|(id, _)| id.clone()).collect();
        drop(gone);
        if let Ok(mut b) = self.blocks.lock() {
            b.retain(|r| !ids.iter().any(|id| r["device"] == id.as_str()));
        }
        hp.registry.ejected(ids);
        Some(Action::Ejected)
    }

    /// `device_add` of a checked request: the function goes on the root bus and the guest is
    /// told through the hotplug GPE.
    pub(crate) fn plug(&self, req: &crate::hotplug::Request, driver: &str) -> Result<(), crate::hotplug::QmpError> {
        let no = crate::hotplug::generic;
        let hp = self.hotplug.as_ref().ok_or_else(|| no("this machine has no ACPI PCI hotplug".into()))?;
        let bsel = hp.bsel(req.bus).ok_or_else(|| no(format!("bus {} has no ACPI PCI hotplug", req.bus)))?;
        if !self.io.lock().is_ok_and(|io| io.pcihp.as_ref().is_some_and(|h| h.hotpluggable(bsel, req.slot))) {
            return Err(no(format!("PCI: slot {} does not take hot-plugged devices", req.slot)));
        }
        let mut req = req.clone();
        hp.registry.fill_mac(&mut req);
        let (f, block) = hp.build(&req)?;
        {
            let mut pci = self.pci.lock().map_err(|_| no("the PCI bus is unavailable".into()))?;
            if !pci.is_free(req.bus, req.slot, 0) || !pci.add_on(req.bus, req.slot, 0, Box::new(f)) {
                hp.registry.not_plugged(&req.id);
                return Err(no(format!("PCI: slot {} function 0 not available for {driver}", req.slot)));
            }
        }
        hp.registry.plugged(&req);
        if let (Some(b), Ok(mut rows)) = (block, self.blocks.lock()) {
            rows.push(b);
        }
        if let Ok(mut io) = self.io.lock() {
            if let Some(h) = io.pcihp.as_mut() {
                h.plug(bsel, req.slot);
            }
            io.pm.gpe_event(crate::hotplug::GPE_BIT);
        }
        Ok(())
    }

    /// `device_del` of the function `id` at `bus`:`slot`: the guest is asked to eject it.
    pub(crate) fn request_unplug(&self, id: &str, bus: u8, slot: u8) -> Result<(), crate::hotplug::QmpError> {
        let no = crate::hotplug::generic;
        let hp = self.hotplug.as_ref().ok_or_else(|| no("this machine has no ACPI PCI hotplug".into()))?;
        let bsel = hp.bsel(bus).ok_or_else(|| no(format!("bus {bus} has no ACPI PCI hotplug")))?;
        let mut io = self.io.lock().map_err(|_| no("the hotplug registers are unavailable".into()))?;
        if !io.pcihp.as_ref().is_some_and(|h| h.hotpluggable(bsel, slot)) {
            return Err(no(format!("Bus 'pci.0' does not support hotplugging of device '{id}'")));
        }
        // A repeated request is sent again (QEMU's PIIX4 answers it the same way).
        hp.registry.request_unplug(id);
        if let Some(h) = io.pcihp.as_mut() {
            h.request_unplug(bsel, slot);
        }
        io.pm.gpe_event(crate::hotplug::GPE_BIT);
        Ok(())
    }

    /// Presses the ACPI power button; true if the guest enabled its event (SCI raised).
    pub(crate) fn power_button(&self) -> bool {
        self.io.lock().map(|mut io| io.pm.press_power_button()).unwrap_or(false)
    }

    fn mmio(&self, addr: u64, read: Option<&mut [u8]>, write: &[u8]) {
        let Ok(mut pci) = self.pci.lock() else { return };
        match read {
            Some(d) => {
                d.fill(0xff);
                if self.firmware.as_ref().is_some_and(|f| f.mmio_read(addr, d)) {
                    return;
                }
                pci.mmio(addr, Some(d), &[]);
            }
            None => {
                if self.firmware.as_ref().is_some_and(|f| f.mmio_write(addr, write)) {
                    return;
                }
                pci.mmio(addr, None, write);
            }
        }
    }
}

/// How a boot ended, with what the guest printed and the boot markers it wrote.
#[derive(Debug)]
pub struct Outcome {
    /// Why the VM stopped.
    pub reason: ExitReason,
    /// Boot markers: (code, µs since the vCPUs started).
    pub markers: Vec<(u8, u64)>,
    /// Wall time from vCPU start to exit.
    pub elapsed: Duration,
    /// Everything written to the serial console and virtio-console port 0.
    pub console: Vec<u8>,
    /// What the firmware wrote to its debug console (port 0x402; firmware boots only).
    pub debugcon: Vec<u8>,
}

/// A created, not yet running, VM.
pub struct Vm {
    _kvm: Kvm,
    _vm: Arc<VmFd>,
    _mem: Memory,
    vcpus: Vec<VcpuFd>,
    shared: Arc<Shared>,
    captured: Arc<Mutex<Vec<u8>>>,
    _serial_evt: EventFd,
}

fn open_sink(s: &ConsoleSink) -> Result<Option<Box<dyn Write + Send>>, VmError> {
    Ok(match s {
        ConsoleSink::None => None,
        ConsoleSink::Stdout => Some(Box::new(std::io::stdout())),
        ConsoleSink::File(p) => Some(Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(p)
                .map_err(|e| VmError::Setup(format!("{}: {e}", p.display())))?,
        )),
    })
}

/// Listens on `cfg.channel_socket` for the first virtio-console's port 1.
pub(crate) fn open_channel(cfg: &VmConfig) -> Result<Option<Arc<Channel>>, VmError> {
    let Some(path) = cfg.channel_socket.as_deref() else { return Ok(None) };
    let Some(d) = cfg.devices.iter().find(|d| matches!(d.kind, DeviceKind::VirtioConsole)) else {
        return Err(VmError::Setup(format!("console channel socket {}: the machine has no virtio-console", path.display())));
    };
    let ch = Channel::listen(path).map_err(|e| VmError::Setup(format!("device {}: {e}", d.id)))?;
    Ok(Some(Arc::new(ch)))
}

/// True when /dev/kvm is kvm_pvm (guest kernel mode is emulated).
pub fn host_is_pvm() -> bool {
    std::path::Path::new("/sys/module/kvm_pvm").exists()
}

impl Vm {
    /// Direct boot: the kernel (and initrd), the tables in the BIOS area; returns the entry.
    fn load_boot_data(cfg: &VmConfig, mem: &Memory, acpi: &crate::acpi::AcpiTables, uuid: Option<[u8; 16]>) -> Result<boot::Entry, VmError> {
        let mem_bytes = cfg.memory_mib << 20;
        boot::write_tables(mem)?;
        let entry = match (&cfg.images, &cfg.guest_root) {
            (Some((k, rd)), _) => boot::load_image(
                mem,
                mem_bytes,
                boot::Image::Bytes(&k.name, &k.data),
                rd.as_ref().map(|r| boot::Image::Bytes(&r.name, &r.data)),
                &cfg.cmdline,
            )?,
            (None, Some(root)) => {
                return Err(VmError::Setup(format!(
                    "kernel {} is inside the guest ({root}): it must be read from the disks before the boot",
                    cfg.kernel.display()
                )))
            }
            (None, None) => boot::load(mem, mem_bytes, &cfg.kernel, cfg.initrd.as_deref(), &cfg.cmdline)?,
        };
        for (_, at, blob) in &acpi.tables {
            boot::write_blob(mem, *at, blob)?;
        }
        boot::set_rsdp(mem, entry, acpi.rsdp_addr())?;
        boot::write_blob(mem, layout::MPTABLE_ADDR, &tables::mptable(layout::MPTABLE_ADDR, &cfg.topology))?;
        boot::write_blob(mem, 0xf8000, &tables::smbios(0xf8000, uuid, &cfg.name))?;
        Ok(entry)
    }

    /// Creates the VM for `cfg`: memory, boot data, devices, vCPUs.
    pub fn new(cfg: &VmConfig) -> Result<Self, VmError> {
        Self::with_channel(cfg, open_channel(cfg)?)
    }

    /// Like [`new`](Self::new), with the console channel's host end already listening (it
    /// outlives one boot: a client stays connected across guest reboots).
    pub fn with_channel(cfg: &VmConfig, channel: Option<Arc<Channel>>) -> Result<Self, VmError> {
        Self::with_registry(cfg, channel, Arc::default())
    }

    /// Like [`with_channel`](Self::with_channel), with the run's block nodes and hot-plugged
    /// functions from earlier boots (plugged again; spec devices the guest ejected left out).
    pub(crate) fn with_registry(cfg: &VmConfig, channel: Option<Arc<Channel>>, registry: Arc<crate::hotplug::Registry>) -> Result<Self, VmError> {
        let kvm_err = |what: &str| {
            let what = what.to_string();
            move |e: kvm_ioctls::Error| VmError::Kvm(what.clone(), e)
        };
        let kvm = Kvm::new().map_err(kvm_err("open /dev/kvm"))?;
        let vm = Arc::new(kvm.create_vm().map_err(kvm_err("KVM_CREATE_VM"))?);
        if cfg.firmware.is_some() {
            // QEMU's pages (reserved in `etc/e820`), below the flash: OVMF's units reach
            // down to 4 GiB - 8 MiB, over KVM's default identity map at 0xfffbc000.
            let (identity, _) = crate::firmware::KVM_PAGES;
            vm.set_identity_map_address(identity).map_err(kvm_err("KVM_SET_IDENTITY_MAP_ADDR"))?;
            vm.set_tss_address(identity as usize + 0x1000).map_err(kvm_err("KVM_SET_TSS_ADDR"))?;
        } else {
            vm.set_tss_address(0xfffb_d000).map_err(kvm_err("KVM_SET_TSS_ADDR"))?;
        }
        vm.create_irq_chip().map_err(kvm_err("KVM_CREATE_IRQCHIP"))?;
        vm.create_pit2(kvm_pit_config { flags: KVM_PIT_SPEAKER_DUMMY, ..Default::default() })
            .map_err(kvm_err("KVM_CREATE_PIT2"))?;
        let hole = cfg.firmware.as_ref().map(|_| (crate::firmware::pam::AREA_START, crate::firmware::pam::AREA_END));
        let mem = memory::create_with_hole(&vm, cfg.memory_mib, &cfg.memory, hole)?;
        let mem_bytes = cfg.memory_mib << 20;
        let machine = crate::pci::Machine::of(&cfg.profile)
            .ok_or_else(|| VmError::Setup(format!("profile {}: machine {:?} is not q35 or pc", cfg.profile.name, cfg.profile.machine)))?;
        let chipset = crate::pci::chipset::functions(&cfg.profile).map_err(|e| VmError::Setup(e.to_string()))?;
        let stubs = crate::pci::chipset::class_stubs(&cfg.profile).map_err(|e| VmError::Setup(e.to_string()))?;
        let taken = chipset.iter().chain(&stubs).map(|(s, _, _)| *s).chain(cfg.bridges.iter().map(|b| b.addr.slot));
        let hotplug_slots = crate::hotplug::slots(machine, taken);
        // pc's PCI bridges hot-plug too (QEMU's acpi-pci-hotplug-with-bridge-support), BSEL 1..
        // in the spec's order.
        let hot_bridges: Vec<crate::hotplug::HotBridge> = if hotplug_slots == 0 {
            Vec::new()
        } else {
            cfg.bridges.iter().filter(|b| b.kind == "pci-bridge").map(|b| crate::hotplug::HotBridge { id: b.id.clone(), bus: b.bus, slot: b.addr.slot }).collect()
        };
        // Slots holding a device at boot, per bus: the spec's (less those ejected earlier) and
        // those hot-plugged before a reset.
        let replug = registry.replug();
        let present_on = |bus: u8| {
            let spec = cfg.devices.iter().filter(|d| d.addr.bus == bus && !registry.is_gone(&d.id)).map(|d| d.addr.slot);
            spec.chain(replug.iter().filter(|r| r.bus == bus).map(|r| r.slot)).filter(|s| *s < 32).fold(0u32, |m, s| m | (1 << s))
        };
        let hp = crate::acpi::Hotplug {
            slots: hotplug_slots,
            present: present_on(0),
            bridges: hot_bridges.iter().map(|b| crate::acpi::BridgeHotplug { slot: b.slot, present: present_on(b.bus) }).collect(),
        };
        let acpi = crate::acpi::build_with(machine, &cfg.topology, hp).map_err(|e| VmError::Setup(e.to_string()))?;
        let uuid = match &cfg.smbios_uuid {
            Some(u) => Some(tables::smbios_uuid_bytes(u).ok_or_else(|| VmError::Setup(format!("invalid smbios_uuid {u:?}: not a UUID")))?),
            None => None,
        };
        let firmware = match &cfg.firmware {
            Some(image) => {
                let items = crate::firmware::Items { mem_bytes, topology: &cfg.topology, acpi: &acpi, uuid, name: &cfg.name, boot_order: &image.boot_order };
                let fw_cfg = crate::firmware::fw_cfg(&items, &image.name).map_err(|e| VmError::Setup(e.to_string()))?;
                Some(crate::firmware::Devices::new(&vm, &mem, image, machine, fw_cfg).map_err(|e| VmError::Setup(e.to_string()))?)
            }
            None => None,
        };
        let entry = if firmware.is_some() { None } else { Some(Self::load_boot_data(cfg, &mem, &acpi, uuid)?) };

        let serial_evt = EventFd::new(libc::EFD_NONBLOCK).map_err(|e| VmError::Setup(format!("eventfd: {e}")))?;
        vm.register_irqfd(&serial_evt, 4).map_err(kvm_err("KVM_IRQFD"))?;
        let trigger = IrqTrigger(serial_evt.try_clone().map_err(|e| VmError::Setup(format!("eventfd: {e}")))?);
        let serial_out = ConsoleOut::new(open_sink(&cfg.console)?);
        let captured = serial_out.captured.clone();

        let mut pci = PciBus::new();
        for (s, f, mut c) in chipset {
            match (&firmware, s, f) {
                (Some(fw), 0, 0) => {
                    pci.add(s, f, Box::new(crate::firmware::pam::PamHost::new(c, machine, fw.pam.clone())));
                    continue;
                }
                // PIIX4 DEVACTB.APMC_EN: SMM reads as set up, as QEMU's without SMM.
                (Some(_), 1, 3) if machine == crate::pci::Machine::Pc => c.set8(0x5b, 0x02),
                _ => {}
            }
            pci.add(s, f, Box::new(Stub(c)));
        }
        let mut root_ports = std::collections::BTreeSet::new();
        let mut bridge_slots = std::collections::BTreeMap::new();
        for b in &cfg.bridges {
            let kind = crate::pci::BridgeKind::of(&b.kind).ok_or_else(|| VmError::Setup(format!("bridge {}: kind {:?} is not served by the runtime", b.id, b.kind)))?;
            let multi = b.addr.function == 0 && cfg.bridges.iter().any(|o| o.addr.slot == b.addr.slot && o.addr.function != 0);
            let bridge = crate::pci::Bridge::new(kind, b.bus, b.chassis, b.port.unwrap_or(0), multi).with_id(&b.id);
            if !pci.add_bridge(b.addr.slot, b.addr.function, bridge) {
                return Err(VmError::Setup(format!("bridge {}: address {} or bus {} is taken", b.id, b.addr, b.bus)));
            }
            if kind == crate::pci::BridgeKind::RootPort {
                root_ports.insert(b.bus);
            }
            bridge_slots.insert(b.bus, b.addr.slot);
        }
        let mut blocks = Vec::new();
        let intx_lines = crate::devices::intx::IntxLines::new(vm.clone());
        let mut balloon = None;
        let mut channel = channel;
        // QEMU 10's virtio-blk-pci and virtio-scsi-pci default (num-queues auto): a request
        // queue per vCPU.
        let queues = u16::try_from(cfg.topology.vcpus()).unwrap_or(1);
        let hotplug = (hotplug_slots != 0).then(|| {
            crate::hotplug::Hotplug::new(mem.clone(), vm.clone(), intx_lines.clone(), machine, queues, hot_bridges.clone(), registry.clone())
        });
        for d in cfg.devices.iter().filter(|d| !registry.is_gone(&d.id)) {
            let dev: Box<dyn VirtioDevice> = match &d.kind {
                DeviceKind::VirtioBlk { file, format, serial, readonly, logical_block_size, physical_block_size, .. } => {
                    let disk = crate::disk::open(file, format, *readonly).map_err(|e| VmError::Setup(format!("device {}: {e}", d.id)))?;
                    let b = Blk::new(&d.id, disk, serial, *logical_block_size, *physical_block_size).with_queues(queues);
                    blocks.push(b.describe());
                    Box::new(b)
                }
                DeviceKind::VirtioNet { mac, backend } => {
                    let m = net::parse_mac(mac).ok_or_else(|| VmError::Setup(format!("device {}: invalid mac {mac:?}", d.id)))?;
                    match backend {
                        NetBackend::Tap { name } => {
                            let tap = Tap::open(name).map_err(|e| VmError::Setup(format!("device {}: tap {name}: {e}", d.id)))?;
                            Box::new(net::Net::with_tap(m, tap))
                        }
                        NetBackend::User => Box::new(net::Net::new(m)),
                        other => {
                            crate::virtio::log(&d.id, &format!("backend {other:?} is not available in the runtime: using the null backend"));
                            Box::new(net::Net::new(m))
                        }
                    }
                }
                DeviceKind::VirtioConsole => {
                    let out = Box::new(ConsoleOut::with_capture(open_sink(&cfg.console)?, captured.clone()));
                    Box::new(Console::with_channel(out, channel.take()))
                }
                DeviceKind::VirtioRng => Box::new(Rng),
                DeviceKind::VirtioBalloon => {
                    let ctl = BalloonCtl::new(mem_bytes);
                    balloon = Some(ctl.clone());
                    Box::new(Balloon::new(ctl))
                }
                DeviceKind::VirtioScsi { disks } => {
                    let mut targets = Vec::new();
                    for s in disks {
                        let disk = crate::disk::open(&s.file, &s.format, s.readonly).map_err(|e| VmError::Setup(format!("device {}: {e}", s.id)))?;
                        targets.push(crate::virtio::scsi::Target::new(&s.id, s.target, &s.serial, disk));
                    }
                    Box::new(crate::virtio::scsi::Scsi::new(&d.id, targets, queues))
                }
            };
            let vectors = cfg.profile.class(d.kind.class()).ok().and_then(|c| c.msix_vectors);
            let legacy_id = (d.model == VirtioModel::Transitional).then(|| d.kind.pci_device_id(d.model));
            let mut f = VirtioPci::new(&d.id, dev, mem.clone(), vm.clone(), vectors, legacy_id);
            if root_ports.contains(&d.addr.bus) {
                f = f.express_endpoint();
            }
            let a = d.addr;
            let gsi = match bridge_slots.get(&a.bus) {
                None => crate::devices::intx::gsi(machine, a.slot, 1),
                Some(&bs) => crate::devices::intx::gsi_behind(machine, bs, a.slot, 1),
            };
            if let Some(gsi) = gsi {
                f = f.with_intx(crate::devices::intx::IntxPin::behind(intx_lines.clone(), gsi, a.bus, a.slot, a.function));
            }
            if !pci.add_on(a.bus, a.slot, a.function, Box::new(f)) {
                return Err(VmError::Setup(format!("device {}: address {} is taken or invalid", d.id, d.addr)));
            }
        }
        for req in hotplug.as_ref().map(|h| h.registry.replug()).unwrap_or_default() {
            let placed = hotplug.as_ref().map(|h| h.build(&req)).map(|f| match f {
                Ok((f, block)) => {
                    blocks.extend(block);
                    pci.add_on(req.bus, req.slot, 0, Box::new(f))
                }
                Err(e) => {
                    crate::virtio::log(&req.id, &format!("not plugged again after the reset: {}", e.desc));
                    false
                }
            });
            if placed != Some(true) {
                registry.forget(&req.id);
            }
        }
        for (s, f, c) in stubs {
            // A hand-made spec may use the slot for a device of its own; that device wins.
            pci.add(s, f, Box::new(Stub(c)));
        }
        pci.assign_bars();

        let base = cpuid::supported(&kvm).map_err(kvm_err("KVM_GET_SUPPORTED_CPUID"))?;
        let quirks = CpuidQuirks { pvm: host_is_pvm() };
        let mut vcpus = Vec::new();
        for i in 0..cfg.topology.vcpus() {
            let vcpu = vm.create_vcpu(u64::from(cpuid::apic_id(&cfg.topology, i))).map_err(kvm_err("KVM_CREATE_VCPU"))?;
            vcpu.set_cpuid2(&cpuid::for_vcpu(&base, &cfg.topology, i, quirks)).map_err(kvm_err("KVM_SET_CPUID2"))?;
            crate::regs::setup_common(&vcpu).map_err(kvm_err("vCPU setup"))?;
            if let (0, Some(entry)) = (i, entry) {
                crate::regs::setup_boot_vcpu(&vcpu, entry).map_err(kvm_err("boot vCPU registers"))?;
            }
            vcpus.push(vcpu);
        }
        let mut rtc = Rtc::new(mem_bytes);
        if firmware.is_some() {
            crate::firmware::cmos::fill(&mut rtc, cfg.topology.vcpus());
        }
        let io = Io {
            serial: Uart::new(trigger, serial_out),
            i8042: if firmware.is_some() { I8042::with_keyboard() } else { I8042::default() },
            rtc,
            markers: Markers::new(),
            pcihp: (hotplug_slots != 0).then(|| PciHotplug::with_bridges(hotplug_slots, hot_bridges.len())),
            pm: Pm::new(PmPorts::for_profile(machine), {
                let vm = vm.clone();
                Box::new(move |level| {
                    if let Err(e) = vm.set_irq_line(SCI_IRQ, level) {
                        crate::virtio::log("pm", &format!("KVM_IRQ_LINE {SCI_IRQ}: {e}"));
                    }
                })
            }),
        };
        let shared = Arc::new(Shared {
            io: Mutex::new(io),
            pci: Mutex::new(pci),
            blocks: Mutex::new(blocks),
            profile: cfg.profile.clone(),
            balloon,
            hotplug,
            firmware,
            exit: Mutex::new(None),
            exit_cv: Condvar::new(),
            stopping: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
        });
        Ok(Vm { _kvm: kvm, _vm: vm, _mem: mem, vcpus, shared, captured, _serial_evt: serial_evt })
    }

    /// Runs until the guest exits, `timeout` passes, or `ctl` asks to stop.
    pub fn run(self, ctl: &Arc<Controller>, timeout: Option<Duration>) -> Outcome {
        install_kick_handler();
        if let Some(b) = &self.shared.balloon {
            let weak = Arc::downgrade(ctl);
            b.on_change(move |actual| {
                if let Some(c) = weak.upgrade() {
                    c.emit("BALLOON_CHANGE", serde_json::json!({"actual": actual}));
                }
            });
        }
        ctl.attach(self.shared.clone());
        let start = Instant::now();
        if let Ok(mut io) = self.shared.io.lock() {
            io.markers = Markers::new();
        }
        let mut handles = Vec::new();
        for (i, vcpu) in self.vcpus.into_iter().enumerate() {
            let shared = self.shared.clone();
            let ctl = ctl.clone();
            let h = std::thread::Builder::new().name(format!("vcpu{i}")).spawn(move || vcpu_loop(vcpu, &shared, &ctl));
            match h {
                Ok(h) => {
                    use std::os::unix::thread::JoinHandleExt;
                    if let Ok(mut t) = self.shared.threads.lock() {
                        t.push(h.as_pthread_t());
                    }
                    handles.push(h);
                }
                Err(e) => self.shared.finish(ExitReason::Error(format!("cannot start vCPU thread: {e}"))),
            }
        }
        let fds = self.shared.pci.lock().map(|p| p.poll_fds()).unwrap_or_default();
        if !fds.is_empty() {
            let shared = self.shared.clone();
            match std::thread::Builder::new().name("backend-poll".into()).spawn(move || poll_loop(fds, &shared)) {
                Ok(h) => handles.push(h),
                Err(e) => self.shared.finish(ExitReason::Error(format!("cannot start backend thread: {e}"))),
            }
        }
        let reason = {
            let mut guard = self.shared.exit.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(r) = guard.clone() {
                    break r;
                }
                let wait = match timeout {
                    Some(t) => match t.checked_sub(start.elapsed()) {
                        Some(left) => left,
                        None => break ExitReason::Timeout,
                    },
                    None => Duration::from_millis(500),
                };
                guard = match self.shared.exit_cv.wait_timeout(guard, wait) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            }
        };
        let elapsed = start.elapsed();
        self.shared.stopping.store(true, Ordering::SeqCst);
        ctl.wake_paused();
        while handles.iter().any(|h| !h.is_finished()) {
            self.shared.kick();
            std::thread::sleep(Duration::from_millis(2));
        }
        if let Ok(mut t) = self.shared.threads.lock() {
            t.clear();
        }
        for h in handles {
            let _ = h.join();
        }
        ctl.detach();
        let markers = self.shared.io.lock().map(|io| io.markers.seen.clone()).unwrap_or_default();
        let console = self.captured.lock().map(|c| c.clone()).unwrap_or_default();
        let debugcon = self.shared.firmware.as_ref().map(|f| f.debugcon()).unwrap_or_default();
        Outcome { reason, markers, elapsed, console, debugcon }
    }
}

/// Waits for backend input (tap frames) and lets the devices deliver it.
fn poll_loop(fds: Vec<std::os::unix::io::RawFd>, shared: &Shared) {
    if let Err(e) = crate::sandbox::enter(crate::sandbox::ThreadClass::Io) {
        return shared.finish(ExitReason::Error(e.to_string()));
    }
    let mut pfds: Vec<libc::pollfd> = fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    while !shared.stopping.load(Ordering::SeqCst) {
        // SAFETY: `pfds` is a valid array of pollfd of the given length for the call's duration.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 50) };
        if n > 0 {
            let delivered = shared.pci.lock().map(|mut p| p.poll_all()).unwrap_or(false);
            if !delivered {
                // Frames wait for receive buffers; the guest's rx notify delivers them.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

extern "C" fn kick_handler(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

fn install_kick_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = vmm_sys_util::signal::register_signal_handler(vmm_sys_util::signal::SIGRTMIN(), kick_handler);
    });
}

/// With `FERRY_VCPU_DUMP` set, a stopping vCPU prints where it was (diagnosing hangs).
fn dump_state(vcpu: &VcpuFd) {
    if std::env::var_os("FERRY_VCPU_DUMP").is_none() {
        return;
    }
    let name = std::thread::current().name().unwrap_or("vcpu").to_string();
    match (vcpu.get_regs(), vcpu.get_sregs(), vcpu.get_mp_state()) {
        (Ok(r), Ok(s), Ok(mp)) => eprintln!(
            "ferry-runtime: {name}: rip {:#x} rsp {:#x} rflags {:#x} rax {:#x} rcx {:#x} cs {:#x} cr0 {:#x} cr3 {:#x} mp_state {}",
            r.rip, r.rsp, r.rflags, r.rax, r.rcx, s.cs.selector, s.cr0, s.cr3, mp.mp_state
        ),
        (r, _, _) => eprintln!("ferry-runtime: {name}: registers unreadable: {:?}", r.err()),
    }
}

fn vcpu_loop(mut vcpu: VcpuFd, shared: &Shared, ctl: &Controller) {
    if let Err(e) = crate::sandbox::enter(crate::sandbox::ThreadClass::Vcpu) {
        return shared.finish(ExitReason::Error(e.to_string()));
    }
    loop {
        if shared.stopping.load(Ordering::SeqCst) {
            return dump_state(&vcpu);
        }
        ctl.wait_while_paused(&shared.stopping);
        match vcpu.run() {
            Ok(VcpuExit::IoIn(port, data)) => shared.pio_read(port, data),
            Ok(VcpuExit::IoOut(port, data)) => match shared.pio_write(port, data) {
                Some(Action::Exit(code)) => return shared.finish(ExitReason::DebugExit(code)),
                Some(Action::Reset) => return shared.finish(ExitReason::Reset),
                Some(Action::PowerOff) => return shared.finish(ExitReason::Shutdown),
                Some(Action::Ejected) => {
                    for id in shared.hotplug.as_ref().map(|h| h.registry.take_ejected()).unwrap_or_default() {
                        ctl.device_deleted(&id);
                    }
                }
                None => {}
            },
            Ok(VcpuExit::MmioRead(addr, data)) => shared.mmio(addr, Some(data), &[]),
            Ok(VcpuExit::MmioWrite(addr, data)) => shared.mmio(addr, None, data),
            Ok(VcpuExit::Hlt) | Ok(VcpuExit::Intr) => {}
            Ok(VcpuExit::Shutdown) => return shared.finish(ExitReason::Reset), // triple fault resets, as on hardware
            Ok(VcpuExit::SystemEvent(kind, _)) => return shared.finish(if kind == kvm_bindings::KVM_SYSTEM_EVENT_RESET {
                ExitReason::Reset
            } else {
                ExitReason::Shutdown
            }),
            Ok(VcpuExit::InternalError) => {
                // KVM could not emulate an instruction (kvm_pvm: guest ring 0 is emulated).
                let at = vcpu.get_regs().map(|r| format!(" at rip {:#x}", r.rip)).unwrap_or_default();
                dump_state(&vcpu);
                return shared.finish(ExitReason::Error(format!("KVM internal error{at}: KVM could not emulate the guest's instruction there")));
            }
            Ok(other) => {
                let what = format!("unexpected vCPU exit {other:?}");
                dump_state(&vcpu);
                return shared.finish(ExitReason::Error(what));
            }
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {}
            Err(e) => return shared.finish(ExitReason::Error(format!("KVM_RUN: {e}"))),
        }
    }
}
