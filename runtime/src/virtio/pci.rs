//! The virtio-pci transport, laid out exactly like QEMU's `virtio-*-pci-non-transitional`:
//! BAR1 = MSI-X (table at 0, PBA at 0x800), BAR4 = 16 KiB 64-bit prefetchable (common config
//! 0x0, ISR 0x1000, device config 0x2000, notify 0x3000 with multiplier 4), capabilities at
//! 0x40 common, 0x50 ISR, 0x60 device, 0x70 notify, 0x84 PCI-cfg window, 0x98 MSI-X.
//!
//! A transitional device (`virtio-*-pci-transitional`) adds I/O BAR 0 with the legacy
//! register block ([`legacy`]), the legacy device ID (0x1000 + n) and subsystem ID (the virtio
//! device type), and revision 0.
//!
//! Devices that serve their queues on an I/O thread ([`VirtioDevice::activate`]) get their
//! notifications through eventfds: KVM ioeventfds on the notify addresses (no exit), or the
//! MMIO exit path when the BAR moved since activation.
use super::irq::{Irq, NO_VECTOR};
use super::{log, VirtioDevice, VirtioError, F_EVENT_IDX, F_RING_RESET, F_VERSION_1};
use crate::devices::intx::IntxPin;
use crate::memory::Memory;
use crate::pci::chipset::QEMU_SUBSYSTEM;
use crate::pci::{BarKind, ConfigSpace, PciFunction};
use kvm_ioctls::{IoEventAddress, NoDatamatch, VmFd};
use std::sync::Arc;
use virtio_queue::{Queue, QueueT};
use vmm_sys_util::eventfd::EventFd;

mod legacy;

const MSIX_CAP: usize = 0x98;
const CFG_CAP: usize = 0x84;

/// The virtio capabilities (common, ISR, device, notify, PCI-cfg window) and MSI-X, at QEMU's
/// root-bus offsets plus `shift`.
fn add_virtio_caps(cfg: &mut ConfigSpace, shift: usize, nvec: u16) {
    let vcap = |kind: u8, off: u32, len: u32| {
        let mut b = vec![0u8; 14];
        b[0] = if kind == 2 || kind == 5 { 0x14 } else { 0x10 };
        b[1] = kind;
        b[2] = if kind == 5 { 0 } else { 4 };
        b[6..10].copy_from_slice(&off.to_le_bytes());
        b[10..14].copy_from_slice(&len.to_le_bytes());
        b
    };
    // The first virtio capability links to what precedes it (0 on the root bus, the power
    // management capability behind a root port).
    let first_next = if shift == 0 { 0 } else { 0x7c };
    let at = |o: usize| o + shift;
    cfg.add_cap(at(0x40), 0x09, first_next, &vcap(1, 0, 0x1000), &[]);
    cfg.add_cap(at(0x50), 0x09, at(0x40) as u8, &vcap(3, 0x1000, 0x1000), &[]);
    cfg.add_cap(at(0x60), 0x09, at(0x50) as u8, &vcap(4, 0x2000, 0x1000), &[]);
    let mut notify = vcap(2, 0x3000, 0x1000);
    notify.extend_from_slice(&4u32.to_le_bytes()); // notify_off_multiplier
    cfg.add_cap(at(0x70), 0x09, at(0x60) as u8, &notify, &[]);
    let mut win = vcap(5, 0, 0);
    win.extend_from_slice(&[0; 4]);
    cfg.add_cap(at(CFG_CAP), 0x09, at(0x70) as u8, &win, &[]);
    cfg.writable(at(CFG_CAP) + 4, at(CFG_CAP) + 5); // bar
    cfg.writable(at(CFG_CAP) + 8, at(CFG_CAP) + 20); // offset, length, data
    if nvec > 0 {
        let mut msix = Vec::new();
        msix.extend_from_slice(&(nvec - 1).to_le_bytes());
        msix.extend_from_slice(&1u32.to_le_bytes()); // table: BIR 1, offset 0
        msix.extend_from_slice(&0x801u32.to_le_bytes()); // PBA: BIR 1, offset 0x800
        cfg.add_cap(at(MSIX_CAP), 0x11, at(CFG_CAP) as u8, &msix, &[0x00, 0xc0]);
        cfg.set_cap_head(at(MSIX_CAP) as u8);
    } else {
        cfg.set_cap_head(at(CFG_CAP) as u8);
    }
}

const STATUS_ACK_DRIVER: u8 = 3;
const STATUS_FEATURES_OK: u8 = 8;
const STATUS_NEEDS_RESET: u8 = 0x40;
/// Where the virtio capabilities move behind a PCIe root port (after the PCI Express
/// endpoint capability at 0x40 and power management at 0x7c, as QEMU lays them out).
const EXPRESS_SHIFT: usize = 0x44;

/// A virtio device behind the PCI transport.
pub struct VirtioPci {
    id: String,
    cfg: ConfigSpace,
    dev: Box<dyn VirtioDevice>,
    mem: Memory,
    vm: Arc<VmFd>,
    irq: Arc<Irq>,
    dfsel: u32,
    gfsel: u32,
    driver_features: u64,
    status: u8,
    qsel: u16,
    queues: Vec<Queue>,
    /// Per-queue notification eventfds of a device running its own I/O thread.
    kicks: Option<Vec<EventFd>>,
    /// ioeventfds registered for `kicks`: (guest-physical notify address, queue).
    ioevents: Vec<(u64, usize)>,
    /// ioeventfds on the legacy queue-notify port (matching the queue index written there).
    pio_ioevents: Vec<(u64, usize)>,
    /// Whether I/O BAR 0 carries the legacy interface.
    transitional: bool,
    /// The MSI-X capability (0x98; 0xdc behind a root port).
    msix_cap: usize,
    /// The VIRTIO_PCI_CAP_PCI_CFG window capability (0x84; 0xc8 behind a root port).
    cfg_cap: usize,
    nvec: u16,
}

impl VirtioPci {
    /// Wraps `dev`; `id` names it in logs and QMP.
    /// `vectors` overrides the device's MSI-X vector count (0: no MSI-X capability or table
    /// BAR, INTx only — as the profile's machine type presents it). `legacy_id` makes it
    /// transitional with that PCI device ID (0x1000 net, 0x1001 block, ...).
    pub fn new(id: &str, dev: Box<dyn VirtioDevice>, mem: Memory, vm: Arc<VmFd>, vectors: Option<u16>, legacy_id: Option<u16>) -> Self {
        let nvec = vectors.unwrap_or_else(|| dev.msix_vectors().max(1));
        let mut cfg = match legacy_id {
            None => ConfigSpace::new(0x1af4, 0x1040 + dev.device_type(), dev.class_code() | 1, 0, QEMU_SUBSYSTEM),
            Some(device) => {
                let mut c = ConfigSpace::new(0x1af4, device, dev.class_code(), 0, (0x1af4, dev.device_type()));
                c.add_bar(0, legacy::bar_size(dev.device_type(), nvec > 0), BarKind::Io);
                c
            }
        };
        cfg.set8(0x3d, 1); // INTA
        if nvec > 0 {
            cfg.add_bar(1, 0x1000, BarKind::Mem32);
        }
        cfg.add_bar(4, 0x4000, BarKind::Mem64 { prefetch: true });
        if dev.rom_size() > 0 {
            cfg.add_rom(dev.rom_size());
        }
        add_virtio_caps(&mut cfg, 0, nvec);
        let queues = dev.queue_sizes().into_iter().filter_map(|s| Queue::new(s).ok()).collect::<Vec<_>>();
        let irq = Irq::new(id, vm.clone(), nvec, queues.len());
        VirtioPci {
            id: id.to_string(),
            cfg,
            dev,
            mem,
            vm,
            irq,
            dfsel: 0,
            gfsel: 0,
            driver_features: 0,
            status: 0,
            qsel: 0,
            queues,
            kicks: None,
            ioevents: Vec::new(),
            pio_ioevents: Vec::new(),
            transitional: legacy_id.is_some(),
            msix_cap: MSIX_CAP,
            cfg_cap: CFG_CAP,
            nvec,
        }
    }

    /// Presents the function as a PCI Express endpoint, as QEMU does for a virtio device on
    /// the secondary bus of a PCIe root port: the Express capability (v2, endpoint, FLR) at
    /// 0x40, power management at 0x7c, and the virtio capabilities and MSI-X 0x44 higher.
    pub fn express_endpoint(mut self) -> Self {
        self.cfg.clear_caps();
        // Express: flags v2/endpoint; devcap role-based errors + FLR; link 2.5 GT/s x1 with
        // ASPM L0s; devcap2 extended fmt + end-end TLP prefix. Writable: devctl error
        // reporting enables + FLR, lnkctl ASPM + extended synch, devctl2 end-end TLP prefix
        // blocking.
        let mut exp = vec![0u8; 0x3a];
        exp[0..2].copy_from_slice(&0x0002u16.to_le_bytes());
        exp[2..6].copy_from_slice(&0x1000_8000u32.to_le_bytes());
        exp[10..14].copy_from_slice(&0x0000_0411u32.to_le_bytes());
        exp[16..18].copy_from_slice(&0x0011u16.to_le_bytes());
        exp[34..38].copy_from_slice(&0x0030_0000u32.to_le_bytes());
        let mut wm = vec![0u8; 0x3a];
        wm[6..8].copy_from_slice(&0x800fu16.to_le_bytes());
        wm[14..16].copy_from_slice(&0x0083u16.to_le_bytes());
        wm[38..40].copy_from_slice(&0x8000u16.to_le_bytes());
        self.cfg.add_cap(0x40, 0x10, 0x00, &exp, &wm);
        // Power management v3, D0; PMCSR power state writable.
        self.cfg.add_cap(0x7c, 0x01, 0x40, &[0x03, 0x00, 0, 0, 0, 0], &[0, 0, 0x03, 0]);
        add_virtio_caps(&mut self.cfg, EXPRESS_SHIFT, self.nvec);
        self.msix_cap = MSIX_CAP + EXPRESS_SHIFT;
        self.cfg_cap = CFG_CAP + EXPRESS_SHIFT;
        self
    }

    fn msix_control(&self) -> u16 {
        self.cfg.get16(self.msix_cap + 2)
    }

    /// Wires the legacy interrupt pin (used while MSI-X is disabled).
    pub fn with_intx(self, pin: IntxPin) -> Self {
        self.irq.lock().intx = Some(pin);
        self
    }

    fn msix_sync(&mut self) {
        let ctl = self.msix_control();
        let mut st = self.irq.lock();
        st.enabled = ctl & 0x8000 != 0;
        st.masked = ctl & 0x4000 != 0;
        st.intx_disabled = self.cfg.get16(4) & 0x400 != 0;
        self.irq.flush_pending(&mut st);
        self.irq.update_intx(&mut st);
    }

    fn reset(&mut self) {
        self.deactivate();
        self.dev.reset(); // first: an I/O thread is joined before its queues and vectors go
        for q in &mut self.queues {
            q.reset();
        }
        self.driver_features = 0;
        self.status = 0;
        self.irq.reset();
    }

    /// DRIVER_OK: a device with its own I/O thread takes the queues; its kicks are wired to
    /// ioeventfds on the notify addresses.
    fn activate(&mut self) {
        self.dev.negotiated(self.driver_features);
        if self.transitional && self.driver_features & F_VERSION_1 == 0 {
            log(&self.id, &format!("driver uses the legacy interface (features {:#x})", self.driver_features));
        }
        let Some(kicks) = self.dev.activate(&self.queues, &self.mem, self.irq.clone()) else { return };
        if let Some(bar) = self.cfg.bar_addr(4) {
            for (q, k) in kicks.iter().enumerate() {
                let addr = bar + 0x3000 + 4 * q as u64;
                match self.vm.register_ioevent(k, &IoEventAddress::Mmio(addr), NoDatamatch) {
                    Ok(()) => self.ioevents.push((addr, q)),
                    Err(e) => log(&self.id, &format!("ioeventfd at {addr:#x}: {e}; notifications take the exit path")),
                }
            }
        }
        if let Some(io) = self.cfg.bar_addr(0).filter(|_| self.transitional) {
            // The legacy notify register: a 16-bit write of the queue index.
            let port = io + 0x10;
            for (q, k) in kicks.iter().enumerate() {
                match self.vm.register_ioevent(k, &IoEventAddress::Pio(port), q as u16) {
                    Ok(()) => self.pio_ioevents.push((port, q)),
                    Err(e) => log(&self.id, &format!("ioeventfd at port {port:#x}: {e}; notifications take the exit path")),
                }
            }
        }
        self.kicks = Some(kicks);
    }

    fn unregister_ioevents(&mut self) {
        let Some(kicks) = self.kicks.as_ref() else { return };
        for (addr, q) in self.ioevents.drain(..) {
            if let Some(k) = kicks.get(q) {
                if let Err(e) = self.vm.unregister_ioevent(k, &IoEventAddress::Mmio(addr), NoDatamatch) {
                    log(&self.id, &format!("ioeventfd at {addr:#x}: {e}"));
                }
            }
        }
        for (port, q) in self.pio_ioevents.drain(..) {
            if let Some(k) = kicks.get(q) {
                if let Err(e) = self.vm.unregister_ioevent(k, &IoEventAddress::Pio(port), q as u16) {
                    log(&self.id, &format!("ioeventfd at port {port:#x}: {e}"));
                }
            }
        }
    }

    fn deactivate(&mut self) {
        self.unregister_ioevents();
        self.kicks = None;
    }

    fn fail(&mut self, e: VirtioError) {
        self.irq.fail(&e);
    }

    fn notify(&mut self, q: usize) {
        if self.irq.needs_reset() || self.status & 4 == 0 {
            return;
        }
        if let Some(kicks) = self.kicks.as_ref() {
            if let Some(k) = kicks.get(q) {
                let _ = k.write(1);
            }
            return;
        }
        if !self.queues.get(q).is_some_and(|x| x.ready()) {
            return;
        }
        let r = self.dev.process(q, &mut self.queues, &self.mem);
        self.complete(r);
    }

    fn complete(&mut self, r: Result<u64, VirtioError>) -> bool {
        match r {
            Ok(mask) => {
                for i in 0..self.queues.len().min(64) {
                    if mask & (1 << i) != 0 && self.queues[i].needs_notification(&self.mem).unwrap_or(true) {
                        self.irq.queue(i);
                    }
                }
                mask != 0
            }
            Err(e) => {
                self.fail(e);
                false
            }
        }
    }

    /// The common configuration structure as the driver sees it (virtio 1.x layout).
    fn common_bytes(&self) -> [u8; 0x3c] {
        let q = self.queues.get(usize::from(self.qsel));
        let feats = self.dev.features();
        let st = self.irq.lock();
        let mut b = [0u8; 0x3c];
        let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
        put(0x00, &self.dfsel.to_le_bytes());
        let df = match self.dfsel {
            0 => feats as u32,
            1 => (feats >> 32) as u32,
            _ => 0,
        };
        put(0x04, &df.to_le_bytes());
        put(0x08, &self.gfsel.to_le_bytes());
        let gf = match self.gfsel {
            0 => self.driver_features as u32,
            1 => (self.driver_features >> 32) as u32,
            _ => 0,
        };
        put(0x0c, &gf.to_le_bytes());
        put(0x10, &st.config_vector.to_le_bytes());
        put(0x12, &(self.queues.len() as u16).to_le_bytes());
        let needs_reset = if st.needs_reset { STATUS_NEEDS_RESET } else { 0 };
        put(0x14, &[self.status | needs_reset, st.generation]);
        put(0x16, &self.qsel.to_le_bytes());
        if let Some(q) = q {
            put(0x18, &q.size().to_le_bytes());
            put(0x1a, &st.vectors.get(usize::from(self.qsel)).copied().unwrap_or(NO_VECTOR).to_le_bytes());
            put(0x1c, &u16::from(q.ready()).to_le_bytes());
            put(0x1e, &self.qsel.to_le_bytes());
            put(0x20, &q.desc_table().to_le_bytes());
            put(0x28, &q.avail_ring().to_le_bytes());
            put(0x30, &q.used_ring().to_le_bytes());
            // 0x3a queue_reset reads 0: a queue reset completes within the write (as QEMU's).
        }
        b
    }

    fn common_write(&mut self, off: u64, v: u32) {
        let qi = usize::from(self.qsel);
        let live = self.queues.get(qi).is_some_and(|q| !q.ready());
        match off {
            0x00 => self.dfsel = v,
            0x08 => self.gfsel = v,
            0x0c => match self.gfsel {
                0 => self.driver_features = (self.driver_features & !0xffff_ffff) | u64::from(v),
                1 => self.driver_features = (self.driver_features & 0xffff_ffff) | (u64::from(v) << 32),
                _ => {}
            },
            0x10 => self.irq.lock().config_vector = v as u16,
            0x14 => self.set_status(v as u8),
            0x16 => self.qsel = v as u16,
            0x18 if live => self.queues[qi].set_size(v as u16),
            0x1a => {
                if let Some(x) = self.irq.lock().vectors.get_mut(qi) {
                    *x = v as u16;
                }
            }
            0x1c if live && v == 1 => {
                self.queues[qi].set_ready(true);
                if !self.queues[qi].is_valid(&self.mem) {
                    self.queues[qi].set_ready(false);
                    self.fail(VirtioError::BadRing(qi, "ring addresses, alignment or size invalid for guest RAM".into()));
                }
            }
            0x20 if live => self.queues[qi].set_desc_table_address(Some(v), None),
            0x24 if live => self.queues[qi].set_desc_table_address(None, Some(v)),
            0x28 if live => self.queues[qi].set_avail_ring_address(Some(v), None),
            0x2c if live => self.queues[qi].set_avail_ring_address(None, Some(v)),
            0x30 if live => self.queues[qi].set_used_ring_address(Some(v), None),
            0x34 if live => self.queues[qi].set_used_ring_address(None, Some(v)),
            0x3a if v & 0xffff == 1 && self.driver_features & F_RING_RESET != 0 && qi < self.queues.len() => {
                self.queues[qi].reset();
                self.queues[qi].set_event_idx(self.driver_features & F_EVENT_IDX != 0);
                if let Some(x) = self.irq.lock().vectors.get_mut(qi) {
                    *x = NO_VECTOR;
                }
                self.dev.queue_reset(qi);
            }
            _ => {}
        }
    }

    fn set_status(&mut self, v: u8) {
        if v == 0 {
            self.reset();
            return;
        }
        let mut v = v & !STATUS_NEEDS_RESET; // the device's bit, kept in `irq`
        if v & STATUS_FEATURES_OK != 0 && self.status & STATUS_FEATURES_OK == 0 {
            let ok = self.driver_features & !self.dev.features() == 0 && self.driver_features & F_VERSION_1 != 0;
            if !ok || v & STATUS_ACK_DRIVER != STATUS_ACK_DRIVER {
                v &= !STATUS_FEATURES_OK;
            }
            let event_idx = v & STATUS_FEATURES_OK != 0 && self.driver_features & F_EVENT_IDX != 0;
            for q in &mut self.queues {
                q.set_event_idx(event_idx);
            }
        }
        let driver_ok = v & 4 != 0 && self.status & 4 == 0;
        self.status = v;
        if driver_ok {
            self.activate();
        }
    }

    fn bar4_read(&mut self, off: u64, data: &mut [u8]) {
        match off {
            0..=0x3b => {
                let b = self.common_bytes();
                for (i, d) in data.iter_mut().enumerate() {
                    *d = b.get(off as usize + i).copied().unwrap_or(0);
                }
            }
            0x1000 => {
                data.fill(0);
                let mut st = self.irq.lock();
                if let Some(d) = data.first_mut() {
                    *d = st.isr;
                }
                st.isr = 0;
                self.irq.update_intx(&mut st);
            }
            0x2000..=0x2fff => self.dev.read_config(off - 0x2000, data),
            _ => data.fill(0),
        }
    }

    fn bar4_write(&mut self, off: u64, data: &[u8]) {
        let mut b = [0u8; 4];
        let n = data.len().min(4);
        b[..n].copy_from_slice(&data[..n]);
        let v = u32::from_le_bytes(b);
        match off {
            0..=0x3b => self.common_write(off, v),
            0x2000..=0x2fff => self.dev.write_config(off - 0x2000, data),
            0x3000..=0x3fff => self.notify(((off - 0x3000) / 4) as usize),
            _ => {}
        }
    }

    fn msix_read(&self, off: u64, data: &mut [u8]) {
        let st = self.irq.lock();
        let word = if off < 0x800 {
            let e = (off / 16) as usize;
            st.table.get(e).map_or(0, |x| x[((off % 16) / 4) as usize])
        } else if off < 0x808 {
            (st.pending >> ((off - 0x800) / 4 * 32)) as u32
        } else {
            0
        };
        let bytes = word.to_le_bytes();
        let s = (off % 4) as usize;
        for (i, d) in data.iter_mut().enumerate() {
            *d = bytes.get(s + i).copied().unwrap_or(0);
        }
    }

    fn msix_write(&mut self, off: u64, data: &[u8]) {
        if off >= 0x800 || data.len() != 4 && data.len() != 8 {
            return;
        }
        for (k, chunk) in data.chunks(4).enumerate() {
            let o = off + 4 * k as u64;
            let e = (o / 16) as usize;
            let w = ((o % 16) / 4) as usize;
            let mut b = [0u8; 4];
            b.copy_from_slice(chunk);
            let mut st = self.irq.lock();
            if let Some(entry) = st.table.get_mut(e) {
                entry[w] = u32::from_le_bytes(b);
                if w == 3 {
                    self.irq.flush_pending(&mut st);
                }
            }
        }
    }

    /// The block-device description for `query-block`.
    pub fn device_info(&self) -> serde_json::Value {
        self.dev.describe()
    }
}

impl Drop for VirtioPci {
    /// A function leaving the bus (hot unplug, or the VM's end) stops its device's I/O,
    /// unregisters its ioeventfds and lowers its INTx line.
    fn drop(&mut self) {
        self.reset();
    }
}

impl PciFunction for VirtioPci {
    fn config(&self) -> &ConfigSpace {
        &self.cfg
    }
    fn config_read(&mut self, off: usize, data: &mut [u8]) {
        let c = self.cfg_cap;
        if (c + 16..c + 20).contains(&off) {
            // VIRTIO_PCI_CAP_PCI_CFG window: access BAR `bar` at `offset`, `length` bytes.
            let (bar, boff, len) = (self.cfg.get8(c + 4), self.cfg.get32(c + 8), self.cfg.get32(c + 12));
            let n = (len as usize).min(data.len()).min(4);
            if bar == 4 && n > 0 {
                self.bar4_read(u64::from(boff), &mut data[..n]);
                return;
            }
        }
        self.cfg.read(off, data);
        // Status bit 3 (interrupt status) mirrors a pending INTx cause while MSI-X is off.
        if off <= 6 && off + data.len() > 6 {
            let st = self.irq.lock();
            if let Some(b) = data.get_mut(6 - off) {
                *b = if st.isr != 0 && !st.enabled { *b | 8 } else { *b & !8 };
            }
        }
    }
    fn config_write(&mut self, off: usize, data: &[u8]) {
        let c = self.cfg_cap;
        if (c + 16..c + 20).contains(&off) {
            let (bar, boff, len) = (self.cfg.get8(c + 4), self.cfg.get32(c + 8), self.cfg.get32(c + 12));
            let n = (len as usize).min(data.len()).min(4);
            if bar == 4 && n > 0 {
                self.bar4_write(u64::from(boff), &data[..n]);
                return;
            }
        }
        let (bar0, bar4) = (self.cfg.bar_addr(0), self.cfg.bar_addr(4));
        self.cfg.write(off, data);
        let devctl = 0x40 + 8;
        if self.msix_cap != MSIX_CAP && self.cfg.get8(devctl + 1) & 0x80 != 0 {
            // Function-level reset (devctl bit 15): the device resets; the bit reads as zero.
            self.cfg.set8(devctl + 1, self.cfg.get8(devctl + 1) & 0x7f);
            self.reset();
        }
        self.msix_sync();
        let moved = (!self.ioevents.is_empty() && self.cfg.bar_addr(4) != bar4) || (!self.pio_ioevents.is_empty() && self.cfg.bar_addr(0) != bar0);
        if moved {
            // A notify area moved: its writes now reach `notify` through exits.
            self.unregister_ioevents();
        }
    }
    fn bar_read(&mut self, bar: usize, off: u64, data: &mut [u8]) {
        match bar {
            0 if self.transitional => self.legacy_read(off, data),
            1 => self.msix_read(off, data),
            4 => self.bar4_read(off, data),
            _ => data.fill(0),
        }
    }
    fn bar_write(&mut self, bar: usize, off: u64, data: &[u8]) {
        match bar {
            0 if self.transitional => self.legacy_write(off, data),
            1 => self.msix_write(off, data),
            4 => self.bar4_write(off, data),
            _ => {}
        }
    }
    fn poll_fd(&self) -> Option<std::os::unix::io::RawFd> {
        self.dev.poll_fd()
    }
    fn poll(&mut self) -> bool {
        if self.irq.needs_reset() || self.status & 4 == 0 {
            return false;
        }
        if self.dev.config_changed() {
            self.irq.config();
        }
        let r = self.dev.poll(&mut self.queues, &self.mem);
        self.complete(r)
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({"qdev_id": self.id})
    }
}
