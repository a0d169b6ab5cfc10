//! virtio-blk: read/write/flush/discard/write-zeroes/get-id, block-size topology, indirect
//! descriptors. Requests are served on an I/O thread per device, woken by the queue's
//! ioeventfd; completions go to the used ring and out as MSI-X. Raw files are read and
//! written with preadv/pwritev straight into/out of guest RAM (iovecs from bounds-checked
//! descriptors); other backends through vm-memory's Reader/Writer and their read_at/write_at.
//! One thread serves the queue in order, so a flush completes after every earlier write.
use super::iov::{self, Desc};
use super::irq::Irq;
use super::{check_avail, check_chain, log, VirtioDevice, VirtioError, F_INDIRECT_DESC, F_VERSION_1};
use crate::disk::Backend;
use crate::memory::Memory;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use virtio_queue::{Queue, QueueOwnedT, QueueT, Reader, Writer};
use vmm_sys_util::eventfd::EventFd;

const F_SEG_MAX: u64 = 1 << 2;
const F_RO: u64 = 1 << 5;
const F_BLK_SIZE: u64 = 1 << 6;
const F_FLUSH: u64 = 1 << 9;
const F_TOPOLOGY: u64 = 1 << 10;
const F_MQ: u64 = 1 << 12;
const F_DISCARD: u64 = 1 << 13;
const F_WRITE_ZEROES: u64 = 1 << 14;
const QUEUE_SIZE: u16 = 256;
const MAX_SECTORS: u32 = 0x3f_ffff;
const S_OK: u8 = 0;
const S_IOERR: u8 = 1;
const S_UNSUPP: u8 = 2;

/// A virtio block device.
pub struct Blk {
    id: String,
    size: u64,
    readonly: bool,
    file: String,
    serial: String,
    logical: u32,
    physical: u32,
    requests: Arc<Mutex<Requests>>,
    /// Request queues (QEMU's virtio-blk-pci default: one per vCPU).
    queues: u16,
    workers: Vec<Worker>,
}

/// The request server: owned by the I/O thread while the device runs.
struct Requests {
    id: String,
    disk: Box<dyn Backend>,
    serial: String,
    buf: Vec<u8>,
}

/// A running I/O thread.
struct Worker {
    kick: EventFd,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl Blk {
    /// A disk with the given serial and logical/physical block sizes (512 or 4096).
    pub fn new(id: &str, disk: Box<dyn Backend>, serial: &str, logical: u32, physical: u32) -> Self {
        let logical = if logical.is_power_of_two() && (512..=65536).contains(&logical) { logical } else { 512 };
        let physical = if physical.is_power_of_two() && physical >= logical { physical } else { logical };
        let (size, readonly, file) = (disk.size(), disk.readonly(), disk.describe());
        let requests = Requests { id: id.to_string(), disk, serial: serial.to_string(), buf: Vec::new() };
        Blk {
            id: id.to_string(),
            size,
            readonly,
            file,
            serial: serial.to_string(),
            logical,
            physical,
            requests: Arc::new(Mutex::new(requests)),
            queues: 1,
            workers: Vec::new(),
        }
    }

    /// With `n` request queues (1..=64), as QEMU's `num-queues` (whose default is the number
    /// of vCPUs): `VIRTIO_BLK_F_MQ`, `num_queues` in the config and `n + 1` MSI-X vectors.
    pub fn with_queues(mut self, n: u16) -> Self {
        self.queues = n.clamp(1, 64);
        self
    }

    /// One I/O thread per ready queue; returns a kick per queue index (the kick of a queue
    /// the driver did not enable wakes nobody).
    fn start(&mut self, queues: &[Queue], mem: &Memory, irq: Arc<Irq>) -> std::io::Result<Vec<EventFd>> {
        let mut kicks = Vec::new();
        for (q, state) in queues.iter().enumerate() {
            let kick = EventFd::new(0)?;
            kicks.push(kick.try_clone()?);
            let queue = Queue::try_from(state.state()).map_err(|e| std::io::Error::other(e.to_string()))?;
            if !queue.ready() {
                continue;
            }
            let mut queue = queue;
            let (k2, stop, requests, mem, irq) = (kick.try_clone()?, Arc::new(AtomicBool::new(false)), self.requests.clone(), mem.clone(), irq.clone());
            let stop2 = stop.clone();
            let name = if q == 0 { format!("blk-{}", self.id) } else { format!("blk-{}.{q}", self.id) };
            let handle = std::thread::Builder::new().name(name).spawn(move || io_thread(q, &requests, &mut queue, &mem, &irq, &k2, &stop2))?;
            self.workers.push(Worker { kick, stop, handle });
        }
        if self.workers.is_empty() {
            return Ok(Vec::new());
        }
        Ok(kicks)
    }

    fn stop(&mut self) {
        for w in self.workers.drain(..) {
            w.stop.store(true, Ordering::SeqCst);
            let _ = w.kick.write(1);
            if w.handle.join().is_err() {
                log(&self.id, "I/O thread panicked");
            }
        }
    }
}

impl Drop for Blk {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The I/O thread of queue `q`: waits for its notifications and serves every available
/// request.
fn io_thread(q: usize, requests: &Mutex<Requests>, queue: &mut Queue, mem: &Memory, irq: &Irq, kick: &EventFd, stop: &AtomicBool) {
    if let Err(e) = crate::sandbox::enter(crate::sandbox::ThreadClass::Io) {
        return log("blk", &format!("I/O thread not started: {e}"));
    }
    loop {
        let _ = kick.read(); // blocks until the guest (or `stop`) kicks
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if irq.needs_reset() {
            continue;
        }
        let r = requests.lock().unwrap_or_else(|p| p.into_inner()).serve(q, queue, mem);
        match r {
            Ok(true) => {
                if queue.needs_notification(mem).unwrap_or(true) {
                    irq.queue(q);
                }
            }
            Ok(false) => {}
            Err(e) => irq.fail(&e),
        }
    }
}

impl Requests {
    /// Serves every available request of `queue`; true when some were completed.
    fn serve(&mut self, q: usize, queue: &mut Queue, mem: &Memory) -> Result<bool, VirtioError> {
        check_avail(q, queue, mem)?;
        let mut used = false;
        while let Some(chain) = queue.iter(mem).ok().and_then(|mut it| it.next()) {
            let head = chain.head_index();
            let bad = |reason: String| VirtioError::BadChain { queue: q, head, reason };
            check_chain(q, &chain, mem)?;
            let descs: Vec<Desc> = chain.clone().map(|d| (d.addr(), d.len(), d.is_write_only())).collect();
            let mut r = Reader::new(mem, chain.clone()).map_err(|e| bad(e.to_string()))?;
            let mut w = Writer::new(mem, chain).map_err(|e| bad(e.to_string()))?;
            let wlen = w.available_bytes();
            if wlen == 0 || r.available_bytes() < 16 {
                return Err(bad("request lacks a 16-byte header or a status byte".into()));
            }
            let mut status_w = w.split_at(wlen - 1).map_err(|e| bad(e.to_string()))?;
            let (status, n) = self.handle(&mut r, &mut w, mem, &descs);
            if status == S_IOERR {
                log(&self.id, "I/O error or out-of-range request");
            }
            status_w.write_all(&[status]).map_err(|e| bad(e.to_string()))?;
            queue.add_used(mem, head, n + 1).map_err(|e| VirtioError::BadRing(q, e.to_string()))?;
            used = true;
        }
        Ok(used)
    }

    /// Reads or writes `len` bytes at `off` directly between a raw file and guest RAM.
    /// None when the backend has no file descriptor (qcow2, overlay).
    fn direct(&self, mem: &Memory, descs: &[Desc], write: bool, off: u64, len: u64) -> Option<bool> {
        let fd = self.disk.raw_fd()?;
        // Reads fill the device-writable buffers (the status byte is not in `len`); writes take
        // the driver's buffers after the 16-byte header.
        let (writable, skip) = if write { (false, 16) } else { (true, 0) };
        let Some(mut v) = iov::iovecs(mem, descs, writable, skip, len) else { return Some(false) };
        Some(iov::transfer(fd, &mut v, off, write).is_ok())
    }

    fn range_ok(&self, sector: u64, len: u64) -> Option<u64> {
        let off = sector.checked_mul(512)?;
        (off.checked_add(len)? <= self.disk.size()).then_some(off)
    }

    fn handle(&mut self, r: &mut Reader<'_>, w: &mut Writer<'_>, mem: &Memory, descs: &[Desc]) -> (u8, u32) {
        let (Ok(kind), Ok(_prio), Ok(sector)) = (r.read_obj::<u32>(), r.read_obj::<u32>(), r.read_obj::<u64>()) else {
            return (S_IOERR, 0);
        };
        match kind {
            0 => {
                let len = w.available_bytes() as u64;
                let Some(off) = self.range_ok(sector, len) else { return (S_IOERR, 0) };
                if let Some(ok) = self.direct(mem, descs, false, off, len) {
                    return if ok { (S_OK, len as u32) } else { (S_IOERR, 0) };
                }
                let mut done = 0u64;
                while done < len {
                    let n = (len - done).min(1 << 20) as usize;
                    self.buf.resize(n, 0);
                    if self.disk.read_at(&mut self.buf[..n], off + done).is_err() || w.write_all(&self.buf[..n]).is_err() {
                        return (S_IOERR, done as u32);
                    }
                    done += n as u64;
                }
                (S_OK, len as u32)
            }
            1 => {
                let len = r.available_bytes() as u64;
                let Some(off) = self.range_ok(sector, len) else { return (S_IOERR, 0) };
                if self.disk.readonly() {
                    return (S_IOERR, 0);
                }
                if let Some(ok) = self.direct(mem, descs, true, off, len) {
                    return (if ok { S_OK } else { S_IOERR }, 0);
                }
                let mut done = 0u64;
                while done < len {
                    let n = (len - done).min(1 << 20) as usize;
                    self.buf.resize(n, 0);
                    if r.read_exact(&mut self.buf[..n]).is_err() || self.disk.write_at(&self.buf[..n], off + done).is_err() {
                        return (S_IOERR, 0);
                    }
                    done += n as u64;
                }
                (S_OK, 0)
            }
            4 => (if self.disk.readonly() || self.disk.flush().is_ok() { S_OK } else { S_IOERR }, 0),
            8 => {
                let mut id = [0u8; 20];
                let s = self.serial.as_bytes();
                let n = s.len().min(20);
                id[..n].copy_from_slice(&s[..n]);
                let n = w.available_bytes().min(20);
                if w.write_all(&id[..n]).is_err() {
                    return (S_IOERR, 0);
                }
                (S_OK, n as u32)
            }
            11 | 13 if !self.disk.readonly() => {
                while r.available_bytes() >= 16 {
                    let (Ok(sec), Ok(num), Ok(_flags)) = (r.read_obj::<u64>(), r.read_obj::<u32>(), r.read_obj::<u32>()) else {
                        return (S_IOERR, 0);
                    };
                    let len = u64::from(num) * 512;
                    let Some(off) = self.range_ok(sec, len).filter(|_| num <= MAX_SECTORS) else { return (S_IOERR, 0) };
                    let res = if kind == 11 { self.disk.discard(off, len) } else { self.disk.write_zeroes(off, len) };
                    if res.is_err() {
                        return (S_IOERR, 0);
                    }
                }
                (S_OK, 0)
            }
            _ => (S_UNSUPP, 0),
        }
    }
}

impl VirtioDevice for Blk {
    fn device_type(&self) -> u16 {
        2
    }
    fn class_code(&self) -> u32 {
        0x01_0000 << 8
    }
    fn features(&self) -> u64 {
        let mq = if self.queues > 1 { F_MQ } else { 0 };
        let base = F_VERSION_1 | F_INDIRECT_DESC | F_SEG_MAX | F_BLK_SIZE | F_TOPOLOGY | F_FLUSH | mq;
        if self.readonly {
            base | F_RO
        } else {
            base | F_DISCARD | F_WRITE_ZEROES
        }
    }
    fn queue_sizes(&self) -> Vec<u16> {
        vec![QUEUE_SIZE; usize::from(self.queues)]
    }
    fn msix_vectors(&self) -> u16 {
        self.queues + 1
    }
    fn read_config(&self, off: u64, data: &mut [u8]) {
        let mut c = [0u8; 64];
        c[0..8].copy_from_slice(&(self.size / 512).to_le_bytes());
        c[12..16].copy_from_slice(&u32::from(QUEUE_SIZE - 2).to_le_bytes()); // seg_max
        c[20..24].copy_from_slice(&self.logical.to_le_bytes());
        c[24] = (self.physical / self.logical).trailing_zeros() as u8; // physical_block_exp
        c[26..28].copy_from_slice(&((self.physical / self.logical) as u16).to_le_bytes()); // min_io_size
        c[34..36].copy_from_slice(&self.queues.to_le_bytes()); // num_queues
        c[36..40].copy_from_slice(&MAX_SECTORS.to_le_bytes()); // max_discard_sectors
        c[40..44].copy_from_slice(&1u32.to_le_bytes()); // max_discard_seg
        c[44..48].copy_from_slice(&(self.logical / 512).to_le_bytes()); // discard_sector_alignment
        c[48..52].copy_from_slice(&MAX_SECTORS.to_le_bytes()); // max_write_zeroes_sectors
        c[52..56].copy_from_slice(&1u32.to_le_bytes()); // max_write_zeroes_seg
        c[56] = 1; // write_zeroes_may_unmap
        for (i, d) in data.iter_mut().enumerate() {
            *d = usize::try_from(off).ok().and_then(|o| c.get(o + i)).copied().unwrap_or(0);
        }
    }
    fn process(&mut self, q: usize, queues: &mut [Queue], mem: &Memory) -> Result<u64, VirtioError> {
        // Only when the I/O thread could not be started: served on the vCPU thread.
        let Some(queue) = queues.get_mut(q) else { return Ok(0) };
        let used = self.requests.lock().unwrap_or_else(|p| p.into_inner()).serve(q, queue, mem)?;
        Ok(if used { 1 << q } else { 0 })
    }
    fn activate(&mut self, queues: &[Queue], mem: &Memory, irq: Arc<Irq>) -> Option<Vec<EventFd>> {
        self.stop();
        match self.start(queues, mem, irq) {
            Ok(kicks) if !kicks.is_empty() => Some(kicks),
            Ok(_) => None,
            Err(e) => {
                log(&self.id, &format!("cannot start the I/O thread ({e}): serving requests on the vCPU thread"));
                None
            }
        }
    }
    fn reset(&mut self) {
        self.stop();
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "device": self.id, "file": self.file, "ro": self.readonly,
            "size": self.size, "serial": self.serial,
            "logical_block_size": self.logical, "physical_block_size": self.physical,
        })
    }
}
