//! Guest-controlled fw_cfg: arbitrary guest RAM (the DMA descriptors and their targets),
//! selector writes, DMA address writes (in and out of RAM) and data-port reads against the
//! items a firmware boot serves. Nothing may panic or allocate by a guest-given length.
#![no_main]
use ferry_runtime::cpuid::CpuTopology;
use ferry_runtime::firmware::{self, fw_cfg};
use ferry_runtime::pci::Machine;
use libfuzzer_sys::fuzz_target;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const RAM: usize = 0x10000;

fuzz_target!(|data: &[u8]| {
    let Some((&machine, rest)) = data.split_first() else { return };
    let m = if machine & 1 == 0 { Machine::Q35 } else { Machine::Pc };
    let topo = CpuTopology::flat(u32::from(machine >> 4) + 1);
    let Ok(acpi) = ferry_runtime::acpi::build(m, &topo) else { return };
    let order = vec!["/pci@i0cf8/scsi@4/disk@0,0".to_string()];
    let items = firmware::Items { mem_bytes: 256 << 20, topology: &topo, acpi: &acpi, uuid: Some([7; 16]), name: "fuzz", boot_order: &order };
    let Ok(mut dev) = firmware::fw_cfg(&items, "fuzz") else { return };
    let Ok(mem) = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), RAM)]) else { return };
    // The first 256 bytes are operations (4 bytes each); all of the input is guest RAM.
    let (ops, _) = rest.split_at(rest.len().min(256));
    let _ = mem.write_slice(&rest[..rest.len().min(RAM)], GuestAddress(0));
    for op in ops.chunks_exact(4) {
        let arg = u16::from_le_bytes([op[1], op[2]]);
        match op[0] % 6 {
            0 => dev.write(fw_cfg::PORT_SELECTOR, &arg.to_le_bytes(), &mem),
            1 => {
                // DMA descriptor address: in RAM, at its end, or far outside.
                let addr = u64::from(arg) << (op[3] % 20);
                dev.write(fw_cfg::PORT_DMA, &((addr >> 32) as u32).to_be_bytes(), &mem);
                dev.write(fw_cfg::PORT_DMA + 4, &(addr as u32).to_be_bytes(), &mem);
            }
            2 => {
                let mut b = vec![0u8; usize::from(op[3] % 5)];
                dev.read(fw_cfg::PORT_DATA, &mut b);
            }
            3 => {
                let mut b = [0u8; 4];
                dev.read(fw_cfg::PORT_DMA + u16::from(op[3] % 8), &mut b[..usize::from(op[1] % 4) + 1]);
            }
            4 => dev.dma(u64::from(arg), &mem),
            _ => dev.write(fw_cfg::PORT_DATA, &op[1..2], &mem),
        }
    }
});
