//! The legacy (virtio 0.9.5) half of a transitional device, as QEMU's
//! `virtio-*-pci-transitional` presents it: I/O BAR 0 holding the legacy register block —
//! host features 0x00, guest features 0x04, queue PFN 0x08, queue size 0x0c, queue select
//! 0x0e, queue notify 0x10, status 0x12, ISR 0x13, and while MSI-X is enabled the config
//! vector 0x14 and queue vector 0x16 — followed by the device config (at 0x18 with MSI-X
//! enabled, else 0x14). Queues use the legacy vring layout: descriptors at PFN * 4096, the
//! available ring right after them, the used ring at the next 4096-byte boundary.
use super::super::irq::NO_VECTOR;
use super::super::{VirtioError, F_EVENT_IDX};
use super::VirtioPci;
use virtio_queue::QueueT;

/// The legacy vring alignment (VIRTIO_PCI_VRING_ALIGN).
pub const VRING_ALIGN: u64 = 4096;
/// The queue PFN shift (VIRTIO_PCI_QUEUE_ADDR_SHIFT).
const PFN_SHIFT: u32 = 12;

/// The device config length QEMU gives each device type's legacy block (QEMU 10 defaults):
/// net 8 (mac, status), block 60, console 12, entropy 0, balloon 16, SCSI 36.
pub fn config_len(device_type: u16) -> u64 {
    match device_type {
        1 => 8,
        2 => 60,
        3 => 12,
        5 => 16,
        8 => 36,
        _ => 0,
    }
}

/// The I/O BAR size: the register block (24 bytes with an MSI-X capability, else 20) plus
/// the device config, rounded up to a power of two (QEMU's `pow2ceil`).
pub fn bar_size(device_type: u16, msix: bool) -> u64 {
    let regs = if msix { 24 } else { 20 };
    (regs + config_len(device_type)).next_power_of_two()
}

/// (descriptor table, available ring, used ring) of a legacy queue of `size` at `pfn`.
pub fn vring_addrs(pfn: u32, size: u16) -> (u64, u64, u64) {
    let desc = u64::from(pfn) << PFN_SHIFT;
    let avail = desc + 16 * u64::from(size);
    // flags, idx, ring[size], used_event
    let used = (avail + 6 + 2 * u64::from(size)).div_ceil(VRING_ALIGN) * VRING_ALIGN;
    (desc, avail, used)
}

impl VirtioPci {
    /// Where the device config starts in the legacy block.
    fn legacy_config_off(&self) -> u64 {
        if self.irq.lock().enabled {
            0x18
        } else {
            0x14
        }
    }

    fn legacy_header(&self) -> [u8; 0x18] {
        let mut b = [0u8; 0x18];
        let q = self.queues.get(usize::from(self.qsel));
        let st = self.irq.lock();
        b[0..4].copy_from_slice(&(self.dev.features() as u32).to_le_bytes());
        b[4..8].copy_from_slice(&(self.driver_features as u32).to_le_bytes());
        if let Some(q) = q {
            let pfn = if q.ready() { (q.desc_table() >> PFN_SHIFT) as u32 } else { 0 };
            b[8..12].copy_from_slice(&pfn.to_le_bytes());
            b[12..14].copy_from_slice(&q.max_size().to_le_bytes());
        }
        b[14..16].copy_from_slice(&self.qsel.to_le_bytes());
        b[18] = self.status | if st.needs_reset { super::STATUS_NEEDS_RESET } else { 0 };
        b[19] = st.isr;
        b[20..22].copy_from_slice(&st.config_vector.to_le_bytes());
        b[22..24].copy_from_slice(&st.vectors.get(usize::from(self.qsel)).copied().unwrap_or(NO_VECTOR).to_le_bytes());
        b
    }

    /// A read of I/O BAR 0.
    pub(super) fn legacy_read(&mut self, off: u64, data: &mut [u8]) {
        let cfg = self.legacy_config_off();
        if off >= cfg {
            self.dev.read_config(off - cfg, data);
            return;
        }
        let h = self.legacy_header();
        for (i, d) in data.iter_mut().enumerate() {
            *d = usize::try_from(off).ok().and_then(|o| h.get(o + i)).copied().unwrap_or(0);
        }
        // Reading the ISR acknowledges it and lowers INTx.
        if (off..off + data.len() as u64).contains(&0x13) {
            let mut st = self.irq.lock();
            st.isr = 0;
            self.irq.update_intx(&mut st);
        }
    }

    /// A write to I/O BAR 0.
    pub(super) fn legacy_write(&mut self, off: u64, data: &[u8]) {
        let cfg = self.legacy_config_off();
        if off >= cfg {
            self.dev.write_config(off - cfg, data);
            return;
        }
        let mut b = [0u8; 4];
        let n = data.len().min(4);
        b[..n].copy_from_slice(&data[..n]);
        let v = u32::from_le_bytes(b);
        let qi = usize::from(self.qsel);
        match off {
            0x04 => {
                // The legacy interface has 32 feature bits and no FEATURES_OK handshake.
                self.driver_features = u64::from(v) & self.dev.features();
                let event_idx = self.driver_features & F_EVENT_IDX != 0;
                for q in &mut self.queues {
                    q.set_event_idx(event_idx);
                }
            }
            0x08 => self.legacy_set_pfn(qi, v),
            0x0e => self.qsel = v as u16,
            0x10 => self.legacy_notify(usize::from(v as u16)),
            0x12 => self.set_status(v as u8),
            0x14 => self.irq.lock().config_vector = v as u16,
            0x16 => {
                if let Some(x) = self.irq.lock().vectors.get_mut(qi) {
                    *x = v as u16;
                }
            }
            _ => {}
        }
    }

    fn legacy_set_pfn(&mut self, qi: usize, pfn: u32) {
        let Some(q) = self.queues.get_mut(qi) else { return };
        if pfn == 0 {
            q.reset();
            q.set_event_idx(self.driver_features & F_EVENT_IDX != 0);
            return;
        }
        let (desc, avail, used) = vring_addrs(pfn, q.max_size());
        q.set_size(q.max_size());
        q.set_desc_table_address(Some(desc as u32), Some((desc >> 32) as u32));
        q.set_avail_ring_address(Some(avail as u32), Some((avail >> 32) as u32));
        q.set_used_ring_address(Some(used as u32), Some((used >> 32) as u32));
        q.set_ready(true);
        if !q.is_valid(&self.mem) {
            q.set_ready(false);
            self.fail(VirtioError::BadRing(qi, format!("legacy queue PFN {pfn:#x} lies outside guest RAM")));
        }
    }

    /// A legacy kick. Old drivers (Linux before 3.x) use their queues during probe, before
    /// DRIVER_OK; QEMU serves those, and so does this, on the vCPU thread.
    fn legacy_notify(&mut self, q: usize) {
        if self.status & 4 == 0 && self.kicks.is_none() && !self.irq.needs_reset() && self.queues.get(q).is_some_and(|x| x.ready()) {
            let r = self.dev.process(q, &mut self.queues, &self.mem);
            self.complete(r);
            return;
        }
        self.notify(q);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_qemu() {
        // QEMU 10, -machine pc-q35-7.2, query-pci of the transitional devices.
        assert_eq!(bar_size(1, true), 0x20);
        assert_eq!(bar_size(2, true), 0x80);
        assert_eq!(bar_size(3, true), 0x40);
        assert_eq!(bar_size(4, true), 0x20);
        assert_eq!(bar_size(5, false), 0x40);
        assert_eq!(bar_size(8, true), 0x40);
    }

    #[test]
    fn vring_layout() {
        // Linux vring_size(256, 4096): 4096 + 512 + 6 rounded up, then the used ring.
        let (d, a, u) = vring_addrs(0x100, 256);
        assert_eq!((d, a, u), (0x100000, 0x101000, 0x102000));
        let (d, a, u) = vring_addrs(1, 128);
        assert_eq!((d, a, u), (0x1000, 0x1800, 0x2000));
    }
}
