//! ACPI PCI hotplug registers of the PIIX4 PM function (pc), at QEMU's I/O 0xae00-0xae13
//! (QEMU's `docs/specs/acpi_pci_hotplug.rst`), read by the DSDT's `PCNT`/`PCEJ` methods
//! ([`crate::acpi`]):
//!
//! | offset | read                                   | write                   |
//! |--------|----------------------------------------|-------------------------|
//! | 0x00   | slots with a device to insert (cleared by the read) | —          |
//! | 0x04   | slots whose device is asked to go      | —                       |
//! | 0x08   | 0 (no features)                        | eject these slots       |
//! | 0x0c   | slots that can be hot-plugged          | —                       |
//! | 0x10   | the selected bus (BSEL)                | select a bus            |
//!
//! The root bus is BSEL 0; the buses behind PCI bridges follow (BSEL 1, 2, ... as QEMU numbers
//! them), each with all 32 slots. Other selections read as empty and eject nothing. A plug or
//! an unplug request sets GPE0 status bit 1 ([`GPE_BIT`]), whose `_E01` runs `PCNT`.

/// First port of the register block.
pub const BASE: u16 = 0xae00;
/// Length of the register block.
pub const LEN: u16 = 0x14;
/// The GPE0 status bit of PCI hotplug events (QEMU's ACPI_PCI_HOTPLUG_STATUS).
pub const GPE_BIT: u8 = 1;

/// One bus selector's state.
#[derive(Debug, Default, Clone, Copy)]
struct Bus {
    up: u32,
    down: u32,
    slots: u32,
}

/// The register file.
#[derive(Debug, Default)]
pub struct PciHotplug {
    buses: Vec<Bus>,
    sel: u32,
}

impl PciHotplug {
    /// Registers for a root bus whose hot-pluggable slots are the bits of `slots`.
    pub fn new(slots: u32) -> Self {
        Self::with_bridges(slots, 0)
    }

    /// Registers for the root bus (`slots`) and `bridges` buses behind PCI bridges (BSEL 1..).
    pub fn with_bridges(slots: u32, bridges: usize) -> Self {
        let mut buses = vec![Bus { slots, ..Default::default() }];
        buses.extend(std::iter::repeat_n(Bus { slots: u32::MAX, ..Default::default() }, bridges));
        PciHotplug { buses, sel: 0 }
    }

    /// Whether `port` is in the block.
    pub fn decodes(port: u16) -> bool {
        (BASE..BASE + LEN).contains(&port)
    }

    /// Whether `slot` of bus selector `bsel` takes hot-plugged devices.
    pub fn hotpluggable(&self, bsel: usize, slot: u8) -> bool {
        slot < 32 && self.buses.get(bsel).is_some_and(|b| b.slots & (1 << slot) != 0)
    }

    /// A device was plugged at `slot` of `bsel`: the guest's `PCNT` will find it.
    pub fn plug(&mut self, bsel: usize, slot: u8) {
        if self.hotpluggable(bsel, slot) {
            if let Some(b) = self.buses.get_mut(bsel) {
                b.up |= 1 << slot;
                b.down &= !(1 << slot);
            }
        }
    }

    /// The device at `slot` of `bsel` is asked to go: the guest's `PCNT` will eject it.
    pub fn request_unplug(&mut self, bsel: usize, slot: u8) {
        if self.hotpluggable(bsel, slot) {
            if let Some(b) = self.buses.get_mut(bsel) {
                b.down |= 1 << slot;
            }
        }
    }

    /// The selected bus.
    fn selected(&mut self) -> Option<&mut Bus> {
        let i = usize::try_from(self.sel).ok()?;
        self.buses.get_mut(i)
    }

    /// The 32-bit register at `off`; reading the up register clears it, as QEMU's non-legacy
    /// PIIX4 does.
    fn register(&mut self, off: u16) -> u32 {
        if off == 0x10 {
            return self.sel;
        }
        let Some(b) = self.selected() else { return 0 };
        match off {
            0x00 => std::mem::take(&mut b.up),
            0x04 => b.down,
            0x0c => b.slots,
            _ => 0,
        }
    }

    /// Reads `data.len()` bytes at `port` (within one register).
    pub fn read(&mut self, port: u16, data: &mut [u8]) {
        let off = port.saturating_sub(BASE);
        let (reg, shift) = (off & !3, usize::from(off & 3));
        let bytes = self.register(reg).to_le_bytes();
        for (i, d) in data.iter_mut().enumerate() {
            *d = bytes.get(shift + i).copied().unwrap_or(0);
        }
    }

    /// Writes `data` at `port`; returns the bus selector and the slots the guest ejects (their
    /// down bits are cleared), if any.
    pub fn write(&mut self, port: u16, data: &[u8]) -> Option<(usize, u32)> {
        let off = port.saturating_sub(BASE);
        let mut v = [0u8; 4];
        let shift = usize::from(off & 3);
        for (i, d) in data.iter().enumerate() {
            if let Some(b) = v.get_mut(shift + i) {
                *b = *d;
            }
        }
        let v = u32::from_le_bytes(v);
        match off & !3 {
            0x08 => {
                let bsel = usize::try_from(self.sel).ok()?;
                let b = self.buses.get_mut(bsel)?;
                let ejected = v & b.slots;
                b.down &= !ejected;
                b.up &= !ejected;
                (ejected != 0).then_some((bsel, ejected))
            }
            0x10 => {
                self.sel = v;
                None
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read32(h: &mut PciHotplug, off: u16) -> u32 {
        let mut d = [0u8; 4];
        h.read(BASE + off, &mut d);
        u32::from_le_bytes(d)
    }

    #[test]
    fn plug_is_read_once_and_eject_clears_the_request() {
        let mut h = PciHotplug::new(0xffff_fff8);
        assert_eq!(read32(&mut h, 0x0c), 0xffff_fff8);
        h.plug(0, 5);
        h.plug(0, 1); // not hot-pluggable: ignored
        assert_eq!(read32(&mut h, 0x00), 1 << 5);
        assert_eq!(read32(&mut h, 0x00), 0);
        h.request_unplug(0, 5);
        assert_eq!(read32(&mut h, 0x04), 1 << 5);
        assert_eq!(h.write(BASE + 8, &(1u32 << 5 | 1 << 1).to_le_bytes()), Some((0, 1 << 5)));
        assert_eq!(read32(&mut h, 0x04), 0);
        assert_eq!(read32(&mut h, 0x08), 0);
    }

    #[test]
    fn other_buses_are_empty_and_byte_access_works() {
        let mut h = PciHotplug::new(1 << 9);
        h.plug(0, 9);
        h.write(BASE + 0x10, &[1]);
        assert_eq!(read32(&mut h, 0x10), 1);
        assert_eq!(read32(&mut h, 0x00), 0);
        assert_eq!(h.write(BASE + 8, &(1u32 << 9).to_le_bytes()), None);
        h.write(BASE + 0x10, &0u32.to_le_bytes());
        let mut b = [0u8; 1];
        h.read(BASE + 1, &mut b);
        assert_eq!(b[0], 2); // bit 9 = byte 1 bit 1
        assert_eq!(read32(&mut h, 0x00), 0, "the byte read took the up bits");
    }

    #[test]
    fn bridge_buses_have_their_own_registers() {
        let mut h = PciHotplug::with_bridges(1 << 3, 1);
        h.plug(1, 0);
        h.plug(0, 3);
        h.request_unplug(1, 7);
        h.write(BASE + 0x10, &1u32.to_le_bytes());
        assert_eq!((read32(&mut h, 0x00), read32(&mut h, 0x04), read32(&mut h, 0x0c)), (1, 1 << 7, u32::MAX));
        assert_eq!(h.write(BASE + 8, &(1u32 << 7).to_le_bytes()), Some((1, 1 << 7)));
        h.write(BASE + 0x10, &0u32.to_le_bytes());
        assert_eq!(read32(&mut h, 0x00), 1 << 3);
        h.write(BASE + 0x10, &2u32.to_le_bytes());
        assert_eq!((read32(&mut h, 0x0c), h.write(BASE + 8, &u32::MAX.to_le_bytes())), (0, None));
    }
}
