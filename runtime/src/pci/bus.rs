//! Segment 0: configuration mechanism #1 (ports 0xcf8/0xcfc), ECAM, and BAR dispatch, for the
//! root bus and the buses behind its bridges ([`super::bridge`]): a config cycle for bus N
//! reaches the secondary bus of the bridge whose secondary number is N; a BAR behind a bridge
//! answers only inside that bridge's windows.
use super::bridge::{Bridge, Window};
use super::config::{BarKind, ConfigSpace};
use crate::layout;
use std::collections::BTreeMap;

/// A function on the bus.
pub trait PciFunction: Send {
    /// Its config space.
    fn config(&self) -> &ConfigSpace;
    /// Guest config read (devices with side effects override this).
    fn config_read(&mut self, off: usize, data: &mut [u8]) {
        self.config().read(off, data)
    }
    /// Guest config write.
    fn config_write(&mut self, off: usize, data: &[u8]);
    /// Read inside BAR `bar` at `off`.
    fn bar_read(&mut self, _bar: usize, _off: u64, data: &mut [u8]) {
        data.fill(0);
    }
    /// Write inside BAR `bar` at `off`.
    fn bar_write(&mut self, _bar: usize, _off: u64, _data: &[u8]) {}
    /// A host descriptor to watch for backend input.
    fn poll_fd(&self) -> Option<std::os::unix::io::RawFd> {
        None
    }
    /// Handles backend input; returns whether anything was delivered.
    fn poll(&mut self) -> bool {
        false
    }
    /// A short description for `query-pci`.
    fn describe(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// The function as a bridge.
    fn bridge(&self) -> Option<&Bridge> {
        None
    }
    /// The function as a bridge, mutably.
    fn bridge_mut(&mut self) -> Option<&mut Bridge> {
        None
    }
}

/// A function without behaviour beyond its config header (chipset stubs).
pub struct Stub(pub ConfigSpace);

impl PciFunction for Stub {
    fn config(&self) -> &ConfigSpace {
        &self.0
    }
    fn config_write(&mut self, off: usize, data: &[u8]) {
        self.0.write(off, data)
    }
}

/// The root bus and the buses behind its bridges.
#[derive(Default)]
pub struct PciBus {
    /// Keyed by (spec bus, slot, function).
    functions: BTreeMap<(u8, u8, u8), Box<dyn PciFunction>>,
    /// Spec bus → the root-bus (slot, function) of the bridge in front of it.
    parents: BTreeMap<u8, (u8, u8)>,
    cf8: u32,
    next_mmio: u64,
    next_io: u64,
}

impl PciBus {
    /// An empty bus.
    pub fn new() -> Self {
        PciBus { functions: BTreeMap::new(), parents: BTreeMap::new(), cf8: 0, next_mmio: layout::PCI_MMIO_START, next_io: 0xc000 }
    }
    /// Places `f` at root-bus slot.function; false if taken or out of range.
    pub fn add(&mut self, slot: u8, function: u8, f: Box<dyn PciFunction>) -> bool {
        self.add_on(0, slot, function, f)
    }
    /// Places `f` at bus:slot.function (bus as the spec numbers it; a bus other than 0 must
    /// have its bridge added first); false if taken, out of range or behind no bridge.
    pub fn add_on(&mut self, bus: u8, slot: u8, function: u8, f: Box<dyn PciFunction>) -> bool {
        if slot >= 32 || function >= 8 || self.functions.contains_key(&(bus, slot, function)) || (bus != 0 && !self.parents.contains_key(&bus)) {
            return false;
        }
        self.functions.insert((bus, slot, function), f);
        true
    }
    /// Whether `bus:slot.function` is free.
    pub fn is_free(&self, bus: u8, slot: u8, function: u8) -> bool {
        slot < 32 && function < 8 && !self.functions.contains_key(&(bus, slot, function))
    }
    /// The first slot of spec bus `bus` whose function 0 is free (where QEMU puts a device
    /// added without an address).
    pub fn first_free_slot(&self, bus: u8) -> Option<u8> {
        (0..32).find(|&s| self.is_free(bus, s, 0))
    }
    /// Where the function with QMP id `id` sits.
    pub fn find(&self, id: &str) -> Option<(u8, u8, u8)> {
        self.functions.iter().find(|(_, f)| qdev_id(f.as_ref()).as_deref() == Some(id)).map(|(k, _)| *k)
    }
    /// Takes every function of `bus`:`slot` off the bus (hot unplug), with their QMP ids.
    pub fn remove_slot(&mut self, bus: u8, slot: u8) -> Vec<(String, Box<dyn PciFunction>)> {
        let keys: Vec<_> = self.functions.range((bus, slot, 0)..=(bus, slot, 7)).map(|(k, _)| *k).collect();
        let mut out = Vec::new();
        for k in keys {
            if let Some(f) = self.functions.remove(&k) {
                let id = qdev_id(f.as_ref()).unwrap_or_default();
                out.push((id, f));
            }
        }
        out
    }
    /// Places bridge `b` at root-bus slot.function, in front of its spec bus; false if the
    /// address or the bus is taken.
    pub fn add_bridge(&mut self, slot: u8, function: u8, b: Bridge) -> bool {
        let bus = b.bus;
        if bus == 0 || self.parents.contains_key(&bus) || !self.add(slot, function, Box::new(b)) {
            return false;
        }
        self.parents.insert(bus, (slot, function));
        true
    }
    /// Whether a device on spec bus `bus` is reachable at `addr`: on the root bus always, behind
    /// a bridge when the bridge forwards it.
    fn forwarded(&self, bus: u8, addr: u64, io: bool) -> bool {
        bus == 0 || self.parents.get(&bus).and_then(|&(s, f)| self.functions.get(&(0, s, f))).and_then(|p| p.bridge()).is_some_and(|b| b.forwards(addr, io))
    }
    /// The spec bus that guest bus number `n` reaches (through the bridge whose secondary bus
    /// it is).
    fn route(&self, n: u32) -> Option<u8> {
        if n == 0 {
            return Some(0);
        }
        self.parents.iter().find_map(|(&bus, &(s, f))| {
            let b = self.functions.get(&(0, s, f))?.bridge()?;
            (u32::from(b.secondary()) == n && b.secondary() != 0).then_some(bus)
        })
    }
    /// Assigns BAR addresses to every function, as firmware would (decoding stays off), and
    /// programs every bridge as SeaBIOS does: its spec bus number, and I/O (4 KiB), memory
    /// and prefetchable (2 MiB aligned) windows around the BARs behind it. Bridge I/O windows
    /// come from 0x1000..0xa000, then after the root bus's I/O BARs up to 0x10000; a bridge
    /// whose I/O does not fit gets a closed I/O window and its devices' I/O BARs stay
    /// unassigned, as on a machine out of I/O space.
    pub fn assign_bars(&mut self) -> Vec<(u8, u8, usize, u64)> {
        const MEM_ALIGN: u64 = 2 << 20;
        let mut out = Vec::new();
        let (mut mmio, mut io) = (self.next_mmio, self.next_io);
        let root: Vec<_> = self.functions.keys().copied().filter(|k| k.0 == 0).collect();
        for key in root {
            if let Some(func) = self.functions.get_mut(&key) {
                for (i, addr) in place(func.as_mut(), &mut mmio, &mut io, &|_| true) {
                    out.push((key.1, key.2, i, addr));
                }
            }
        }
        let mut low_io = 0x1000u64;
        let is_io = |k: BarKind| k == BarKind::Io;
        let is_mem = |k: BarKind| matches!(k, BarKind::Mem32 | BarKind::Mem64 { prefetch: false });
        let is_pref = |k: BarKind| matches!(k, BarKind::Mem32Prefetch | BarKind::Mem64 { prefetch: true });
        let parents: Vec<_> = self.parents.iter().map(|(&b, &p)| (b, p)).collect();
        for (bus, (ps, pf)) in parents {
            let behind: Vec<_> = self.functions.keys().copied().filter(|k| k.0 == bus).collect();
            // Bytes the BARs of one kind behind the bridge take, packed from an aligned base.
            let need = |funcs: &BTreeMap<(u8, u8, u8), Box<dyn PciFunction>>, class: &dyn Fn(BarKind) -> bool| {
                let mut n = 0u64;
                for f in behind.iter().filter_map(|k| funcs.get(k)) {
                    for bar in f.config().bars().iter().flatten().filter(|b| class(b.kind)) {
                        n = n.next_multiple_of(bar.size) + bar.size;
                    }
                }
                n
            };
            let (io_need, mem_need, pref_need) = (need(&self.functions, &is_io), need(&self.functions, &is_mem), need(&self.functions, &is_pref));
            // Places the BARs of `class` from `base`; the window is [base, base + size).
            let mut window = |base: u64, size: u64, class: &dyn Fn(BarKind) -> bool, out: &mut Vec<(u8, u8, usize, u64)>| -> Window {
                let mut cursor = base;
                for key in &behind {
                    if let Some(func) = self.functions.get_mut(key) {
                        // `class` picks one kind of BAR: the other cursor is unused.
                        let mut unused = 0;
                        let (m, i_o) = if class(BarKind::Io) { (&mut unused, &mut cursor) } else { (&mut cursor, &mut unused) };
                        for (i, addr) in place(func.as_mut(), m, i_o, class) {
                            out.push((key.1, key.2, i, addr));
                        }
                    }
                }
                Some((base, base + size - 1))
            };
            let mut iow = None;
            if io_need > 0 {
                let size = io_need.next_multiple_of(0x1000);
                let high = io.next_multiple_of(0x1000);
                if low_io + size <= 0xa000 {
                    iow = window(low_io, size, &is_io, &mut out);
                    low_io += size;
                } else if high + size <= 0x1_0000 {
                    iow = window(high, size, &is_io, &mut out);
                    io = high + size;
                }
            }
            let mut memw = None;
            if mem_need > 0 {
                let (base, size) = (mmio.next_multiple_of(MEM_ALIGN), mem_need.next_multiple_of(MEM_ALIGN));
                if base + size <= layout::PCI_MMIO_END {
                    memw = window(base, size, &is_mem, &mut out);
                    mmio = base + size;
                }
            }
            let mut prefw = None;
            if pref_need > 0 {
                let (base, size) = (mmio.next_multiple_of(MEM_ALIGN), pref_need.next_multiple_of(MEM_ALIGN));
                if base + size <= layout::PCI_MMIO_END {
                    prefw = window(base, size, &is_pref, &mut out);
                    mmio = base + size;
                }
            }
            if let Some(b) = self.functions.get_mut(&(0, ps, pf)).and_then(|f| f.bridge_mut()) {
                b.program(bus, iow, memw, prefw);
            }
        }
        (self.next_mmio, self.next_io) = (mmio, io);
        out
    }

    fn config_access(&mut self, bus: u32, slot: u8, func: u8, off: usize, read: Option<&mut [u8]>, write: &[u8]) {
        let f = match self.route(bus) {
            Some(b) => self.functions.get_mut(&(b, slot, func)),
            None => None,
        };
        match (f, read) {
            (Some(f), Some(data)) => f.config_read(off, data),
            (None, Some(data)) => data.fill(0xff),
            (Some(f), None) => f.config_write(off, write),
            (None, None) => {}
        }
    }

    /// Port I/O to 0xcf8..=0xcff. Returns false if the port is not ours.
    pub fn pio_read(&mut self, port: u16, data: &mut [u8]) -> bool {
        match port {
            0xcf8 if data.len() == 4 => data.copy_from_slice(&self.cf8.to_le_bytes()),
            0xcfc..=0xcff => {
                let a = self.cf8;
                if a & 0x8000_0000 == 0 {
                    data.fill(0xff);
                } else {
                    let off = (a & 0xfc) as usize + usize::from(port - 0xcfc);
                    self.config_access((a >> 16) & 0xff, ((a >> 11) & 0x1f) as u8, ((a >> 8) & 7) as u8, off, Some(data), &[]);
                }
            }
            _ => return false,
        }
        true
    }

    /// Port writes to 0xcf8..=0xcff.
    pub fn pio_write(&mut self, port: u16, data: &[u8]) -> bool {
        match port {
            0xcf8 if data.len() == 4 => {
                let mut b = [0u8; 4];
                b.copy_from_slice(data);
                self.cf8 = u32::from_le_bytes(b);
            }
            0xcfc..=0xcff => {
                let a = self.cf8;
                if a & 0x8000_0000 != 0 {
                    let off = (a & 0xfc) as usize + usize::from(port - 0xcfc);
                    self.config_access((a >> 16) & 0xff, ((a >> 11) & 0x1f) as u8, ((a >> 8) & 7) as u8, off, None, data);
                }
            }
            _ => return false,
        }
        true
    }

    /// MMIO in the ECAM window or a BAR. Returns false if nobody decodes `addr`.
    pub fn mmio(&mut self, addr: u64, read: Option<&mut [u8]>, write: &[u8]) -> bool {
        if (layout::ECAM_BASE..layout::ECAM_BASE + layout::ECAM_SIZE).contains(&addr) {
            let o = addr - layout::ECAM_BASE;
            let (bus, slot, func, off) = ((o >> 20) as u32, ((o >> 15) & 0x1f) as u8, ((o >> 12) & 7) as u8, (o & 0xfff) as usize);
            // Extended space (0x100..) reads zero on functions without extended capabilities.
            self.config_access(bus, slot, func, off, read, write);
            return true;
        }
        self.bar_access(addr, false, read, write)
    }

    /// I/O-port BAR access.
    pub fn io_bar(&mut self, port: u16, read: Option<&mut [u8]>, write: &[u8]) -> bool {
        self.bar_access(u64::from(port), true, read, write)
    }

    fn bar_access(&mut self, addr: u64, io: bool, read: Option<&mut [u8]>, write: &[u8]) -> bool {
        let mut hit = None;
        for (&key, f) in &self.functions {
            let bars = *f.config().bars();
            for (i, bar) in bars.iter().enumerate() {
                let Some(bar) = bar else { continue };
                if (bar.kind == BarKind::Io) != io {
                    continue;
                }
                let Some(base) = f.config().bar_addr(i) else { continue };
                if addr >= base && addr - base < bar.size && self.forwarded(key.0, addr, io) {
                    hit = Some((key, i, addr - base));
                    break;
                }
            }
            if hit.is_some() {
                break;
            }
        }
        let Some((key, i, off)) = hit else { return false };
        let Some(f) = self.functions.get_mut(&key) else { return false };
        match read {
            Some(d) => f.bar_read(i, off, d),
            None => f.bar_write(i, off, write),
        }
        true
    }

    /// Backend descriptors of all functions.
    pub fn poll_fds(&self) -> Vec<std::os::unix::io::RawFd> {
        self.functions.values().filter_map(|f| f.poll_fd()).collect()
    }
    /// Lets every function handle backend input; returns whether anything was delivered.
    pub fn poll_all(&mut self) -> bool {
        let mut any = false;
        for f in self.functions.values_mut() {
            any |= f.poll();
        }
        any
    }

    /// `query-pci`-style description of every function; a bridge's lists the devices behind
    /// it under `pci_bridge.devices`, as QEMU's does.
    pub fn describe(&self) -> Vec<serde_json::Value> {
        self.describe_bus(0)
    }

    fn describe_bus(&self, bus: u8) -> Vec<serde_json::Value> {
        self.functions
            .range((bus, 0, 0)..=(bus, 0xff, 0xff))
            .map(|(&(_, slot, func), f)| {
                let mut v = describe_function(f.as_ref(), slot, func);
                v["bus"] = serde_json::json!(self.parents.get(&bus).and_then(|&(s, pf)| self.functions.get(&(0, s, pf))).and_then(|p| p.bridge()).map_or(0, |b| b.secondary()));
                if let Some(b) = f.bridge() {
                    v["pci_bridge"]["devices"] = serde_json::Value::Array(self.describe_bus(b.bus));
                }
                v
            })
            .collect()
    }
}

/// Assigns the BARs of `func` whose kind `class` accepts, memory from `mmio`, I/O from `io`.
/// A function's QMP id (`qdev_id` of its `query-pci` row).
fn qdev_id(f: &dyn PciFunction) -> Option<String> {
    f.describe().get("qdev_id").and_then(serde_json::Value::as_str).map(str::to_string)
}

fn place(func: &mut dyn PciFunction, mmio: &mut u64, io: &mut u64, class: &dyn Fn(BarKind) -> bool) -> Vec<(usize, u64)> {
    let mut out = Vec::new();
    let bars = *func.config().bars();
    for (i, bar) in bars.iter().enumerate() {
        let Some(bar) = bar else { continue };
        if !class(bar.kind) {
            continue;
        }
        let cursor = if bar.kind == BarKind::Io { &mut *io } else { &mut *mmio };
        *cursor = cursor.next_multiple_of(bar.size);
        let addr = *cursor;
        *cursor += bar.size;
        let mut data = [0u8; 8];
        let off = 0x10 + 4 * i;
        let flags = func.config().get32(off) & 0xf;
        data[..4].copy_from_slice(&((addr as u32 & !0xf) | flags).to_le_bytes());
        data[4..].copy_from_slice(&((addr >> 32) as u32).to_le_bytes());
        let len = if matches!(bar.kind, BarKind::Mem64 { .. }) { 8 } else { 4 };
        func.config_write(off, &data[..len]);
        out.push((i, addr));
    }
    out
}

fn describe_function(f: &dyn PciFunction, slot: u8, func: u8) -> serde_json::Value {
    let c = f.config();
    let bars: Vec<serde_json::Value> = c
        .bars()
        .iter()
        .enumerate()
        .filter_map(|(i, b)| b.map(|b| (i, b)))
        .map(|(i, b)| {
            let kind = if b.kind == BarKind::Io { "io" } else { "memory" };
            let mut v = serde_json::json!({"bar": i, "type": kind, "size": b.size,
                "address": c.bar_addr(i).map(|a| a as i64).unwrap_or(-1)});
            if let BarKind::Mem64 { prefetch } = b.kind {
                v["mem_type_64"] = true.into();
                v["prefetch"] = prefetch.into();
            } else if b.kind == BarKind::Mem32Prefetch {
                v["mem_type_64"] = false.into();
                v["prefetch"] = true.into();
            } else if b.kind == BarKind::Mem32 {
                v["mem_type_64"] = false.into();
                v["prefetch"] = false.into();
            }
            v
        })
        .collect();
    let mut v = serde_json::json!({
        "bus": 0, "slot": slot, "function": func,
        "class_info": {"class": c.get16(0x0a)},
        "id": {"vendor": c.get16(0), "device": c.get16(2),
               "subsystem-vendor": c.get16(0x2c), "subsystem": c.get16(0x2e)},
        "irq_pin": c.get8(0x3d),
        "revision": c.get8(8),
        "regions": bars,
    });
    if let serde_json::Value::Object(extra) = f.describe() {
        for (k, x) in extra {
            v[k] = x;
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_formats::layout::Profile;

    #[test]
    fn cf8_reads_q35_host_bridge_and_empty_slots() {
        let mut bus = PciBus::new();
        for (s, f, c) in crate::pci::chipset::functions(&Profile::builtin("q35-v1").expect("profile")).expect("chipset") {
            assert!(bus.add(s, f, Box::new(Stub(c))));
        }
        let mut d = [0u8; 4];
        assert!(bus.pio_write(0xcf8, &0x8000_0000u32.to_le_bytes()));
        bus.pio_read(0xcfc, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x29c0_8086);
        bus.pio_write(0xcf8, &0x8000_0800u32.to_le_bytes()); // slot 1
        bus.pio_read(0xcfc, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0xffff_ffff);
        // ECAM: 00:1f.2 vendor/device
        let mut e = [0u8; 4];
        bus.mmio(layout::ECAM_BASE + (0x1f << 15) + (2 << 12), Some(&mut e), &[]);
        assert_eq!(u32::from_le_bytes(e), 0x2922_8086);
        let assigned = bus.assign_bars();
        assert_eq!(assigned.len(), 3); // AHCI io+mem, SMBus io
    }

    /// A legacy-I/O-only function (one 0x80-port I/O BAR), as a transitional virtio device has.
    struct IoDev(ConfigSpace);
    impl PciFunction for IoDev {
        fn config(&self) -> &ConfigSpace {
            &self.0
        }
        fn config_write(&mut self, off: usize, data: &[u8]) {
            self.0.write(off, data)
        }
    }

    #[test]
    fn bridge_windows_hold_their_bars_and_io_space_runs_out_cleanly() {
        use crate::pci::{Bridge, BridgeKind};
        let mut bus = PciBus::new();
        for k in 0..28u8 {
            let b = Bridge::new(BridgeKind::RootPort, k + 1, k + 1, 0x10 + k, true);
            assert!(bus.add_bridge(0x1b + k / 8, k % 8, b));
            let mut c = ConfigSpace::new(0x1af4, 0x1001, 0x0100_0000, 0, (0x1af4, 2));
            c.add_bar(0, 0x80, BarKind::Io);
            c.add_bar(4, 0x4000, BarKind::Mem64 { prefetch: true });
            assert!(bus.add_on(k + 1, 0, 0, Box::new(IoDev(c))));
        }
        assert!(!bus.add_on(29, 0, 0, Box::new(Stub(ConfigSpace::blank()))), "no bridge serves bus 29");
        let assigned = bus.assign_bars();
        let mut io_windows = 0;
        for k in 0..28u8 {
            let (s, f) = (0x1b + k / 8, k % 8);
            let b = bus.functions.get(&(0, s, f)).and_then(|f| f.bridge()).expect("bridge");
            assert_eq!((b.secondary(), b.subordinate()), (k + 1, k + 1));
            let dev = bus.functions.get(&(k + 1, 0, 0)).expect("device").config();
            let pref = (u64::from(dev.get32(0x24)) << 32) | u64::from(dev.get32(0x20) & !0xf);
            let (pb, pl) = b.pref_window().expect("prefetchable window");
            assert!(pb <= pref && pref + 0x4000 - 1 <= pl, "{k}: {pref:#x} outside {pb:#x}-{pl:#x}");
            match b.io_window() {
                Some((ib, il)) => {
                    io_windows += 1;
                    let port = u64::from(dev.get32(0x10) & !3);
                    assert!(ib <= port && port + 0x7f <= il && il < 0x1_0000, "{k}: {port:#x} outside {ib:#x}-{il:#x}");
                }
                None => assert_eq!(dev.get32(0x10) & !3, 0, "{k}: I/O BAR assigned without a window"),
            }
        }
        // 0x1000..0xa000 holds 9 windows, 0xc000..0x10000 (no root-bus I/O BARs here) 4 more.
        assert_eq!(io_windows, 13);
        assert!(assigned.iter().all(|&(_, _, _, a)| a < layout::PCI_MMIO_END));
        // Config cycles reach bus 5 through the bridge numbered 5, and nothing else.
        let mut d = [0u8; 4];
        bus.pio_write(0xcf8, &0x8005_0000u32.to_le_bytes());
        bus.pio_read(0xcfc, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x1001_1af4);
        bus.pio_write(0xcf8, &0x801e_0000u32.to_le_bytes());
        bus.pio_read(0xcfc, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0xffff_ffff);
    }
}
