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
//! Only the root bus (BSEL 0) has slots: other selections read as empty and eject nothing.
//! A plug or an unplug request sets GPE0 status bit 1 ([`GPE_BIT`]), whose `_E01` runs `PCNT`.

/// First port of the register block.
pub const BASE: u16 = 0xae00;
/// Length of the register block.
pub const LEN: u16 = 0x14;
/// The GPE0 status bit of PCI hotplug events (QEMU's ACPI_PCI_HOTPLUG_STATUS).
pub const GPE_BIT: u8 = 1;

/// The register file.
#[derive(Debug, Default)]
pub struct PciHotplug {
    up: u32,
    down: u32,
    sel: u32,
    slots: u32,
}

impl PciHotplug {
    /// Registers for a root bus whose hot-pluggable slots are the bits of `slots`.
    pub fn new(slots: u32) -> Self {
        PciHotplug { slots, ..Default::default() }
    }

    /// Whether `port` is in the block.
    pub fn decodes(port: u16) -> bool {
        (BASE..BASE + LEN).contains(&port)
    }

    /// Whether `slot` takes hot-plugged devices.
    pub fn hotpluggable(&self, slot: u8) -> bool {
        slot < 32 && self.slots & (1 << slot) != 0
    }

    /// A device was plugged at `slot`: the guest's `PCNT` will find it.
    pub fn plug(&mut self, slot: u8) {
        if self.hotpluggable(slot) {
            self.up |= 1 << slot;
            self.down &= !(1 << slot);
        }
    }

    /// The device at `slot` is asked to go: the guest's `PCNT` will eject it.
    pub fn request_unplug(&mut self, slot: u8) {
        if self.hotpluggable(slot) {
            self.down |= 1 << slot;
        }
    }

    /// The 32-bit register at `off`; reading the up register clears it, as QEMU's non-legacy
    /// PIIX4 does.
    fn register(&mut self, off: u16) -> u32 {
        let root = self.sel == 0;
        match off {
            0x00 if root => std::mem::take(&mut self.up),
            0x04 if root => self.down,
            0x0c if root => self.slots,
            0x10 => self.sel,
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

    /// Writes `data` at `port`; returns the slots the guest ejects (their down bits are cleared).
    pub fn write(&mut self, port: u16, data: &[u8]) -> u32 {
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
            0x08 if self.sel == 0 => {
                let ejected = v & self.slots;
                self.down &= !ejected;
                self.up &= !ejected;
                ejected
            }
            0x10 => {
                self.sel = v;
                0
            }
            _ => 0,
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
        h.plug(5);
        h.plug(1); // not hot-pluggable: ignored
        assert_eq!(read32(&mut h, 0x00), 1 << 5);
        assert_eq!(read32(&mut h, 0x00), 0);
        h.request_unplug(5);
        assert_eq!(read32(&mut h, 0x04), 1 << 5);
        assert_eq!(h.write(BASE + 8, &(1u32 << 5 | 1 << 1).to_le_bytes()), 1 << 5);
        assert_eq!(read32(&mut h, 0x04), 0);
        assert_eq!(read32(&mut h, 0x08), 0);
    }

    #[test]
    fn other_buses_are_empty_and_byte_access_works() {
        let mut h = PciHotplug::new(1 << 9);
        h.plug(9);
        h.write(BASE + 0x10, &[1]);
        assert_eq!(read32(&mut h, 0x10), 1);
        assert_eq!(read32(&mut h, 0x00), 0);
        assert_eq!(h.write(BASE + 8, &(1u32 << 9).to_le_bytes()), 0);
        h.write(BASE + 0x10, &0u32.to_le_bytes());
        let mut b = [0u8; 1];
        h.read(BASE + 1, &mut b);
        assert_eq!(b[0], 2); // bit 9 = byte 1 bit 1
        assert_eq!(read32(&mut h, 0x00), 0, "the byte read took the up bits");
    }
}
