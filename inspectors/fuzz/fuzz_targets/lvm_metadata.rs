//! LVM text metadata, PV labels and VG assembly on arbitrary bytes. The input is used
//! both as metadata text and as a PV device (label + metadata area).
#![no_main]
use ferry_inspectors::lvm::{assemble, meta, scan_pv};
use ferry_inspectors::{Device, MemDevice};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let _ = meta::parse(data);
    let dev = Device::new("/dev/sda2", Arc::new(MemDevice(data.to_vec())));
    if let Ok(Some(pv)) = scan_pv(&dev) {
        let (_, lvs) = assemble(&[pv]);
        for lv in lvs {
            let size = lv.size();
            let _ = lv.read_upto(0, 4096);
            let _ = lv.read_upto(size.saturating_sub(4096), 4096);
        }
    }
});
