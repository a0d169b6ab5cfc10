//! virtio-rng: fills guest buffers from the host's getrandom(2).
use super::{check_chain, VirtioDevice, VirtioError, F_INDIRECT_DESC, F_VERSION_1};
use crate::memory::Memory;
use std::io::Write;
use virtio_queue::{Queue, QueueOwnedT, QueueT, Writer};

/// The entropy device.
#[derive(Default)]
pub struct Rng;

impl VirtioDevice for Rng {
    fn device_type(&self) -> u16 {
        4
    }
    fn class_code(&self) -> u32 {
        0x00_ff00 << 8
    }
    fn features(&self) -> u64 {
        F_VERSION_1 | F_INDIRECT_DESC
    }
    fn queue_sizes(&self) -> Vec<u16> {
        vec![256]
    }
    fn read_config(&self, _off: u64, data: &mut [u8]) {
        data.fill(0)
    }
    fn process(&mut self, q: usize, queues: &mut [Queue], mem: &Memory) -> Result<u64, VirtioError> {
        let Some(queue) = queues.get_mut(q) else { return Ok(0) };
        let mut used = 0;
        while let Some(chain) = queue.iter(mem).ok().and_then(|mut it| it.next()) {
            let head = chain.head_index();
            check_chain(q, &chain, mem)?;
            let mut w = Writer::new(mem, chain).map_err(|e| VirtioError::BadChain { queue: q, head, reason: e.to_string() })?;
            let n = w.available_bytes().min(64 * 1024);
            let mut buf = vec![0u8; n];
            let mut filled = 0;
            while filled < n {
                // SAFETY: the pointer/length pair describes the unfilled tail of `buf`.
                let r = unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), n - filled, 0) };
                if r <= 0 {
                    break;
                }
                filled += r as usize;
            }
            let _ = w.write_all(&buf[..filled]);
            queue.add_used(mem, head, filled as u32).map_err(|e| VirtioError::BadRing(q, e.to_string()))?;
            used |= 1 << q;
        }
        Ok(used)
    }
}
