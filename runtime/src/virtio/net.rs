//! virtio-net with a null backend: the guest binds the driver and sees the link up with the
//! spec's MAC; transmitted frames are counted and dropped, nothing is received.
use super::{check_chain, VirtioDevice, VirtioError, F_INDIRECT_DESC, F_VERSION_1};
use crate::memory::Memory;
use virtio_queue::{Queue, QueueOwnedT, QueueT};

const F_MAC: u64 = 1 << 5;
const F_STATUS: u64 = 1 << 16;

/// A NIC.
pub struct Net {
    mac: [u8; 6],
    /// Frames the guest transmitted.
    pub tx_frames: u64,
}

/// Parses "52:54:00:12:34:56".
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in mac.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

impl Net {
    /// A NIC with `mac`.
    pub fn new(mac: [u8; 6]) -> Self {
        Net { mac, tx_frames: 0 }
    }
}

impl VirtioDevice for Net {
    fn device_type(&self) -> u16 {
        1
    }
    fn class_code(&self) -> u32 {
        0x02_0000 << 8
    }
    fn features(&self) -> u64 {
        F_VERSION_1 | F_INDIRECT_DESC | F_MAC | F_STATUS
    }
    fn queue_sizes(&self) -> Vec<u16> {
        vec![256, 256]
    }
    fn rom_size(&self) -> u32 {
        0x40000 // QEMU's efi-virtio.rom BAR
    }
    fn msix_vectors(&self) -> u16 {
        4 // QEMU: 2 * queue pairs + 2
    }
    fn read_config(&self, off: u64, data: &mut [u8]) {
        let mut c = [0u8; 12];
        c[..6].copy_from_slice(&self.mac);
        c[6] = 1; // VIRTIO_NET_S_LINK_UP
        c[8] = 1; // max_virtqueue_pairs
        c[10..12].copy_from_slice(&1500u16.to_le_bytes());
        for (i, d) in data.iter_mut().enumerate() {
            *d = usize::try_from(off).ok().and_then(|o| c.get(o + i)).copied().unwrap_or(0);
        }
    }
    fn process(&mut self, q: usize, queues: &mut [Queue], mem: &Memory) -> Result<u64, VirtioError> {
        if q != 1 {
            return Ok(0); // rx buffers stay posted: the null backend never receives
        }
        let Some(queue) = queues.get_mut(q) else { return Ok(0) };
        let mut used = 0;
        while let Some(chain) = queue.iter(mem).ok().and_then(|mut it| it.next()) {
            let head = chain.head_index();
            check_chain(q, &chain, mem)?;
            self.tx_frames += 1;
            queue.add_used(mem, head, 0).map_err(|e| VirtioError::BadRing(q, e.to_string()))?;
            used |= 1 << q;
        }
        Ok(used)
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({"tx_frames": self.tx_frames})
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn macs() {
        assert_eq!(super::parse_mac("52:54:00:12:34:56"), Some([0x52, 0x54, 0, 0x12, 0x34, 0x56]));
        assert_eq!(super::parse_mac("52:54:00:12:34"), None);
        assert_eq!(super::parse_mac("52:54:00:12:34:56:78"), None);
        assert_eq!(super::parse_mac("5:54:00:12:34:56"), None);
    }
}
