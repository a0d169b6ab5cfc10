//! Guest-controlled ACPI PCI hotplug registers (pc's 0xae00 block): arbitrary reads and writes
//! of any width at any port of the block (and around it), interleaved with host plugs and
//! unplug requests. Nothing may panic; an eject only ever names hot-pluggable slots, and a
//! read of the up register clears it.
#![no_main]
use ferry_runtime::devices::pcihp::{PciHotplug, BASE, LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((slots, ops)) = data.split_first_chunk::<4>() else { return };
    let slots = u32::from_le_bytes(*slots);
    let Some((&bridges, ops)) = ops.split_first() else { return };
    let bridges = usize::from(bridges % 4);
    let mut h = PciHotplug::with_bridges(slots, bridges);
    // Operations of 6 bytes: kind, port offset, value (4 bytes).
    for op in ops.chunks_exact(6).take(1024) {
        let port = (BASE - 2).wrapping_add(u16::from(op[1] % (LEN as u8 + 4)));
        let width = [1usize, 2, 4, 3][usize::from(op[0] >> 2) % 4];
        match op[0] & 3 {
            0 if PciHotplug::decodes(port) => {
                if let Some((bsel, ejected)) = h.write(port, &op[2..2 + width]) {
                    assert!(bsel <= bridges, "ejected on bus selector {bsel} of {bridges} bridges");
                    assert!(bsel > 0 || ejected & !slots == 0, "ejected a root slot that is not hot-pluggable");
                }
            }
            1 if PciHotplug::decodes(port) => {
                let mut b = [0u8; 4];
                h.read(port, &mut b[..width]);
                if port == BASE && width == 4 {
                    let mut again = [0u8; 4];
                    h.read(BASE, &mut again);
                    assert_eq!(again, [0; 4], "the up register reads once");
                }
            }
            2 => h.plug(usize::from(op[3] % 5), op[2]),
            3 => h.request_unplug(usize::from(op[3] % 5), op[2]),
            _ => {}
        }
    }
});
