//! MBR/GPT parsing on arbitrary disk bytes: never panics, loops or over-allocates.
#![no_main]
use ferry_inspectors::partition::{partition_device, PartitionTable};
use ferry_inspectors::{Device, MemDevice};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let disk = Device::new("/dev/sda", Arc::new(MemDevice(data.to_vec())));
    if let Ok(Some(t)) = PartitionTable::read(&disk) {
        for p in &t.partitions {
            if let Ok(d) = partition_device(&disk, p) {
                let _ = d.read_upto(0, 512);
            }
        }
    }
});
