//! virtio-balloon as QEMU's default `virtio-balloon-pci-non-transitional` offers it: inflate,
//! deflate and stats queues, features STATS_VQ | PAGE_POISON (+ the transport's VERSION_1,
//! INDIRECT_DESC, EVENT_IDX, RING_RESET), config `num_pages` / `actual` / `poison_val`.
//! Inflated PFNs are bounds-checked against guest RAM and their host pages dropped with
//! MADV_DONTNEED (they read back as zeros); PFNs outside RAM are ignored with a log, as QEMU
//! does. The stats buffer is parsed and held (QEMU with no polling interval does the same).
use super::{check_chain, log, VirtioDevice, VirtioError, F_EVENT_IDX, F_INDIRECT_DESC, F_RING_RESET, F_VERSION_1};
use crate::memory::Memory;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use virtio_queue::{Queue, QueueOwnedT, QueueT, Reader};
use vm_memory::{GuestAddress, GuestMemoryBackend};

const F_STATS_VQ: u64 = 1 << 1;
const F_PAGE_POISON: u64 = 1 << 4;
const PAGE: u64 = 4096;
const INFLATE: usize = 0;
const DEFLATE: usize = 1;
const STATS: usize = 2;

/// Called with the guest's new RAM size (bytes) whenever it changes `actual`.
type Listener = Box<dyn Fn(u64) + Send + Sync>;

/// The host's handle on the balloon: the target the monitor sets, what the guest reports.
pub struct BalloonCtl {
    target_pages: AtomicU32,
    actual_pages: AtomicU32,
    changed: AtomicBool,
    ram_bytes: u64,
    stats: Mutex<Vec<(u16, u64)>>,
    listener: Mutex<Option<Listener>>,
}

impl BalloonCtl {
    /// A balloon for a guest with `ram_bytes` of RAM, initially empty.
    pub fn new(ram_bytes: u64) -> Arc<Self> {
        Arc::new(BalloonCtl {
            target_pages: AtomicU32::new(0),
            actual_pages: AtomicU32::new(0),
            changed: AtomicBool::new(false),
            ram_bytes,
            stats: Mutex::new(Vec::new()),
            listener: Mutex::new(None),
        })
    }
    /// Calls `f` with the guest's RAM size each time the guest changes `actual` (QMP's
    /// BALLOON_CHANGE event).
    pub fn on_change(&self, f: impl Fn(u64) + Send + Sync + 'static) {
        if let Ok(mut l) = self.listener.lock() {
            *l = Some(Box::new(f));
        }
    }
    fn set_actual(&self, pages: u32) {
        if self.actual_pages.swap(pages, Ordering::SeqCst) != pages {
            if let Ok(l) = self.listener.lock() {
                if let Some(f) = l.as_ref() {
                    f(self.actual_bytes());
                }
            }
        }
    }
    /// QMP `balloon`: asks the guest to leave it `bytes` of RAM (clamped to 0..=RAM).
    pub fn set_target(&self, bytes: u64) {
        let pages = (self.ram_bytes.saturating_sub(bytes.min(self.ram_bytes)) / PAGE).min(u64::from(u32::MAX)) as u32;
        self.target_pages.store(pages, Ordering::SeqCst);
        self.changed.store(true, Ordering::SeqCst);
    }
    /// QMP `query-balloon`: RAM the guest has left, in bytes.
    pub fn actual_bytes(&self) -> u64 {
        self.ram_bytes.saturating_sub(u64::from(self.actual_pages.load(Ordering::SeqCst)) * PAGE)
    }
    /// The last statistics the guest reported: (tag, value).
    pub fn stats(&self) -> Vec<(u16, u64)> {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The balloon device.
pub struct Balloon {
    ctl: Arc<BalloonCtl>,
    poison: u32,
    stats_head: Option<u16>,
    /// Requests with PFNs outside RAM logged so far (a hostile guest cannot flood the log).
    logged: u32,
}

/// How many requests with bad PFNs are logged.
const LOG_LIMIT: u32 = 8;

impl Balloon {
    /// A balloon driven through `ctl`.
    pub fn new(ctl: Arc<BalloonCtl>) -> Self {
        Balloon { ctl, poison: 0, stats_head: None, logged: 0 }
    }

    /// Drops the host pages behind `pfn`; false when it is not a whole page of guest RAM.
    fn discard(mem: &Memory, pfn: u32) -> bool {
        crate::memory::discard(mem, GuestAddress(u64::from(pfn) * PAGE), PAGE as usize)
    }

    fn pfns(&mut self, q: usize, queue: &mut Queue, mem: &Memory) -> Result<bool, VirtioError> {
        let mut used = false;
        while let Some(chain) = queue.iter(mem).ok().and_then(|mut it| it.next()) {
            let head = chain.head_index();
            check_chain(q, &chain, mem)?;
            let mut r = Reader::new(mem, chain).map_err(|e| VirtioError::BadChain { queue: q, head, reason: e.to_string() })?;
            let mut ignored = 0u32;
            while r.available_bytes() >= 4 {
                let mut b = [0u8; 4];
                if r.read_exact(&mut b).is_err() {
                    break;
                }
                let pfn = u32::from_le_bytes(b);
                let ok = if q == INFLATE { Self::discard(mem, pfn) } else { mem.check_range(GuestAddress(u64::from(pfn) * PAGE), PAGE as usize) };
                if !ok {
                    if ignored == 0 && self.logged < LOG_LIMIT {
                        self.logged += 1;
                        let more = if self.logged == LOG_LIMIT { " (further ones are not logged)" } else { "" };
                        log("balloon", &format!("queue {q}: PFN {pfn:#x} is not guest RAM: ignored{more}"));
                    }
                    ignored += 1;
                }
            }
            queue.add_used(mem, head, 0).map_err(|e| VirtioError::BadRing(q, e.to_string()))?;
            used = true;
        }
        Ok(used)
    }

    fn take_stats(&mut self, queue: &mut Queue, mem: &Memory) -> Result<bool, VirtioError> {
        let mut used = false;
        while let Some(chain) = queue.iter(mem).ok().and_then(|mut it| it.next()) {
            let head = chain.head_index();
            check_chain(STATS, &chain, mem)?;
            let mut r = Reader::new(mem, chain).map_err(|e| VirtioError::BadChain { queue: STATS, head, reason: e.to_string() })?;
            let mut stats = Vec::new();
            let mut b = [0u8; 10];
            while stats.len() < 64 && r.read_exact(&mut b).is_ok() {
                let mut v = [0u8; 8];
                v.copy_from_slice(&b[2..]);
                stats.push((u16::from_le_bytes([b[0], b[1]]), u64::from_le_bytes(v)));
            }
            if let Ok(mut s) = self.ctl.stats.lock() {
                *s = stats;
            }
            // Hold the newest buffer (the host returns it to ask for fresh numbers); a second
            // one while holding means the driver gave up on the first: return that one.
            if let Some(old) = self.stats_head.replace(head) {
                queue.add_used(mem, old, 0).map_err(|e| VirtioError::BadRing(STATS, e.to_string()))?;
                used = true;
            }
        }
        Ok(used)
    }
}

impl VirtioDevice for Balloon {
    fn device_type(&self) -> u16 {
        5
    }
    fn class_code(&self) -> u32 {
        0x00_ff00 << 8
    }
    fn features(&self) -> u64 {
        F_VERSION_1 | F_INDIRECT_DESC | F_EVENT_IDX | F_RING_RESET | F_STATS_VQ | F_PAGE_POISON
    }
    fn queue_sizes(&self) -> Vec<u16> {
        vec![128; 3]
    }
    fn read_config(&self, off: u64, data: &mut [u8]) {
        let mut c = [0u8; 16];
        c[0..4].copy_from_slice(&self.ctl.target_pages.load(Ordering::SeqCst).to_le_bytes());
        c[4..8].copy_from_slice(&self.ctl.actual_pages.load(Ordering::SeqCst).to_le_bytes());
        c[12..16].copy_from_slice(&self.poison.to_le_bytes());
        for (i, d) in data.iter_mut().enumerate() {
            *d = usize::try_from(off).ok().and_then(|o| c.get(o + i)).copied().unwrap_or(0);
        }
    }
    fn write_config(&mut self, off: u64, data: &[u8]) {
        let mut b = [0u8; 4];
        let n = data.len().min(4);
        b[..n].copy_from_slice(&data[..n]);
        match (off, n) {
            (4, 4) => self.ctl.set_actual(u32::from_le_bytes(b)),
            (12, 4) => self.poison = u32::from_le_bytes(b),
            _ => {}
        }
    }
    fn config_changed(&mut self) -> bool {
        self.ctl.changed.swap(false, Ordering::SeqCst)
    }
    fn reset(&mut self) {
        self.poison = 0;
        self.stats_head = None;
    }
    fn queue_reset(&mut self, q: usize) {
        if q == STATS {
            self.stats_head = None;
        }
    }
    fn process(&mut self, q: usize, queues: &mut [Queue], mem: &Memory) -> Result<u64, VirtioError> {
        let Some(queue) = queues.get_mut(q) else { return Ok(0) };
        let used = match q {
            INFLATE | DEFLATE => self.pfns(q, queue, mem)?,
            STATS => self.take_stats(queue, mem)?,
            _ => false,
        };
        Ok(if used { 1 << q } else { 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::Bytes;

    /// A one-descriptor chain `addr+len` made available on a 16-entry queue at 0x1000.
    fn queue_with(mem: &Memory, addr: u64, len: u32) -> Queue {
        let mut q = Queue::new(16).expect("queue");
        q.set_desc_table_address(Some(0x1000), Some(0));
        q.set_avail_ring_address(Some(0x2000), Some(0));
        q.set_used_ring_address(Some(0x3000), Some(0));
        q.set_ready(true);
        mem.write_obj(addr, GuestAddress(0x1000)).expect("desc addr");
        mem.write_obj(len, GuestAddress(0x1008)).expect("desc len");
        mem.write_obj(0u16, GuestAddress(0x2004)).expect("avail ring");
        mem.write_obj(1u16, GuestAddress(0x2002)).expect("avail idx");
        q
    }

    #[test]
    fn stats_are_parsed_and_the_buffer_held() {
        let mem = Memory::from_ranges(&[(GuestAddress(0), 0x10000)]).expect("memory");
        for (i, (tag, val)) in [(0u16, 0x1111u64), (4, 0x4444)].into_iter().enumerate() {
            mem.write_obj(tag, GuestAddress(0x4000 + 10 * i as u64)).expect("tag");
            mem.write_obj(val, GuestAddress(0x4002 + 10 * i as u64)).expect("val");
        }
        let ctl = BalloonCtl::new(0x10000);
        let mut b = Balloon::new(ctl.clone());
        let mut queues = vec![Queue::new(16).expect("q"), Queue::new(16).expect("q"), queue_with(&mem, 0x4000, 20)];
        assert_eq!(b.process(STATS, &mut queues, &mem).expect("process"), 0, "the buffer is held, not used");
        assert_eq!(ctl.stats(), vec![(0, 0x1111), (4, 0x4444)]);
    }

    #[test]
    fn pfns_outside_ram_are_ignored_and_actual_follows_the_driver() {
        let mem = Memory::from_ranges(&[(GuestAddress(0), 0x10000)]).expect("memory");
        mem.write_obj(0xffff_fff0u32, GuestAddress(0x4000)).expect("pfn");
        mem.write_obj(0x8u32, GuestAddress(0x4004)).expect("pfn");
        mem.write_obj(0xabcdu32, GuestAddress(0x8000)).expect("page");
        let ctl = BalloonCtl::new(0x10000);
        let mut b = Balloon::new(ctl.clone());
        let mut queues = vec![queue_with(&mem, 0x4000, 8)];
        assert_eq!(b.process(INFLATE, &mut queues, &mem).expect("process"), 1);
        assert_eq!(mem.read_obj::<u32>(GuestAddress(0x8000)).expect("read"), 0, "the inflated page was dropped");
        b.write_config(4, &2u32.to_le_bytes());
        assert_eq!(ctl.actual_bytes(), 0x10000 - 2 * 4096);
        ctl.set_target(0x10000 - 4096);
        let mut c = [0u8; 4];
        b.read_config(0, &mut c);
        assert_eq!(u32::from_le_bytes(c), 1);
        assert!(b.config_changed() && !b.config_changed());
    }
}
