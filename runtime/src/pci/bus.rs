//! Bus 0 of segment 0: configuration mechanism #1 (ports 0xcf8/0xcfc), ECAM, and BAR dispatch.
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

/// The root bus.
#[derive(Default)]
pub struct PciBus {
    functions: BTreeMap<(u8, u8), Box<dyn PciFunction>>,
    cf8: u32,
    next_mmio: u64,
    next_io: u64,
}

impl PciBus {
    /// An empty bus.
    pub fn new() -> Self {
        PciBus { functions: BTreeMap::new(), cf8: 0, next_mmio: layout::PCI_MMIO_START, next_io: 0xc000 }
    }
    /// Places `f` at slot.function; false if taken or out of range.
    pub fn add(&mut self, slot: u8, function: u8, f: Box<dyn PciFunction>) -> bool {
        if slot >= 32 || function >= 8 || self.functions.contains_key(&(slot, function)) {
            return false;
        }
        self.functions.insert((slot, function), f);
        true
    }
    /// Assigns BAR addresses to every function, as firmware would (decoding stays off).
    pub fn assign_bars(&mut self) -> Vec<(u8, u8, usize, u64)> {
        let mut out = Vec::new();
        let (mut mmio, mut io) = (self.next_mmio, self.next_io);
        for (&(s, f), func) in self.functions.iter_mut() {
            let bars = *func.config().bars();
            for (i, bar) in bars.iter().enumerate() {
                let Some(bar) = bar else { continue };
                let addr = if bar.kind == BarKind::Io {
                    io = io.next_multiple_of(bar.size);
                    let a = io;
                    io += bar.size;
                    a
                } else {
                    mmio = mmio.next_multiple_of(bar.size);
                    let a = mmio;
                    mmio += bar.size;
                    a
                };
                let mut data = [0u8; 8];
                let off = 0x10 + 4 * i;
                let flags = func.config().get32(off) & 0xf;
                data[..4].copy_from_slice(&((addr as u32 & !0xf) | flags).to_le_bytes());
                data[4..].copy_from_slice(&((addr >> 32) as u32).to_le_bytes());
                let len = if matches!(bar.kind, BarKind::Mem64 { .. }) { 8 } else { 4 };
                func.config_write(off, &data[..len]);
                out.push((s, f, i, addr));
            }
        }
        (self.next_mmio, self.next_io) = (mmio, io);
        out
    }

    fn config_access(&mut self, bus: u32, slot: u8, func: u8, off: usize, read: Option<&mut [u8]>, write: &[u8]) {
        let f = if bus == 0 { self.functions.get_mut(&(slot, func)) } else { None };
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
            if off >= 256 {
                if let Some(d) = read {
                    let exists = bus == 0 && self.functions.contains_key(&(slot, func));
                    d.fill(if exists { 0 } else { 0xff });
                }
            } else {
                self.config_access(bus, slot, func, off, read, write);
            }
            return true;
        }
        self.bar_access(addr, false, read, write)
    }

    /// I/O-port BAR access.
    pub fn io_bar(&mut self, port: u16, read: Option<&mut [u8]>, write: &[u8]) -> bool {
        self.bar_access(u64::from(port), true, read, write)
    }

    fn bar_access(&mut self, addr: u64, io: bool, read: Option<&mut [u8]>, write: &[u8]) -> bool {
        for f in self.functions.values_mut() {
            let bars = *f.config().bars();
            for (i, bar) in bars.iter().enumerate() {
                let Some(bar) = bar else { continue };
                if (bar.kind == BarKind::Io) != io {
                    continue;
                }
                let Some(base) = f.config().bar_addr(i) else { continue };
                if addr >= base && addr - base < bar.size {
                    match read {
                        Some(d) => f.bar_read(i, addr - base, d),
                        None => f.bar_write(i, addr - base, write),
                    }
                    return true;
                }
            }
        }
        false
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

    /// `query-pci`-style description of every function.
    pub fn describe(&self) -> Vec<serde_json::Value> {
        self.functions
            .iter()
            .map(|(&(slot, func), f)| {
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
            })
            .collect()
    }
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
}
