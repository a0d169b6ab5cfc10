//! A PCI function's configuration space: bytes, a write mask, BARs sized by their masks.

/// The kind of a BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// I/O ports.
    Io,
    /// 32-bit memory.
    Mem32,
    /// 32-bit prefetchable memory.
    Mem32Prefetch,
    /// 64-bit memory (takes two BAR slots), optionally prefetchable.
    Mem64 {
        /// Prefetchable flag.
        prefetch: bool,
    },
}

/// One implemented BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// Size (power of two).
    pub size: u64,
    /// Kind.
    pub kind: BarKind,
}

/// 256 bytes of conventional config space (the rest of the 4 KiB reads as zero).
#[derive(Clone)]
pub struct ConfigSpace {
    data: [u8; 256],
    wmask: [u8; 256],
    bars: [Option<Bar>; 6],
}

impl ConfigSpace {
    /// A type-0 (or `header_type`) header with IDs, class (code << 8 | revision) and subsystem.
    pub fn new(vendor: u16, device: u16, class_rev: u32, header_type: u8, subsystem: (u16, u16)) -> Self {
        let mut c = ConfigSpace { data: [0; 256], wmask: [0; 256], bars: [None; 6] };
        c.set16(0, vendor);
        c.set16(2, device);
        c.set32(8, class_rev);
        c.data[0x0e] = header_type;
        c.set16(0x2c, subsystem.0);
        c.set16(0x2e, subsystem.1);
        c.wmask16(4, 0x0547); // IO, MEM, MASTER, PARITY, SERR, INTX_DISABLE
        c.data[0x0c] = 0;
        c.wmask[0x0c] = 0xff; // cache line size
        c.wmask[0x3c] = 0xff; // interrupt line
        c
    }
    /// 256 zero bytes, nothing writable (extended config space).
    pub fn blank() -> Self {
        ConfigSpace { data: [0; 256], wmask: [0; 256], bars: [None; 6] }
    }
    /// Sets a byte.
    pub fn set8(&mut self, off: usize, v: u8) {
        if let Some(b) = self.data.get_mut(off) {
            *b = v;
        }
    }
    /// Sets a little-endian u16.
    pub fn set16(&mut self, off: usize, v: u16) {
        for (i, b) in v.to_le_bytes().into_iter().enumerate() {
            self.set8(off + i, b);
        }
    }
    /// Sets a little-endian u32.
    pub fn set32(&mut self, off: usize, v: u32) {
        for (i, b) in v.to_le_bytes().into_iter().enumerate() {
            self.set8(off + i, b);
        }
    }
    /// Makes bits of a u16 guest-writable.
    pub fn wmask16(&mut self, off: usize, m: u16) {
        for (i, b) in m.to_le_bytes().into_iter().enumerate() {
            if let Some(w) = self.wmask.get_mut(off + i) {
                *w = b;
            }
        }
    }
    /// Makes a range fully guest-writable (device-specific chipset registers).
    pub fn writable(&mut self, from: usize, to: usize) {
        for w in self.wmask.iter_mut().take(to).skip(from) {
            *w = 0xff;
        }
    }
    /// Reads a byte.
    pub fn get8(&self, off: usize) -> u8 {
        self.data.get(off).copied().unwrap_or(0)
    }
    /// Reads a u16.
    pub fn get16(&self, off: usize) -> u16 {
        u16::from_le_bytes([self.get8(off), self.get8(off + 1)])
    }
    /// Reads a u32.
    pub fn get32(&self, off: usize) -> u32 {
        u32::from_le_bytes([self.get8(off), self.get8(off + 1), self.get8(off + 2), self.get8(off + 3)])
    }
    /// Declares BAR `i`.
    pub fn add_bar(&mut self, i: usize, size: u64, kind: BarKind) {
        let off = 0x10 + 4 * i;
        let size = size.max(16).next_power_of_two();
        let (flags, mask) = match kind {
            BarKind::Io => (1u32, !(size as u32 - 1) & 0xffff_fffc),
            BarKind::Mem32 => (0, !(size as u32 - 1) & 0xffff_fff0),
            BarKind::Mem32Prefetch => (8, !(size as u32 - 1) & 0xffff_fff0),
            BarKind::Mem64 { prefetch } => (4 | if prefetch { 8 } else { 0 }, !(size - 1) as u32 & 0xffff_fff0),
        };
        self.set32(off, flags);
        for (k, b) in mask.to_le_bytes().into_iter().enumerate() {
            self.wmask[off + k] = b;
        }
        if let BarKind::Mem64 { .. } = kind {
            let hi = (!(size - 1) >> 32) as u32;
            for (k, b) in hi.to_le_bytes().into_iter().enumerate() {
                self.wmask[off + 4 + k] = b;
            }
        }
        if let Some(slot) = self.bars.get_mut(i) {
            *slot = Some(Bar { size, kind });
        }
    }
    /// Declares an expansion-ROM BAR of `size` bytes (sizing only: the ROM reads as absent).
    pub fn add_rom(&mut self, size: u32) {
        let mask = !(size.max(2048).next_power_of_two() - 1) | 1;
        for (k, b) in mask.to_le_bytes().into_iter().enumerate() {
            self.wmask[0x30 + k] = b;
        }
    }
    /// Adds a capability at `off` (id, next pointer, body) and which body bytes are writable.
    pub fn add_cap(&mut self, off: usize, id: u8, next: u8, body: &[u8], wmask: &[u8]) {
        self.set8(off, id);
        self.set8(off + 1, next);
        for (i, b) in body.iter().enumerate() {
            self.set8(off + 2 + i, *b);
        }
        for (i, m) in wmask.iter().enumerate() {
            if let Some(w) = self.wmask.get_mut(off + 2 + i) {
                *w = *m;
            }
        }
        self.data[6] |= 0x10; // status: capability list
    }
    /// Removes every capability (0x40..0x100 reads zero and is read-only again).
    pub fn clear_caps(&mut self) {
        for o in 0x40..0x100 {
            self.data[o] = 0;
            self.wmask[o] = 0;
        }
        self.data[0x34] = 0;
        self.data[6] &= !0x10;
    }
    /// Makes bits of a byte guest-writable.
    pub fn wmask8(&mut self, off: usize, m: u8) {
        if let Some(w) = self.wmask.get_mut(off) {
            *w = m;
        }
    }
    /// Sets the capability-list head (0x34).
    pub fn set_cap_head(&mut self, off: u8) {
        self.data[0x34] = off;
    }
    /// Reads `data.len()` bytes at `off` (beyond 256 bytes reads zero).
    pub fn read(&self, off: usize, data: &mut [u8]) {
        for (i, d) in data.iter_mut().enumerate() {
            *d = self.get8(off + i);
        }
    }
    /// Guest write: only bits in the write mask change.
    pub fn write(&mut self, off: usize, data: &[u8]) {
        for (i, v) in data.iter().enumerate() {
            let o = off + i;
            if o < 256 {
                self.data[o] = (self.data[o] & !self.wmask[o]) | (v & self.wmask[o]);
            }
        }
    }
    /// The BAR descriptions.
    pub fn bars(&self) -> &[Option<Bar>; 6] {
        &self.bars
    }
    /// Current address of BAR `i` if its decoding is enabled in the command register.
    pub fn bar_addr(&self, i: usize) -> Option<u64> {
        let bar = (*self.bars.get(i)?)?;
        let cmd = self.get16(4);
        let lo = u64::from(self.get32(0x10 + 4 * i));
        match bar.kind {
            BarKind::Io if cmd & 1 != 0 => Some(lo & !3),
            BarKind::Mem32 | BarKind::Mem32Prefetch if cmd & 2 != 0 => Some(lo & !0xf),
            BarKind::Mem64 { .. } if cmd & 2 != 0 => Some((u64::from(self.get32(0x14 + 4 * i)) << 32) | (lo & !0xf)),
            _ => None,
        }
        .filter(|a| *a != 0)
    }
    /// Programs BAR `i` (as firmware would) without enabling decoding.
    pub fn set_bar_addr(&mut self, i: usize, addr: u64) {
        let off = 0x10 + 4 * i;
        let flags = self.get32(off) & 0xf;
        self.set32(off, (addr as u32 & !0xf) | flags);
        if let Some(Some(Bar { kind: BarKind::Mem64 { .. }, .. })) = self.bars.get(i) {
            self.set32(off + 4, (addr >> 32) as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_sizing_reads_back_the_mask() {
        let mut c = ConfigSpace::new(0x1af4, 0x1042, 0x0100_0001, 0, (0x1af4, 0x1100));
        c.add_bar(1, 0x1000, BarKind::Mem32);
        c.add_bar(4, 0x4000, BarKind::Mem64 { prefetch: true });
        c.write(0x14, &[0xff; 4]);
        assert_eq!(c.get32(0x14), 0xffff_f000);
        c.write(0x20, &[0xff; 4]);
        c.write(0x24, &[0xff; 4]);
        assert_eq!(c.get32(0x20), 0xffff_c00c);
        assert_eq!(c.get32(0x24), 0xffff_ffff);
        c.write(0, &[0, 0]); // vendor ID is read-only
        assert_eq!(c.get16(0), 0x1af4);
        c.set_bar_addr(4, 0xc000_4000);
        assert_eq!(c.bar_addr(4), None);
        c.write(4, &[2, 0]);
        assert_eq!(c.bar_addr(4), Some(0xc000_4000));
    }
}
