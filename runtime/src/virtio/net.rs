//! virtio-net with a tap backend (frames both ways, 12-byte virtio-net headers passed through)
//! or a null backend: the guest binds the driver and sees the link up with the spec's MAC;
//! transmitted frames are counted and dropped, nothing is received.
use super::tap::Tap;
use super::{check_chain, VirtioDevice, VirtioError, F_INDIRECT_DESC, F_VERSION_1};
use crate::memory::Memory;
use std::io::{Read, Write};
use virtio_queue::{Queue, QueueOwnedT, QueueT, Reader, Writer};

const F_MAC: u64 = 1 << 5;
const F_STATUS: u64 = 1 << 16;

/// A NIC.
pub struct Net {
    mac: [u8; 6],
    tap: Option<Tap>,
    buf: Vec<u8>,
    /// Frames the guest transmitted.
    pub tx_frames: u64,
    /// Frames delivered to the guest.
    pub rx_frames: u64,
    /// The guest's virtio-net header: 12 bytes (virtio 1.0), 10 for a legacy driver
    /// without VIRTIO_NET_F_MRG_RXBUF. The tap always carries 12.
    hdr_len: usize,
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
        Net { mac, tap: None, buf: Vec::new(), tx_frames: 0, rx_frames: 0, hdr_len: 12 }
    }
    /// A NIC with `mac` connected to `tap`.
    pub fn with_tap(mac: [u8; 6], tap: Tap) -> Self {
        Net { tap: Some(tap), ..Net::new(mac) }
    }

    /// Moves waiting tap frames into posted receive buffers (queue 0).
    fn receive(&mut self, queues: &mut [Queue], mem: &Memory) -> Result<u64, VirtioError> {
        let (Some(tap), Some(queue)) = (self.tap.as_ref(), queues.get_mut(0)) else { return Ok(0) };
        if !queue.ready() {
            return Ok(0);
        }
        self.buf.resize(65562, 0);
        let mut used = 0;
        while let Some(chain) = queue.iter(mem).ok().and_then(|mut it| it.next()) {
            let head = chain.head_index();
            check_chain(0, &chain, mem)?;
            let n = match tap.recv(&mut self.buf) {
                Ok(Some(n)) if n >= 12 => n,
                _ => {
                    queue.go_to_previous_position();
                    break;
                }
            };
            self.buf[10..12].copy_from_slice(&1u16.to_le_bytes()); // num_buffers
            if self.hdr_len == 10 {
                self.buf.copy_within(12..n, 10); // the legacy header has no num_buffers
            }
            let n = n - (12 - self.hdr_len);
            let mut w = Writer::new(mem, chain).map_err(|e| VirtioError::BadChain { queue: 0, head, reason: e.to_string() })?;
            let len = n.min(w.available_bytes());
            let _ = w.write_all(&self.buf[..len]);
            queue.add_used(mem, head, len as u32).map_err(|e| VirtioError::BadRing(0, e.to_string()))?;
            self.rx_frames += 1;
            used = 1;
        }
        Ok(used)
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
        if q == 0 {
            return self.receive(queues, mem); // new receive buffers: deliver waiting frames
        }
        if q != 1 {
            return Ok(0);
        }
        let Some(queue) = queues.get_mut(q) else { return Ok(0) };
        let mut used = 0;
        while let Some(chain) = queue.iter(mem).ok().and_then(|mut it| it.next()) {
            let head = chain.head_index();
            check_chain(q, &chain, mem)?;
            self.tx_frames += 1;
            if let Some(tap) = &self.tap {
                let mut r = Reader::new(mem, chain).map_err(|e| VirtioError::BadChain { queue: q, head, reason: e.to_string() })?;
                let mut frame = vec![0u8; r.available_bytes().min(65562)];
                let mut n = r.read(&mut frame).unwrap_or(0);
                if self.hdr_len == 10 && n > 10 {
                    frame.splice(10..10, [0, 0]); // num_buffers, which the tap's header has
                    n += 2;
                }
                if n > 12 {
                    if let Err(e) = tap.send(&frame[..n]) {
                        super::log(&tap.name, &format!("transmit failed: {e}"));
                    }
                }
            }
            queue.add_used(mem, head, 0).map_err(|e| VirtioError::BadRing(q, e.to_string()))?;
            used |= 1 << q;
        }
        Ok(used)
    }
    fn poll_fd(&self) -> Option<std::os::unix::io::RawFd> {
        self.tap.as_ref().map(Tap::fd)
    }
    fn negotiated(&mut self, features: u64) {
        self.hdr_len = if features & F_VERSION_1 != 0 { 12 } else { 10 };
    }
    fn poll(&mut self, queues: &mut [Queue], mem: &Memory) -> Result<u64, VirtioError> {
        self.receive(queues, mem)
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({"tx_frames": self.tx_frames, "rx_frames": self.rx_frames,
            "backend": self.tap.as_ref().map_or("null".to_string(), |t| format!("tap:{}", t.name))})
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
