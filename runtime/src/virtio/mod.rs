//! Modern (virtio 1.x, non-transitional) virtio-pci devices.
pub mod balloon;
pub mod blk;
pub mod channel;
pub mod console;
pub mod iov;
pub mod irq;
pub mod net;
pub mod pci;
pub mod rng;
pub mod scsi;
pub mod tap;

use crate::memory::Memory;
use virtio_queue::{DescriptorChain, Queue};

/// VIRTIO_F_VERSION_1.
pub const F_VERSION_1: u64 = 1 << 32;
/// VIRTIO_F_RING_INDIRECT_DESC.
pub const F_INDIRECT_DESC: u64 = 1 << 28;
/// VIRTIO_F_RING_EVENT_IDX (the transport arms it on every queue when negotiated).
pub const F_EVENT_IDX: u64 = 1 << 29;
/// VIRTIO_F_RING_RESET (per-queue reset through common config `queue_reset`).
pub const F_RING_RESET: u64 = 1 << 40;

/// A guest driver broke the virtio contract; the device must be reset.
#[derive(Debug, thiserror::Error)]
pub enum VirtioError {
    /// A descriptor chain that does not terminate, points outside RAM or is too short.
    #[error("queue {queue}: malformed descriptor chain at head {head}: {reason}")]
    BadChain {
        /// Queue index.
        queue: usize,
        /// Head descriptor index.
        head: u16,
        /// What is wrong.
        reason: String,
    },
    /// The available ring is inconsistent.
    #[error("queue {0}: invalid available ring: {1}")]
    BadRing(usize, String),
}

/// The device half of a virtio device; the transport owns queues and interrupts.
pub trait VirtioDevice: Send {
    /// Virtio device type (1 net, 2 blk, 3 console, 4 rng, 5 balloon, 8 SCSI).
    fn device_type(&self) -> u16;
    /// PCI class code (base, sub, prog-if) << 8.
    fn class_code(&self) -> u32;
    /// Offered feature bits.
    fn features(&self) -> u64;
    /// Maximum size of each queue.
    fn queue_sizes(&self) -> Vec<u16>;
    /// MSI-X vectors (QEMU's default per device type).
    fn msix_vectors(&self) -> u16 {
        2
    }
    /// Size of the expansion-ROM BAR QEMU gives this device (its boot ROM), 0 for none.
    fn rom_size(&self) -> u32 {
        0
    }
    /// Reads device-specific config.
    fn read_config(&self, off: u64, data: &mut [u8]);
    /// Writes device-specific config.
    fn write_config(&mut self, _off: u64, _data: &[u8]) {}
    /// Handles a notification on queue `q`; returns a bit mask of queues that got used entries.
    fn process(&mut self, q: usize, queues: &mut [Queue], mem: &Memory) -> Result<u64, VirtioError>;
    /// A host descriptor whose readability means `poll` has work (e.g. a tap device).
    fn poll_fd(&self) -> Option<std::os::unix::io::RawFd> {
        None
    }
    /// Host-side work (frames arriving from a backend); returns queues that got used entries.
    fn poll(&mut self, _queues: &mut [Queue], _mem: &Memory) -> Result<u64, VirtioError> {
        Ok(0)
    }
    /// DRIVER_OK. A device that serves its queues on its own I/O thread takes copies of the
    /// queues (their state at this point) and returns one notification eventfd per queue,
    /// which the transport wires to KVM ioeventfds; completions go through `irq`. `None`
    /// (the default) keeps [`process`](Self::process) on the notifying vCPU thread.
    fn activate(&mut self, _queues: &[Queue], _mem: &Memory, _irq: std::sync::Arc<irq::Irq>) -> Option<Vec<vmm_sys_util::eventfd::EventFd>> {
        None
    }
    /// Device reset (status 0); a device with an I/O thread stops and joins it here.
    fn reset(&mut self) {}
    /// The features the driver accepted, at DRIVER_OK (without VIRTIO_F_VERSION_1 the
    /// driver speaks the legacy interface of a transitional device).
    fn negotiated(&mut self, _features: u64) {}
    /// Queue `q` was reset alone (VIRTIO_F_RING_RESET): forget buffers held from it.
    fn queue_reset(&mut self, _q: usize) {}
    /// Whether the device config changed on the host side since the last call (the
    /// transport then raises a configuration-change interrupt).
    fn config_changed(&mut self) -> bool {
        false
    }
    /// Extra fields for `query-pci` / `query-block`.
    fn describe(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// Checks that the driver's avail index of queue `queue` runs at most a ring's worth ahead of
/// the device's: a larger gap is a broken ring, not work to do.
pub fn check_avail(queue: usize, q: &Queue, mem: &Memory) -> Result<(), VirtioError> {
    use std::num::Wrapping;
    use std::sync::atomic::Ordering;
    use virtio_queue::QueueT;
    let avail = q.avail_idx(mem, Ordering::Acquire).map_err(|e| VirtioError::BadRing(queue, e.to_string()))?;
    let ahead = (avail - Wrapping(q.next_avail())).0;
    if ahead > q.size() {
        return Err(VirtioError::BadRing(queue, format!("avail idx {} runs {ahead} entries ahead of a {}-entry ring", avail.0, q.size())));
    }
    Ok(())
}

/// Checks that a chain terminates inside its table and every buffer lies in guest RAM.
/// Returns (readable bytes, writable bytes).
pub fn check_chain(queue: usize, chain: &DescriptorChain<&Memory>, mem: &Memory) -> Result<(u64, u64), VirtioError> {
    use vm_memory::{GuestAddress, GuestMemoryBackend};
    let head = chain.head_index();
    let bad = |reason: String| VirtioError::BadChain { queue, head, reason };
    let (mut r, mut w, mut n, mut last_next) = (0u64, 0u64, 0usize, false);
    for d in chain.clone() {
        n += 1;
        if !mem.check_range(GuestAddress(d.addr().0), d.len() as usize) {
            return Err(bad(format!("buffer {:#x}+{:#x} is outside guest RAM", d.addr().0, d.len())));
        }
        if d.is_write_only() {
            w += u64::from(d.len());
        } else {
            r += u64::from(d.len());
        }
        last_next = d.has_next();
    }
    if n == 0 {
        return Err(bad("head descriptor unreadable or empty indirect table".into()));
    }
    if last_next {
        return Err(bad("chain does not terminate (loop, next index out of range or over 4 GiB)".into()));
    }
    Ok((r, w))
}

/// Logs a runtime event on stderr.
pub fn log(id: &str, msg: &str) {
    eprintln!("ferry-runtime: {id}: {msg}");
}
