//! Firmware tables the guest finds by scanning 0xf0000..0x100000: the MP table (CPUs, IOAPIC,
//! ISA interrupt routing) and SMBIOS 2.8 with the type-1 system UUID. ACPI is in [`crate::acpi`].
use crate::cpuid::{apic_id, CpuTopology};
use crate::layout;

fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)))
}

/// The IOAPIC's ID in the MP table and MADT: one above the highest LAPIC ID (xAPIC range).
pub fn ioapic_id(topo: &CpuTopology) -> u8 {
    let top = (0..topo.vcpus()).map(|i| apic_id(topo, i)).max().unwrap_or(0);
    u8::try_from(top + 1).unwrap_or(0xfe).min(0xfe)
}

/// The MP floating pointer + configuration table, placed at `base`.
pub fn mptable(base: u64, topo: &CpuTopology) -> Vec<u8> {
    let n = topo.vcpus();
    let ioapic_id = ioapic_id(topo);
    let mut t = Vec::new();
    // configuration table header (44 bytes), filled in at the end
    t.extend_from_slice(b"PCMP");
    t.extend_from_slice(&[0; 40]);
    let mut entries = 0u16;
    for i in 0..n {
        let mut e = [0u8; 20];
        e[1] = apic_id(topo, i) as u8;
        e[2] = 0x14; // LAPIC version
        e[3] = 1 | if i == 0 { 2 } else { 0 }; // enabled, BSP
        e[4..8].copy_from_slice(&0x0006_00f0u32.to_le_bytes()); // signature: family 6
        e[8..12].copy_from_slice(&0x0000_0201u32.to_le_bytes()); // features: FPU, APIC
        t.extend_from_slice(&e);
        entries += 1;
    }
    t.extend_from_slice(&[1, 0, b'I', b'S', b'A', b' ', b' ', b' ']); // bus 0 = ISA
    let mut io = [2u8, ioapic_id, 0x11, 1, 0, 0, 0, 0];
    io[4..8].copy_from_slice(&(layout::IOAPIC_ADDR as u32).to_le_bytes());
    t.extend_from_slice(&io);
    entries += 2;
    for irq in 0..16u8 {
        let (kind, pin) = match irq {
            0 => (0u8, 2u8), // PIT on pin 2, as with a real chipset's IRQ0 override
            2 => continue,
            _ => (0, irq),
        };
        t.extend_from_slice(&[3, kind, 0, 0, 0, irq, ioapic_id, pin]);
        entries += 1;
    }
    t.extend_from_slice(&[4, 3, 0, 0, 0, 0, 0xff, 0]); // LINT0 ExtINT
    t.extend_from_slice(&[4, 1, 0, 0, 0, 0, 0xff, 1]); // LINT1 NMI
    entries += 2;
    let len = t.len() as u16;
    t[4..6].copy_from_slice(&len.to_le_bytes());
    t[6] = 4; // spec 1.4
    t[8..16].copy_from_slice(b"FERRY   ");
    t[16..28].copy_from_slice(b"FERRYVM     ");
    t[34..36].copy_from_slice(&entries.to_le_bytes());
    t[36..40].copy_from_slice(&(layout::LAPIC_ADDR as u32).to_le_bytes());
    t[7] = checksum(&t);
    let mut fp = [0u8; 16];
    fp[..4].copy_from_slice(b"_MP_");
    fp[4..8].copy_from_slice(&((base + 16) as u32).to_le_bytes());
    fp[8] = 1; // length in 16-byte units
    fp[9] = 4;
    fp[10] = checksum(&fp);
    let mut out = fp.to_vec();
    out.extend_from_slice(&t);
    out
}

/// Parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into SMBIOS byte order (first three fields LE).
pub fn smbios_uuid_bytes(uuid: &str) -> Option<[u8; 16]> {
    let hex: String = uuid.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || uuid.len() != 36 {
        return None;
    }
    let mut b = [0u8; 16];
    for (i, x) in b.iter_mut().enumerate() {
        *x = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    Some(b)
}

/// SMBIOS 2.8 entry point + type 1 (system) + type 127, placed at `base`.
pub fn smbios(base: u64, uuid: Option<[u8; 16]>, product: &str) -> Vec<u8> {
    let mut table = Vec::new();
    let mut t1 = vec![1u8, 0x1b, 0x00, 0x01, 1, 2, 3, 0];
    t1.extend_from_slice(&uuid.unwrap_or([0; 16]));
    t1.extend_from_slice(&[6, 0, 0]); // wake-up: power switch; no SKU/family strings
    table.extend_from_slice(&t1);
    let product: String = product.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(64).collect();
    for s in ["Ferry", if product.is_empty() { "Ferry VM" } else { &product }, "1"] {
        table.extend_from_slice(s.as_bytes());
        table.push(0);
    }
    table.push(0);
    table.extend_from_slice(&[127, 4, 0x01, 0x00, 0, 0]);
    let mut ep = [0u8; 0x20];
    ep[..4].copy_from_slice(b"_SM_");
    ep[5] = 0x1f;
    ep[6] = 2;
    ep[7] = 8;
    ep[8..10].copy_from_slice(&0x30u16.to_le_bytes()); // max structure size
    ep[0x10..0x15].copy_from_slice(b"_DMI_");
    ep[0x16..0x18].copy_from_slice(&(table.len() as u16).to_le_bytes());
    ep[0x18..0x1c].copy_from_slice(&((base + 0x20) as u32).to_le_bytes());
    ep[0x1c..0x1e].copy_from_slice(&2u16.to_le_bytes());
    ep[0x1e] = 0x28;
    ep[0x15] = checksum(&ep[0x10..0x1f]);
    ep[4] = checksum(&ep[..0x1f]);
    let mut out = ep.to_vec();
    out.extend_from_slice(&table);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mp_table_checksums_are_zero() {
        let t = mptable(0xf0000, &CpuTopology::flat(4));
        assert_eq!(t[..16].iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
        let len = usize::from(u16::from_le_bytes([t[20], t[21]]));
        assert_eq!(t[16..16 + len].iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
    }

    #[test]
    fn smbios_uuid_is_mixed_endian() {
        let b = smbios_uuid_bytes("00112233-4455-6677-8899-aabbccddeeff").unwrap_or_default();
        assert_eq!(b, [0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
        assert_eq!(smbios_uuid_bytes("not-a-uuid"), None);
        let s = smbios(0xf1000, Some(b), "x");
        assert_eq!(s[..0x1f].iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
    }
}
