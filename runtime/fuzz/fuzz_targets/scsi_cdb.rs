//! Guest-controlled SCSI CDBs: arbitrary bytes as a CDB of any length, for a present or absent
//! LUN of any capacity, through the transfer-length parser and the command emulation. Nothing
//! may panic, emulated data stays within its bound, and every READ/WRITE/UNMAP/WRITE SAME lies
//! inside the disk; the same bytes as a MODE SELECT parameter list are checked without panic.
#![no_main]
use ferry_runtime::virtio::scsi::cdb::{execute, mode_select, transfer, unmap_ranges, Command, Unit, BLOCK, MAX_EMULATED};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 10 {
        return;
    }
    let blocks = u64::from_le_bytes([data[0], data[1], data[2], data[3], data[4], data[5], data[6], data[7]]) >> (data[8] % 64);
    let unit = Unit { blocks, serial: "FUZZ", readonly: data[9] & 1 != 0, present: data[9] & 2 == 0, write_cache: data[9] & 4 == 0 };
    let cdb = &data[10..];
    let _ = transfer(cdb);
    match execute(cdb, &unit) {
        Command::Data(v) => assert!(v.len() <= MAX_EMULATED),
        Command::Read { lba, blocks: n } | Command::Write { lba, blocks: n } | Command::WriteSame { lba, blocks: n, .. } => {
            assert!(lba.checked_add(n).is_some_and(|end| end <= blocks), "{lba}+{n} past {blocks}");
            let _ = lba.checked_mul(BLOCK);
        }
        Command::Unmap { .. } => {
            // The same bytes as an UNMAP parameter list: every range inside the disk.
            for (lba, n) in unmap_ranges(cdb, blocks).unwrap_or_default() {
                assert!(lba.checked_add(n).is_some_and(|end| end <= blocks));
            }
        }
        Command::ModeSelect { .. } => {
            let _ = mode_select(cdb, cdb, &unit);
        }
        Command::Flush | Command::Check(_) => {}
    }
});
