//! PCI-to-PCI bridges as QEMU 10 presents them: `pcie-root-port` (q35, Red Hat 1b36:000c)
//! and `pci-bridge` (pc, 1b36:0001). Type-1 headers with QEMU's IDs, capabilities, extended
//! capabilities (root port: AER at 0x100, ACS at 0x148) and write masks; bus-number
//! registers and the I/O / memory / prefetchable windows route config cycles and BAR
//! accesses to the secondary bus ([`super::bus`]).
//!
//! The runtime boots without firmware, so [`Bridge::program`] writes what SeaBIOS writes:
//! bus numbers (depth-first in slot order, i.e. the spec's bus), windows around the BARs
//! behind the bridge, command IO|MEM|SERR and bridge control SERR.
//!
//! Not served: the root port's hot-plug slot (slot-control writes do not power the slot off)
//! and AER/PME events (its MSI-X vector is never raised); the pci-bridge's SHPC hot-plug
//! controller (its register file and BAR 0 read zero) and MSI. Neither is used by guests
//! under QEMU's q35/pc ACPI hot-plug, which the profiles' machine types select.
use super::bus::PciFunction;
use super::config::{BarKind, ConfigSpace};

/// Which bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BridgeKind {
    /// QEMU `pcie-root-port` (generic PCIe root port).
    RootPort,
    /// QEMU `pci-bridge` (PCI-PCI bridge with SHPC).
    PciBridge,
}

impl BridgeKind {
    /// The kind a spec names ("pcie-root-port", "pci-bridge"); None for one not served.
    pub fn of(kind: &str) -> Option<Self> {
        match kind {
            "pcie-root-port" => Some(BridgeKind::RootPort),
            "pci-bridge" => Some(BridgeKind::PciBridge),
            _ => None,
        }
    }
}

/// An address window a bridge forwards: first and last address.
pub type Window = Option<(u64, u64)>;

/// A PCI-PCI bridge on the root bus.
pub struct Bridge {
    kind: BridgeKind,
    cfg: ConfigSpace,
    /// Extended config space 0x100..0x200 (root ports).
    ext: Option<ConfigSpace>,
    /// MSI-X table of the root port's single vector (16 bytes), BAR 0.
    msix: [u8; 16],
    /// The bus behind it, as the spec numbers it.
    pub bus: u8,
    /// QEMU `id=` ("pci.1"), for `query-pci`.
    id: String,
}

/// Sets `v` at `off` of `b` (little endian).
fn put(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(d) = b.get_mut(off..off + v.len()) {
        d.copy_from_slice(v);
    }
}

impl Bridge {
    /// A bridge of `kind` for spec bus `bus`: chassis, PCIe port number (root ports) and
    /// whether its slot is multifunction.
    pub fn new(kind: BridgeKind, bus: u8, chassis: u8, port: u8, multifunction: bool) -> Self {
        let (device, hdr) = match kind {
            BridgeKind::RootPort => (0x000c, 0x01),
            BridgeKind::PciBridge => (0x0001, 0x01),
        };
        let mut c = ConfigSpace::new(0x1b36, device, 0x0604_0000, hdr | if multifunction { 0x80 } else { 0 }, (0, 0));
        type1_masks(&mut c);
        // Bridge control: parity, SERR, ISA, VGA, VGA 16-bit, bus reset; the PCI bridge also
        // master abort, fast back-to-back and the discard timers (measured by probing).
        c.wmask16(0x3e, if kind == BridgeKind::RootPort { 0x005f } else { 0x0bff });
        c.set8(0x3d, 1); // INTA
        let ext = match kind {
            BridgeKind::RootPort => {
                c.add_bar(0, 0x1000, BarKind::Mem32); // MSI-X table (0) and PBA (0x800)
                c.set_cap_head(0x54);
                c.add_cap(0x40, 0x0d, 0x00, &[0, 0, 0x36, 0x1b, 0, 0], &[]); // SSVID 1b36:0000
                c.add_cap(0x48, 0x11, 0x40, &[0, 0, 0, 0, 0, 0, 0, 8, 0, 0], &[0x00, 0xc0]); // MSI-X, 1 vector
                let (exp, wm) = root_port_express(port);
                c.add_cap(0x54, 0x10, 0x48, &exp, &wm);
                Some(root_port_ext())
            }
            BridgeKind::PciBridge => {
                c.set16(6, 0x00a0); // 66 MHz, fast back-to-back
                c.set16(0x1e, 0x00a0); // secondary status likewise
                c.add_bar(0, 0x100, BarKind::Mem64 { prefetch: false }); // SHPC registers
                c.set_cap_head(0x4c);
                c.add_cap(0x40, 0x0c, 0x00, &[0, 0, 0, 0, 0, 0], &[0xff, 0, 0, 0, 0, 0]); // SHPC: dword select, data
                c.add_cap(0x48, 0x04, 0x40, &[0x20, chassis], &[0, 0xff]); // slot ID: first in chassis
                // MSI: 64-bit, per-vector masking, 1 vector.
                let mut wm = vec![0x71, 0x00, 0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
                wm.extend_from_slice(&[0; 4]);
                c.add_cap(0x4c, 0x05, 0x48, &[0x80, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &wm);
                None
            }
        };
        Bridge { kind, cfg: c, ext, msix: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], bus, id: String::new() }
    }

    /// Names the bridge (its QEMU `id=`, e.g. "pci.1").
    pub fn with_id(mut self, id: &str) -> Self {
        self.id = id.to_string();
        self
    }

    /// Which bridge this is.
    pub fn kind(&self) -> BridgeKind {
        self.kind
    }
    /// The secondary bus number the guest (or [`Bridge::program`]) set.
    pub fn secondary(&self) -> u8 {
        self.cfg.get8(0x19)
    }
    /// The subordinate bus number.
    pub fn subordinate(&self) -> u8 {
        self.cfg.get8(0x1a)
    }
    /// The I/O window (16-bit decoding).
    pub fn io_window(&self) -> Window {
        let base = u64::from(self.cfg.get8(0x1c) & 0xf0) << 8;
        let limit = (u64::from(self.cfg.get8(0x1d) & 0xf0) << 8) | 0xfff;
        (base <= limit).then_some((base, limit))
    }
    /// The memory window.
    pub fn mem_window(&self) -> Window {
        let base = u64::from(self.cfg.get16(0x20) & 0xfff0) << 16;
        let limit = (u64::from(self.cfg.get16(0x22) & 0xfff0) << 16) | 0xf_ffff;
        (base <= limit).then_some((base, limit))
    }
    /// The prefetchable window (64-bit).
    pub fn pref_window(&self) -> Window {
        let base = (u64::from(self.cfg.get32(0x28)) << 32) | (u64::from(self.cfg.get16(0x24) & 0xfff0) << 16);
        let limit = (u64::from(self.cfg.get32(0x2c)) << 32) | (u64::from(self.cfg.get16(0x26) & 0xfff0) << 16) | 0xf_ffff;
        (base <= limit).then_some((base, limit))
    }
    /// Whether an access to `addr` (an I/O port if `io`) is forwarded to the secondary bus.
    pub fn forwards(&self, addr: u64, io: bool) -> bool {
        let cmd = self.cfg.get16(4);
        let inside = |w: Window| w.is_some_and(|(b, l)| (b..=l).contains(&addr));
        if io {
            cmd & 1 != 0 && inside(self.io_window())
        } else {
            cmd & 2 != 0 && (inside(self.mem_window()) || inside(self.pref_window()))
        }
    }

    /// Programs the bridge as SeaBIOS leaves it: primary 0, secondary = subordinate = `bus`,
    /// the given windows (closed when None), command IO|MEM|SERR, bridge control SERR.
    pub fn program(&mut self, bus: u8, io: Window, mem: Window, pref: Window) {
        let c = &mut self.cfg;
        c.set8(0x18, 0);
        c.set8(0x19, bus);
        c.set8(0x1a, bus);
        let (iob, iol) = io.map_or((0xf0, 0x00), |(b, l)| (((b >> 8) & 0xf0) as u8, ((l >> 8) & 0xf0) as u8));
        c.set8(0x1c, iob);
        c.set8(0x1d, iol);
        let (mb, ml) = mem.map_or((0xfff0, 0), |(b, l)| (((b >> 16) & 0xfff0) as u16, ((l >> 16) & 0xfff0) as u16));
        c.set16(0x20, mb);
        c.set16(0x22, ml);
        let (pb, pl) = pref.unwrap_or((0xfff0_0000, 0));
        c.set16(0x24, (((pb >> 16) & 0xfff0) as u16) | 1);
        c.set16(0x26, (((pl >> 16) & 0xfff0) as u16) | 1);
        c.set32(0x28, (pb >> 32) as u32);
        c.set32(0x2c, (pl >> 32) as u32);
        c.set16(4, 0x0103);
        c.set16(0x3e, 0x0002);
    }
}

/// QEMU's write masks of a type-1 header (`pci_init_mask_bridge`), as the pciscan micro-guest
/// measures them by probing: command IO|MEM|MASTER|SERR|INTX_DISABLE, bus numbers and
/// secondary latency, I/O base/limit (16-bit), memory and prefetchable base/limit (64-bit).
fn type1_masks(c: &mut ConfigSpace) {
    c.wmask16(4, 0x0507);
    c.writable(0x18, 0x1c);
    c.wmask8(0x1c, 0xf0);
    c.wmask8(0x1d, 0xf0);
    for off in [0x20, 0x22, 0x24, 0x26] {
        c.wmask16(off, 0xfff0);
    }
    c.writable(0x28, 0x30);
    c.set8(0x1c, 0x00); // 16-bit I/O decoding
    c.set8(0x1d, 0x00);
    c.set16(0x24, 0x0001); // 64-bit prefetchable
    c.set16(0x26, 0x0001);
}

/// The root port's PCI Express capability body (after id/next) and its write mask: v2 root
/// port with a slot; role-based error reporting; link 16 GT/s x32 capable, port `port`,
/// data-link-layer active and link-bandwidth reporting; slot: attention button, power
/// controller, indicators, surprise, hot-plug capable, no command completed; ARI forwarding.
fn root_port_express(port: u8) -> (Vec<u8>, Vec<u8>) {
    let (mut b, mut w) = (vec![0u8; 0x3a], vec![0u8; 0x3a]);
    // Body offset = capability offset - 2.
    put(&mut b, 0x00, &0x0142u16.to_le_bytes()); // flags
    put(&mut b, 0x02, &0x0000_8000u32.to_le_bytes()); // devcap
    put(&mut b, 0x0a, &((u32::from(port) << 24) | 0x0030_0604).to_le_bytes()); // lnkcap
    put(&mut b, 0x10, &0x0011u16.to_le_bytes()); // lnksta
    put(&mut b, 0x12, &0x0002_007bu32.to_le_bytes()); // sltcap
    put(&mut b, 0x16, &0x03c0u16.to_le_bytes()); // sltctl: indicators off
    put(&mut b, 0x22, &0x0030_0020u32.to_le_bytes()); // devcap2
    put(&mut b, 0x2a, &0x0000_001eu32.to_le_bytes()); // lnkcap2
    put(&mut b, 0x2e, &0x0004u16.to_le_bytes()); // lnkctl2: target 16 GT/s
    put(&mut w, 0x06, &0x000fu16.to_le_bytes()); // devctl: error reporting enables
    put(&mut w, 0x16, &0x0ff9u16.to_le_bytes()); // sltctl (EIC reads as zero)
    put(&mut w, 0x1a, &0x0007u16.to_le_bytes()); // rootctl: system error enables
    put(&mut w, 0x26, &0x8020u16.to_le_bytes()); // devctl2: ARI forwarding, EETLP prefix blocking
    (b, w)
}

/// The root port's extended capabilities, 0x100-based: AER (v2) at 0x100, ACS at 0x148.
fn root_port_ext() -> ConfigSpace {
    let mut e = ConfigSpace::blank();
    e.set32(0x00, 0x1482_0001);
    e.set32(0x0c, 0x0046_2030); // uncorrectable severity
    e.set32(0x14, 0x0000_e000); // correctable mask
    e.set32(0x18, 0x0000_02a0); // ECRC generation/check capable, multiple headers capable
    for (off, m) in [(0x08, 0x03ff_f030u32), (0x0c, 0x03ff_f030), (0x14, 0x0000_f1c1), (0x18, 0x0000_0540), (0x2c, 0x0000_0007)] {
        for (i, b) in m.to_le_bytes().into_iter().enumerate() {
            e.wmask8(off + i, b);
        }
    }
    e.set32(0x48, 0x0001_000d);
    e.set16(0x4c, 0x005f); // ACS: SV, TB, RR, CR, UF, DT
    e.wmask16(0x4e, 0x005f);
    e
}

impl PciFunction for Bridge {
    fn config(&self) -> &ConfigSpace {
        &self.cfg
    }
    fn config_read(&mut self, off: usize, data: &mut [u8]) {
        match &self.ext {
            Some(e) if (0x100..0x200).contains(&off) => e.read(off - 0x100, data),
            _ => self.cfg.read(off, data),
        }
    }
    fn config_write(&mut self, off: usize, data: &[u8]) {
        match &mut self.ext {
            Some(e) if (0x100..0x200).contains(&off) => e.write(off - 0x100, data),
            _ => {
                self.cfg.write(off, data);
                if self.kind == BridgeKind::RootPort {
                    // Slot control's electromechanical-interlock bit reads as zero.
                    let sltctl = 0x54 + 0x18 + 1;
                    self.cfg.set8(sltctl, self.cfg.get8(sltctl) & !0x08);
                }
            }
        }
    }
    fn bar_read(&mut self, bar: usize, off: u64, data: &mut [u8]) {
        data.fill(0);
        if self.kind == BridgeKind::RootPort && bar == 0 {
            for (i, d) in data.iter_mut().enumerate() {
                if let Some(b) = self.msix.get(off as usize + i) {
                    *d = *b;
                }
            }
        }
    }
    fn bar_write(&mut self, bar: usize, off: u64, data: &[u8]) {
        if self.kind == BridgeKind::RootPort && bar == 0 {
            for (i, v) in data.iter().enumerate() {
                if let Some(b) = self.msix.get_mut(off as usize + i) {
                    *b = *v;
                }
            }
        }
    }
    fn describe(&self) -> serde_json::Value {
        let range = |w: Window| match w {
            Some((b, l)) => serde_json::json!({"base": b, "limit": l}),
            None => serde_json::json!({"base": 0, "limit": 0}),
        };
        serde_json::json!({"qdev_id": self.id, "pci_bridge": {"bus": {
            "number": self.secondary(), "secondary": self.secondary(), "subordinate": self.subordinate(),
            "io_range": range(self.io_window()), "memory_range": range(self.mem_window()),
            "prefetchable_range": range(self.pref_window())}}})
    }
    fn bridge(&self) -> Option<&Bridge> {
        Some(self)
    }
    fn bridge_mut(&mut self) -> Option<&mut Bridge> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_port_header_is_qemus() {
        let mut b = Bridge::new(BridgeKind::RootPort, 1, 1, 0x10, true);
        let mut d = [0u8; 4];
        b.config_read(0, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x000c_1b36);
        b.config_read(0x60, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x1030_0604); // link capabilities: port 0x10
        b.config_read(0x100, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x1482_0001);
        assert_eq!(b.config().get8(0x0e), 0x81);
        // Windows closed until programmed; the bus numbers are writable.
        assert!(!b.forwards(0xc000_0000, false));
        b.program(1, Some((0x1000, 0x1fff)), Some((0xc020_0000, 0xc03f_ffff)), Some((0xc040_0000, 0xc05f_ffff)));
        assert_eq!((b.secondary(), b.subordinate()), (1, 1));
        assert!(b.forwards(0xc020_0000, false) && b.forwards(0xc05f_ffff, false) && !b.forwards(0xc060_0000, false));
        assert!(b.forwards(0x1800, true) && !b.forwards(0x2000, true));
        b.config_write(0x1c, &[0xff, 0xff]);
        assert_eq!(b.config().get16(0x1c), 0xf0f0); // 16-bit I/O: type bits read-only
        b.config_write(0x19, &[5]);
        assert_eq!(b.secondary(), 5);
    }

    #[test]
    fn pci_bridge_header_is_qemus() {
        let b = Bridge::new(BridgeKind::PciBridge, 1, 1, 0, false);
        assert_eq!(b.config().get32(0), 0x0001_1b36);
        assert_eq!(b.config().get16(6), 0x00b0);
        assert_eq!(b.config().get8(0x34), 0x4c);
        assert_eq!(b.config().get32(0x4c), 0x0180_4805);
        assert_eq!(b.config().get32(0x48), 0x0120_4004);
        assert!(BridgeKind::of("pcie-switch").is_none());
    }
}
