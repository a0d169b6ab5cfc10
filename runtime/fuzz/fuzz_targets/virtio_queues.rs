//! Guest-controlled virtio queues: arbitrary guest RAM contents, ring addresses and sizes fed to
//! every device model's queue processing (virtio-scsi's command requests and CDBs included). Nothing may panic; errors become NEEDS_RESET upstream.
#![no_main]
use ferry_runtime::disk::Backend;
use ferry_runtime::virtio::balloon::{Balloon, BalloonCtl};
use ferry_runtime::virtio::scsi::{Scsi, Target};
use ferry_runtime::virtio::{blk::Blk, console::Console, net::Net, rng::Rng, VirtioDevice};
use libfuzzer_sys::fuzz_target;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

struct MemDisk(Vec<u8>);

impl Backend for MemDisk {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn readonly(&self) -> bool {
        false
    }
    fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<()> {
        let s = self.0.get(off as usize..off as usize + buf.len()).ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(s);
        Ok(())
    }
    fn write_at(&mut self, buf: &[u8], off: u64) -> std::io::Result<()> {
        let s = self.0.get_mut(off as usize..off as usize + buf.len()).ok_or(std::io::ErrorKind::UnexpectedEof)?;
        s.copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn discard(&mut self, off: u64, len: u64) -> std::io::Result<()> {
        self.write_zeroes(off, len)
    }
    fn write_zeroes(&mut self, off: u64, len: u64) -> std::io::Result<()> {
        let s = self.0.get_mut(off as usize..(off + len) as usize).ok_or(std::io::ErrorKind::UnexpectedEof)?;
        s.fill(0);
        Ok(())
    }
    fn describe(&self) -> String {
        "memory".into()
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let Ok(mem) = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10000)]) else { return };
    let _ = mem.write_slice(&data[16..data.len().min(0x10000 + 16)], GuestAddress(0));
    let w = |i: usize| u64::from(u16::from_le_bytes([data[i], data[i + 1]]));
    let mut dev: Box<dyn VirtioDevice> = match data[0] % 6 {
        5 => {
            // Two targets (0 and 3): requests also reach LUNs and targets that do not exist.
            let t = |n: u8| Target::new("fuzz", n, "s", Box::new(MemDisk(vec![0; 1 << 16])));
            let mut s = Scsi::new("fuzz", vec![t(0), t(3)], 2);
            // The driver may shrink or grow the sense and CDB sizes.
            if data[3] & 2 != 0 {
                s.write_config(20, &u32::from(data[4]).to_le_bytes());
                s.write_config(24, &u32::from(data[5]).to_le_bytes());
            }
            Box::new(s)
        }
        0 => Box::new(Blk::new("fuzz", Box::new(MemDisk(vec![0; 1 << 20])), "s", 512, 4096)),
        1 => Box::new(Net::new([2, 0, 0, 0, 0, 1])),
        2 => Box::new(Console::new(Box::new(std::io::sink()))),
        3 => Box::new(Balloon::new(BalloonCtl::new(0x10000))),
        _ => Box::new(Rng),
    };
    let mut queues: Vec<Queue> = dev.queue_sizes().into_iter().filter_map(|s| Queue::new(s).ok()).collect();
    let q = usize::from(data[1]) % queues.len().max(1);
    for queue in &mut queues {
        queue.set_size(1u16 << (data[2] % 9));
        queue.set_desc_table_address(Some((w(4) << 4) as u32), Some(u32::from(data[3] & 1)));
        queue.set_avail_ring_address(Some((w(6) << 1) as u32), None);
        queue.set_used_ring_address(Some((w(8) << 2) as u32), None);
        queue.set_ready(true);
    }
    for _ in 0..2 {
        let _ = dev.process(q, &mut queues, &mem);
    }
});
