//! Guest-controlled flash: arbitrary command/data write sequences and reads of any width at
//! any offset (past the end too) on a writable and a read-only unit, with an NVRAM file
//! behind the writable one. Nothing may panic or allocate by a guest-given value.
#![no_main]
use ferry_runtime::firmware::pflash::{Unit, UnitSource};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Some((&first, ops)) = data.split_first() else { return };
    // 1..=4 sectors, pattern contents.
    let len = (usize::from(first & 3) + 1) * 4096;
    let bytes: Arc<[u8]> = (0..len).map(|i| i as u8).collect::<Vec<u8>>().into();
    // Write-backs go to /dev/null (the NVRAM path, without a file to fill).
    let file = std::fs::OpenOptions::new().write(true).open("/dev/null").ok().map(Arc::new);
    let mut units = Vec::new();
    for ro in [false, true] {
        let src = UnitSource { name: "fuzz".into(), data: bytes.clone(), readonly: ro, file: if ro { None } else { file.clone() } };
        match Unit::new(usize::from(ro), 0, src) {
            Ok(u) => units.push(u),
            Err(_) => return,
        }
    }
    // Operations of 6 bytes: kind, unit, offset (2 bytes, scaled), value (2 bytes).
    for op in ops.chunks_exact(6).take(512) {
        let u = &mut units[usize::from(op[1] & 1)];
        let offset = u64::from(u16::from_le_bytes([op[2], op[3]])) << (op[1] >> 5);
        let value = [op[4], op[5], op[4] ^ 0x5a, op[5] ^ 0xa5, op[4], op[5], 0, 0];
        let width = [1usize, 2, 4, 8, 3][usize::from(op[0] >> 1) % 5];
        if op[0] & 1 == 0 {
            u.mmio_write(offset, &value[..width]);
        } else {
            let mut b = [0u8; 8];
            u.mmio_read(offset, &mut b[..width]);
        }
    }
});
