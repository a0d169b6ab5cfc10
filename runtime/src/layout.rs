//! The guest-physical memory map (x86-64), shared by boot setup, ACPI/MP tables and devices.
//!
//! | What | Where |
//! | --- | --- |
//! | GDT | 0x500 |
//! | PVH start_info + memmap / zero page | 0x6000 / 0x7000 |
//! | boot stack top | 0x8ff0 |
//! | PML4 / PDPTE / 4 PDs (identity map of 4 GiB, 2 MiB pages) | 0x9000 / 0xa000 / 0xb000..0xf000 |
//! | kernel command line (64 KiB max) | 0x20000 |
//! | EBDA (reserved) | 0x9fc00..0xa0000 |
//! | ACPI: RSDP, XSDT, FADT, FACS, DSDT, MADT, MCFG | 0xe0000..0xf0000 (BIOS area, reserved) |
//! | MP table / SMBIOS | 0xf0000 / 0xf8000 (BIOS area, reserved) |
//! | kernel | 1 MiB |
//! | RAM | up to [`LOW_RAM_END`], the rest from 4 GiB |
//! | ECAM (PCIe MMCONFIG), as q35's PCIEXBAR | 0xb000_0000, 256 MiB |
//! | 32-bit PCI BAR window | 0xc000_0000..0xfec0_0000 |
//! | IOAPIC / LAPIC | 0xfec0_0000 / 0xfee0_0000 |

/// GDT used by the boot vCPU.
pub const GDT_ADDR: u64 = 0x500;
/// PVH `hvm_start_info`.
pub const PVH_INFO_ADDR: u64 = 0x6000;
/// PVH memory map entries (after start_info and the module list).
pub const PVH_MEMMAP_ADDR: u64 = 0x6100;
/// PVH module list (initrd).
pub const PVH_MODLIST_ADDR: u64 = 0x6080;
/// Linux zero page (`boot_params`).
pub const ZERO_PAGE_ADDR: u64 = 0x7000;
/// Initial stack pointer of the boot vCPU.
pub const BOOT_STACK: u64 = 0x8ff0;
/// Page-table root for the 64-bit entry.
pub const PML4_ADDR: u64 = 0x9000;
/// Kernel command line.
pub const CMDLINE_ADDR: u64 = 0x20000;
/// Largest accepted command line, including the NUL.
pub const CMDLINE_MAX: usize = 0x10000;
/// Start of the extended BIOS data area (reserved in e820).
pub const EBDA_START: u64 = 0x9fc00;
/// The ACPI tables, RSDP first (inside the 0xe0000..0x100000 range OSes scan).
pub const ACPI_START: u64 = 0xe0000;
/// End (exclusive) of the ACPI table area.
pub const ACPI_END: u64 = 0xf0000;
/// The MP floating pointer and configuration table.
pub const MPTABLE_ADDR: u64 = 0xf0000;
/// Start of high memory (kernel load address).
pub const HIMEM_START: u64 = 0x10_0000;
/// End of RAM below 4 GiB (start of the ECAM window).
pub const LOW_RAM_END: u64 = 0xb000_0000;
/// ECAM base (PCIEXBAR) and size: 256 buses.
pub const ECAM_BASE: u64 = 0xb000_0000;
/// ECAM size.
pub const ECAM_SIZE: u64 = 0x1000_0000;
/// 32-bit PCI BAR window start.
pub const PCI_MMIO_START: u64 = 0xc000_0000;
/// 32-bit PCI BAR window end (exclusive).
pub const PCI_MMIO_END: u64 = 0xfec0_0000;
/// IOAPIC base.
pub const IOAPIC_ADDR: u64 = 0xfec0_0000;
/// LAPIC base.
pub const LAPIC_ADDR: u64 = 0xfee0_0000;
/// Where RAM resumes above the hole.
pub const HIGH_RAM_START: u64 = 0x1_0000_0000;

/// RAM ranges (start, length) for a guest of `mem_bytes`.
pub fn ram_ranges(mem_bytes: u64) -> Vec<(u64, u64)> {
    if mem_bytes <= LOW_RAM_END {
        vec![(0, mem_bytes)]
    } else {
        vec![(0, LOW_RAM_END), (HIGH_RAM_START, mem_bytes - LOW_RAM_END)]
    }
}

/// One e820 entry: start, length, type (1 RAM, 2 reserved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    /// First byte.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// 1 = RAM, 2 = reserved.
    pub kind: u32,
}

const _: () = assert!(ECAM_BASE + ECAM_SIZE <= PCI_MMIO_START);
const _: () = assert!(ACPI_END <= MPTABLE_ADDR);

/// The e820 map presented to the guest.
pub fn e820(mem_bytes: u64) -> Vec<E820Entry> {
    let ram = |addr, size| E820Entry { addr, size, kind: 1 };
    let reserved = |addr, size| E820Entry { addr, size, kind: 2 };
    let mut map = vec![ram(0, EBDA_START), reserved(EBDA_START, 0xa0000 - EBDA_START), reserved(ACPI_START, 0x10_0000 - ACPI_START)];
    for (start, len) in ram_ranges(mem_bytes) {
        if start == 0 {
            if len > HIMEM_START {
                map.push(ram(HIMEM_START, len - HIMEM_START));
            }
        } else {
            map.push(ram(start, len));
        }
    }
    map.push(reserved(ECAM_BASE, ECAM_SIZE));
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e820_entries_do_not_overlap() {
        for mem in [64 << 20, 2 << 30, 3 << 30, 8 << 30] {
            let mut map = e820(mem);
            map.sort_by_key(|e| e.addr);
            for w in map.windows(2) {
                assert!(w[0].addr + w[0].size <= w[1].addr, "{mem}: {w:?}");
            }
            let ram: u64 = map.iter().filter(|e| e.kind == 1).map(|e| e.size).sum();
            assert_eq!(ram, mem - HIMEM_START + EBDA_START);
        }
    }

    #[test]
    fn fixed_areas_are_below_the_kernel() {
        for a in [GDT_ADDR, PVH_INFO_ADDR, PVH_MEMMAP_ADDR, ZERO_PAGE_ADDR, PML4_ADDR + 0x6000, CMDLINE_ADDR] {
            assert!(a < EBDA_START);
        }
        assert!(CMDLINE_ADDR + CMDLINE_MAX as u64 <= EBDA_START);
    }
}
