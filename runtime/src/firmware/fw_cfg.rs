//! QEMU's fw_cfg device as the x86 machines present it: the selector at I/O port 0x510, the
//! data byte at 0x511 and the DMA address register at 0x514 (big-endian, the low half written
//! last starts the transfer). Items are the legacy keys SeaBIOS reads plus named files listed
//! in the directory at key 0x19 (QEMU's `docs/specs/fw_cfg.rst`).
use vm_memory::{Bytes, GuestAddress, GuestMemory};

/// Selector port.
pub const PORT_SELECTOR: u16 = 0x510;
/// Data port (byte reads).
pub const PORT_DATA: u16 = 0x511;
/// DMA address register: high half at 0x514, low half at 0x518.
pub const PORT_DMA: u16 = 0x514;

/// "QEMU".
pub const KEY_SIGNATURE: u16 = 0x00;
/// Interface version bits: 1 traditional, 2 DMA.
pub const KEY_ID: u16 = 0x01;
/// The machine's UUID (16 bytes, in the string's order).
pub const KEY_UUID: u16 = 0x02;
/// RAM size (u64).
pub const KEY_RAM_SIZE: u16 = 0x03;
/// No graphics (u16).
pub const KEY_NOGRAPHIC: u16 = 0x04;
/// vCPUs at boot (u16).
pub const KEY_NB_CPUS: u16 = 0x05;
/// Boot menu (u16, 0: off).
pub const KEY_BOOT_MENU: u16 = 0x0e;
/// Most vCPUs (u16).
pub const KEY_MAX_CPUS: u16 = 0x0f;
/// The file directory.
pub const KEY_FILE_DIR: u16 = 0x19;
/// First key given to a file.
pub const FIRST_FILE_KEY: u16 = 0x20;
/// x86: legacy ACPI tables (u16 count).
pub const KEY_ACPI_TABLES: u16 = 0x8000;
/// x86: the IRQ0 → GSI2 override is allowed (u32).
pub const KEY_IRQ0_OVERRIDE: u16 = 0x8002;
/// x86: NUMA data (u64 node count, then a u64 per APIC ID).
pub const KEY_NUMA: u16 = 0x8005;

const DMA_ERROR: u32 = 0x01;
const DMA_READ: u32 = 0x02;
const DMA_SKIP: u32 = 0x04;
const DMA_SELECT: u32 = 0x08;
const DMA_WRITE: u32 = 0x10;
/// Selector bit asking for writes (QEMU ignores it for reads; no item is writable here).
const WRITE_CHANNEL: u16 = 0x4000;
/// Longest file name, NUL included.
pub const NAME_LEN: usize = 56;
/// The DMA register reads back this signature ("QEMU CFG", big-endian).
const DMA_SIGNATURE: &[u8; 8] = b"QEMU CFG";

/// A file that cannot be added.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FwCfgError {
    /// The name is empty, too long or not printable ASCII.
    #[error("invalid fw_cfg file name {0:?}: must be 1..=55 printable ASCII bytes")]
    Name(String),
    /// The name is taken.
    #[error("invalid fw_cfg file name {0:?}: already present")]
    Duplicate(String),
    /// More than fit the key space.
    #[error("invalid fw_cfg file {0:?}: too many files")]
    Full(String),
    /// Items are limited to 4 GiB (the directory's size field).
    #[error("invalid fw_cfg file {0:?}: {1} bytes is over 4 GiB")]
    Size(String, usize),
}

/// The device: items, directory, and the current selection.
#[derive(Default)]
pub struct FwCfg {
    items: std::collections::BTreeMap<u16, Vec<u8>>,
    files: Vec<(String, u16)>,
    selected: u16,
    offset: u64,
    dma_high: u32,
}

impl FwCfg {
    /// A device with the signature and the ID (traditional + DMA) items.
    pub fn new() -> Self {
        let mut f = FwCfg::default();
        f.set(KEY_SIGNATURE, b"QEMU".to_vec());
        f.set(KEY_ID, 3u32.to_le_bytes().to_vec());
        f.rebuild_dir();
        f
    }

    /// Sets a legacy (numbered) item.
    pub fn set(&mut self, key: u16, data: Vec<u8>) {
        self.items.insert(key & !WRITE_CHANNEL, data);
    }

    /// Adds the file `name`; the directory is kept sorted by name, as QEMU's.
    pub fn add_file(&mut self, name: &str, data: Vec<u8>) -> Result<(), FwCfgError> {
        if name.is_empty() || name.len() >= NAME_LEN || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(FwCfgError::Name(name.escape_debug().to_string()));
        }
        if self.files.iter().any(|(n, _)| n == name) {
            return Err(FwCfgError::Duplicate(name.to_string()));
        }
        if u32::try_from(data.len()).is_err() {
            return Err(FwCfgError::Size(name.to_string(), data.len()));
        }
        let key = FIRST_FILE_KEY + u16::try_from(self.files.len()).map_err(|_| FwCfgError::Full(name.to_string()))?;
        if key >= 0x4000 {
            return Err(FwCfgError::Full(name.to_string()));
        }
        self.files.push((name.to_string(), key));
        self.items.insert(key, data);
        self.rebuild_dir();
        Ok(())
    }

    /// The bytes of a file, if present.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        let (_, key) = self.files.iter().find(|(n, _)| n == name)?;
        self.items.get(key).map(|v| v.as_slice())
    }

    fn rebuild_dir(&mut self) {
        let mut files = self.files.clone();
        files.sort();
        let mut dir = (files.len() as u32).to_be_bytes().to_vec();
        for (name, key) in &files {
            let size = self.items.get(key).map_or(0, |v| v.len()) as u32;
            dir.extend_from_slice(&size.to_be_bytes());
            dir.extend_from_slice(&key.to_be_bytes());
            dir.extend_from_slice(&[0, 0]);
            let mut n = [0u8; NAME_LEN];
            n[..name.len()].copy_from_slice(name.as_bytes());
            dir.extend_from_slice(&n);
        }
        self.items.insert(KEY_FILE_DIR, dir);
    }

    fn select(&mut self, key: u16) {
        self.selected = key & !WRITE_CHANNEL;
        self.offset = 0;
    }

    fn current(&self) -> &[u8] {
        self.items.get(&self.selected).map_or(&[], |v| v.as_slice())
    }

    /// Whether `port` belongs to the device.
    pub fn decodes(port: u16) -> bool {
        (PORT_SELECTOR..PORT_DMA + 8).contains(&port) && port != PORT_SELECTOR + 2 && port != PORT_SELECTOR + 3
    }

    /// A port read: data bytes (zero past the end), or the DMA signature.
    pub fn read(&mut self, port: u16, data: &mut [u8]) {
        data.fill(0);
        match port {
            PORT_DATA => {
                for b in data.iter_mut() {
                    *b = self.current().get(self.offset as usize).copied().unwrap_or(0);
                    if (self.offset as usize) < self.current().len() {
                        self.offset += 1;
                    }
                }
            }
            p if (PORT_DMA..PORT_DMA + 8).contains(&p) => {
                let at = usize::from(p - PORT_DMA);
                for (i, b) in data.iter_mut().enumerate() {
                    *b = DMA_SIGNATURE.get(at + i).copied().unwrap_or(0);
                }
            }
            _ => {}
        }
    }

    /// A port write: selects an item, or starts a DMA transfer whose descriptor is in `mem`.
    pub fn write<M: GuestMemory>(&mut self, port: u16, data: &[u8], mem: &M) {
        match (port, data.len()) {
            (PORT_SELECTOR, 2) => self.select(u16::from_le_bytes([data[0], data[1]])),
            (PORT_SELECTOR, 1) => self.select(u16::from(data[0])),
            (PORT_DMA, 4) => self.dma_high = u32::from_be_bytes([data[0], data[1], data[2], data[3]]),
            (p, 4) if p == PORT_DMA + 4 => {
                let low = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                let addr = (u64::from(self.dma_high) << 32) | u64::from(low);
                self.dma_high = 0;
                self.dma(addr, mem);
            }
            _ => {} // data-port writes are ignored, as in QEMU since 2.4
        }
    }

    /// Runs the DMA descriptor at `addr` (control, length, address; big-endian) and writes
    /// its control word back: 0 when done, the error bit otherwise.
    pub fn dma<M: GuestMemory>(&mut self, addr: u64, mem: &M) {
        let mut desc = [0u8; 16];
        if mem.read_slice(&mut desc, GuestAddress(addr)).is_err() {
            return;
        }
        let be32 = |o: usize| u32::from_be_bytes([desc[o], desc[o + 1], desc[o + 2], desc[o + 3]]);
        let control = be32(0);
        let length = be32(4);
        let mut to = u64::from_be_bytes([desc[8], desc[9], desc[10], desc[11], desc[12], desc[13], desc[14], desc[15]]);
        if control & DMA_SELECT != 0 {
            self.select((control >> 16) as u16);
        }
        let mut status = 0;
        if control & DMA_WRITE != 0 {
            status = DMA_ERROR; // no item is writable
        } else if control & DMA_READ != 0 {
            let mut left = u64::from(length);
            let mut zeros = [0u8; 4096];
            while left > 0 {
                let have = self.current().len() as u64;
                let n;
                let r = if self.offset < have {
                    n = left.min(have - self.offset);
                    let o = self.offset as usize;
                    let chunk = &self.current()[o..o + n as usize];
                    mem.write_slice(chunk, GuestAddress(to)).map(|_| ())
                } else {
                    n = left.min(zeros.len() as u64);
                    mem.write_slice(&zeros[..n as usize], GuestAddress(to)).map(|_| ())
                };
                zeros.fill(0);
                if r.is_err() {
                    status = DMA_ERROR;
                    break;
                }
                self.offset = (self.offset + n).min(have.max(self.offset));
                to = to.wrapping_add(n);
                left -= n;
            }
        } else if control & DMA_SKIP != 0 {
            self.offset = (self.offset + u64::from(length)).min(self.current().len() as u64);
        }
        let _ = mem.write_slice(&status.to_be_bytes(), GuestAddress(addr));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::GuestMemoryMmap;

    fn mem() -> GuestMemoryMmap<()> {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10000)]).expect("memory")
    }

    fn read_item(f: &mut FwCfg, key: u16, n: usize) -> Vec<u8> {
        f.write(PORT_SELECTOR, &key.to_le_bytes(), &mem());
        let mut out = vec![0u8; n];
        for b in out.iter_mut() {
            let mut d = [0u8];
            f.read(PORT_DATA, &mut d);
            *b = d[0];
        }
        out
    }

    #[test]
    fn signature_id_and_directory_over_the_io_port() {
        let mut f = FwCfg::new();
        f.add_file("etc/b", vec![1, 2, 3]).expect("add");
        f.add_file("etc/a", vec![9]).expect("add");
        assert_eq!(read_item(&mut f, KEY_SIGNATURE, 5), b"QEMU\0");
        assert_eq!(read_item(&mut f, KEY_ID, 4), [3, 0, 0, 0]);
        let dir = read_item(&mut f, KEY_FILE_DIR, 4 + 2 * 64);
        assert_eq!(&dir[..4], &[0, 0, 0, 2]);
        // sorted by name: etc/a (key 0x21, 1 byte) first
        assert_eq!(&dir[4..12], &[0, 0, 0, 1, 0, 0x21, 0, 0]);
        assert_eq!(&dir[12..17], b"etc/a");
        assert_eq!(&dir[68..76], &[0, 0, 0, 3, 0, 0x20, 0, 0]);
        assert_eq!(f.add_file("etc/a", vec![]), Err(FwCfgError::Duplicate("etc/a".into())));
        assert!(matches!(f.add_file("bad name", vec![]), Err(FwCfgError::Name(_))));
        let mut sig = [0u8; 4];
        f.read(PORT_DMA, &mut sig);
        assert_eq!(&sig, b"QEMU");
    }

    #[test]
    fn dma_select_read_past_the_end_and_skip() {
        let m = mem();
        let mut f = FwCfg::new();
        f.add_file("etc/x", (1..=10).collect()).expect("add");
        m.write_slice(&[0xaa; 32], GuestAddress(0x2000)).expect("fill");
        // select 0x20 + read 12 bytes to 0x2000: 10 bytes then 2 zeros
        let mut d = Vec::new();
        d.extend_from_slice(&((0x20u32 << 16) | DMA_SELECT | DMA_READ).to_be_bytes());
        d.extend_from_slice(&12u32.to_be_bytes());
        d.extend_from_slice(&0x2000u64.to_be_bytes());
        m.write_slice(&d, GuestAddress(0x1000)).expect("desc");
        f.write(PORT_DMA, &0u32.to_be_bytes(), &m);
        f.write(PORT_DMA + 4, &0x1000u32.to_be_bytes(), &m);
        let mut got = [0u8; 13];
        m.read_slice(&mut got, GuestAddress(0x2000)).expect("read");
        assert_eq!(got, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 0, 0xaa]);
        let mut ctl = [0u8; 4];
        m.read_slice(&mut ctl, GuestAddress(0x1000)).expect("ctl");
        assert_eq!(ctl, [0, 0, 0, 0]);
        // skip 3 after selecting again, then the I/O port continues at offset 3
        d[..4].copy_from_slice(&((0x20u32 << 16) | DMA_SELECT | DMA_SKIP).to_be_bytes());
        d[4..8].copy_from_slice(&3u32.to_be_bytes());
        m.write_slice(&d, GuestAddress(0x1000)).expect("desc");
        f.dma(0x1000, &m);
        let mut b = [0u8];
        f.read(PORT_DATA, &mut b);
        assert_eq!(b, [4]);
        // a write, or a read to outside guest memory, reports the error bit
        d[..4].copy_from_slice(&DMA_WRITE.to_be_bytes());
        m.write_slice(&d, GuestAddress(0x1000)).expect("desc");
        f.dma(0x1000, &m);
        m.read_slice(&mut ctl, GuestAddress(0x1000)).expect("ctl");
        assert_eq!(ctl, DMA_ERROR.to_be_bytes());
        d[..4].copy_from_slice(&DMA_READ.to_be_bytes());
        d[8..].copy_from_slice(&0xfff0u64.to_be_bytes());
        d[4..8].copy_from_slice(&0x100u32.to_be_bytes());
        m.write_slice(&d, GuestAddress(0x1000)).expect("desc");
        f.dma(0x1000, &m);
        m.read_slice(&mut ctl, GuestAddress(0x1000)).expect("ctl");
        assert_eq!(ctl, DMA_ERROR.to_be_bytes());
    }
}
