//! PCI INTx: QEMU's pin → GSI routing and shared level-triggered lines driven with
//! KVM_IRQ_LINE (a GSI is high while any function routed to it asserts its pin).
//!
//! q35 (measured with `testdata/microguests/intx.c` under QEMU 10): slot S, pin P (1 = INTA)
//! → PIRQ E..H = 4 + ((S + P - 1) & 3) → GSI 16 + PIRQ, i.e. 20..23, for slots 0..=0x18; slots
//! 0x19..=0x1f follow ICH9's DxxIR registers at their reset values, as QEMU's `_PRT` lists
//! them: pin P → PIRQ A..D (GSI 16..19), slot 0x1e → PIRQ E..H (measured behind root ports
//! at 0x1b, 0x1d: GSI 16; at 0x1e: GSI 20). DxxIR rewrites are not followed.
//! pc: slot S, pin P → PIRQ A..D = (S + P - 2) & 3 (i440FX swizzle) → the ISA IRQ SeaBIOS
//! programs into PIIX3's PIRQRC registers, 10 10 11 11 (measured: INTA of slots 2..5 → 10 11
//! 11 10). The runtime routes PIRQs that way without firmware; PIRQRC rewrites are not followed.
use crate::pci::Machine;
use kvm_ioctls::VmFd;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// Highest slot whose INTx routing follows QEMU's generic q35 swizzle.
pub const LAST_SWIZZLED_SLOT: u8 = 0x18;
/// ISA IRQs SeaBIOS gives PIIX3's PIRQ A..D.
pub const PIIX_PIRQ_IRQS: [u32; 4] = [10, 10, 11, 11];

/// The GSI that `slot`'s interrupt `pin` (1..=4) reaches, if the profile routes it.
pub fn gsi(profile: Machine, slot: u8, pin: u8) -> Option<u32> {
    if !(1..=4).contains(&pin) || slot > 0x1f {
        return None;
    }
    let (slot, pin) = (u32::from(slot), u32::from(pin));
    match profile {
        Machine::Q35 if slot <= u32::from(LAST_SWIZZLED_SLOT) => Some(16 + 4 + ((slot + pin - 1) & 3)),
        Machine::Q35 if slot == 0x1e => Some(16 + 4 + pin - 1),
        Machine::Q35 => Some(16 + pin - 1),
        Machine::Pc => PIIX_PIRQ_IRQS.get(((slot + pin + 2) & 3) as usize).copied(),
    }
}

/// The GSI that pin `pin` (1..=4) of a device at `slot` behind a PCI bridge or PCIe root port
/// at root slot `bridge_slot` reaches: both swizzle (pin + slot) onto their own pin.
pub fn gsi_behind(profile: Machine, bridge_slot: u8, slot: u8, pin: u8) -> Option<u32> {
    if !(1..=4).contains(&pin) {
        return None;
    }
    gsi(profile, bridge_slot, (pin - 1 + (slot & 3)) % 4 + 1)
}

/// A PCI function asserting a line: (bus, slot, function).
type Asserter = (u8, u8, u8);

/// Level state of the INTx GSIs, shared by every function.
pub struct IntxLines {
    vm: Arc<VmFd>,
    asserted: Mutex<HashMap<u32, BTreeSet<Asserter>>>,
}

impl IntxLines {
    /// Lines of `vm`.
    pub fn new(vm: Arc<VmFd>) -> Arc<Self> {
        Arc::new(IntxLines { vm, asserted: Mutex::new(HashMap::new()) })
    }

    /// Function `source` (bus, slot, function) drives `gsi` to `level`.
    pub fn set(&self, gsi: u32, source: (u8, u8, u8), level: bool) {
        let Ok(mut a) = self.asserted.lock() else { return };
        let set = a.entry(gsi).or_default();
        let before = !set.is_empty();
        if level {
            set.insert(source);
        } else {
            set.remove(&source);
        }
        let after = !set.is_empty();
        if before != after {
            if let Err(e) = self.vm.set_irq_line(gsi, after) {
                crate::virtio::log("intx", &format!("KVM_IRQ_LINE {gsi}: {e}"));
            }
        }
    }
}

/// One function's INTx pin, wired to its GSI.
pub struct IntxPin {
    lines: Arc<IntxLines>,
    gsi: u32,
    source: (u8, u8, u8),
    level: bool,
}

impl IntxPin {
    /// The pin of function `slot.function` routed to `gsi`.
    pub fn new(lines: Arc<IntxLines>, gsi: u32, slot: u8, function: u8) -> Self {
        IntxPin { lines, gsi, source: (0, slot, function), level: false }
    }
    /// The pin of function `bus:slot.function` behind a bridge, routed to `gsi`.
    pub fn behind(lines: Arc<IntxLines>, gsi: u32, bus: u8, slot: u8, function: u8) -> Self {
        IntxPin { lines, gsi, source: (bus, slot, function), level: false }
    }
    /// Drives the pin (no ioctl when unchanged).
    pub fn set(&mut self, level: bool) {
        if level != self.level {
            self.level = level;
            self.lines.set(self.gsi, self.source, level);
        }
    }
    /// Current level.
    pub fn level(&self) -> bool {
        self.level
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q35_swizzle_matches_qemu() {
        // Measured under QEMU 10 -machine q35: INTA of slots 2..9 → 22 23 20 21 22 23 20 21.
        let got: Vec<_> = (2..10).map(|s| gsi(Machine::Q35, s, 1)).collect();
        let want: Vec<_> = [22, 23, 20, 21, 22, 23, 20, 21].into_iter().map(Some).collect();
        assert_eq!(got, want);
        assert_eq!(gsi(Machine::Q35, 4, 2), Some(21));
        assert_eq!(gsi(Machine::Q35, 0x18, 1), Some(20));
        // ICH9 DxxIR reset routing (QEMU's _PRT): root ports at 0x1b/0x1d → 16, 0x1e → 20.
        assert_eq!([0x19, 0x1b, 0x1d, 0x1e, 0x1f].map(|s| gsi(Machine::Q35, s, 1)), [16, 16, 16, 20, 16].map(Some));
        assert_eq!(gsi(Machine::Q35, 0x1b, 2), Some(17));
        // Behind QEMU's pci-bridge at pc slot 0x1f (measured): slots 1..4 → 11 10 10 11.
        assert_eq!([1, 2, 3, 4].map(|s| gsi_behind(Machine::Pc, 0x1f, s, 1)), [11, 10, 10, 11].map(Some));
        assert_eq!(gsi_behind(Machine::Q35, 0x1e, 0, 1), Some(20));
        assert_eq!(gsi(Machine::Q35, 4, 0), None);
        // Measured under QEMU 10 -machine pc (SeaBIOS PIRQ setup): slots 2..9 → 10 11 11 10 10 11 11 10.
        let got: Vec<_> = (2..10).map(|s| gsi(Machine::Pc, s, 1)).collect();
        let want: Vec<_> = [10, 11, 11, 10, 10, 11, 11, 10].into_iter().map(Some).collect();
        assert_eq!(got, want);
    }
}
