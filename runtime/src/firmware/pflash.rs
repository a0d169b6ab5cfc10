//! The parallel flash OVMF boots from, as QEMU's pc and q35 machines present it
//! (`-drive if=pflash`): Intel/Sharp CFI command set (QEMU's `pflash_cfi01`), 4 KiB sectors,
//! an 8-bit bank, manufacturer and device ID 0, 256-byte write buffer. Unit 0 (the firmware
//! code, read-only) ends at 4 GiB, unit 1 (the variable store) sits right below it.
//!
//! In read-array mode a unit is a read-only KVM memory slot over its bytes, so the firmware
//! executes and reads it at memory speed; a write exits to [`Pflash::write`], which runs the
//! command state machine and drops the slot while a command mode (status, ID, query) owns
//! the reads, as QEMU switches its ROM device out of "romd" mode. Programs and erases of a
//! writable unit go to its NVRAM file at once (QEMU's `pflash_update`). Commands on a
//! read-only unit set the status register's error bits, as QEMU's do.
use crate::memory::Memory;
use kvm_bindings::{kvm_userspace_memory_region, KVM_MEM_READONLY};
use kvm_ioctls::VmFd;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend};

/// Erase block size (QEMU's `FLASH_SECTOR_SIZE` on pc machines).
pub const SECTOR: u64 = 4096;
/// Largest combined size of the units (QEMU's pc flash limit below 4 GiB).
pub const FLASH_LIMIT: u64 = 8 << 20;
/// Write buffer size: 2^CFI[0x2a] bytes for an 8-bit bank.
const WRITE_BLOCK: u64 = 256;
/// Length of QEMU's CFI query table.
const CFI_LEN: usize = 0x52;
/// KVM slots of unit 0 and unit 1 (RAM uses the low numbers, PAM 32 and up).
const SLOTS: [u32; 2] = [31, 30];

const STATUS_READY: u8 = 0x80;
const STATUS_ERASE_ERROR: u8 = 0x20;
const STATUS_PROGRAM_ERROR: u8 = 0x10;

/// A unit cannot be set up or remapped.
#[derive(Debug, thiserror::Error)]
pub enum PflashError {
    /// A size QEMU would refuse.
    #[error("invalid pflash unit {unit} ({name}): size {size} bytes is not a non-zero multiple of 4 KiB")]
    Size { unit: usize, name: String, size: usize },
    /// Units over QEMU's limit.
    #[error("invalid pflash units: combined size {0} bytes is over QEMU's 8 MiB limit")]
    Total(u64),
    /// KVM refused a mapping.
    #[error("pflash unit {unit} at {addr:#x}: KVM_SET_USER_MEMORY_REGION: {err}")]
    Kvm { unit: usize, addr: u64, err: String },
    /// The unit's memory could not be created.
    #[error("pflash unit {0}: {1}")]
    Memory(usize, String),
}

/// What a unit is made of.
pub struct UnitSource {
    /// For messages.
    pub name: String,
    /// Initial contents.
    pub data: Arc<[u8]>,
    /// Read-only (unit 0, the code).
    pub readonly: bool,
    /// Where programs and erases are written back (unit 1's NVRAM file).
    pub file: Option<Arc<File>>,
}

/// One flash unit: its bytes and command state (QEMU's `PFlashCFI01`).
pub struct Unit {
    name: String,
    base: u64,
    len: u64,
    mem: Memory,
    ro: bool,
    file: Option<Arc<File>>,
    slot: u32,
    mapped: bool,
    wcycle: u8,
    cmd: u8,
    status: u8,
    counter: u64,
    /// Write-to-buffer update buffer: (block offset, bytes); committed on confirm.
    blk: Option<(u64, Vec<u8>)>,
    cfi: [u8; CFI_LEN],
    write_failed: bool,
}

/// The CFI query table QEMU's `pflash_cfi01` answers with for one 8-bit device of `len` bytes.
pub fn cfi_table(len: u64) -> [u8; CFI_LEN] {
    let mut t = [0u8; CFI_LEN];
    t[0x10..0x13].copy_from_slice(b"QRY");
    t[0x13] = 0x01; // Intel command set
    t[0x15] = 0x31; // primary extended table at 0x31
    t[0x1b] = 0x45; // Vcc min
    t[0x1c] = 0x55; // Vcc max
    t[0x1f] = 0x07; // typical single write timeout
    t[0x20] = 0x07; // typical buffer write timeout
    t[0x21] = 0x0a; // typical block erase timeout
    t[0x23] = 0x04;
    t[0x24] = 0x04;
    t[0x25] = 0x04;
    t[0x27] = len.trailing_zeros() as u8; // device size (QEMU: ctz32 of the length)
    t[0x28] = 0x02; // x8/x16 interface
    t[0x2a] = WRITE_BLOCK.trailing_zeros() as u8;
    t[0x2c] = 0x01; // one erase block region
    let blocks = len / SECTOR - 1;
    t[0x2d] = blocks as u8;
    t[0x2e] = (blocks >> 8) as u8;
    t[0x2f] = (SECTOR >> 8) as u8;
    t[0x30] = (SECTOR >> 16) as u8;
    t[0x31..0x34].copy_from_slice(b"PRI");
    t[0x34] = b'1';
    t[0x35] = b'0';
    t[0x3f] = 0x01; // protection fields
    t
}

impl Unit {
    /// A unit of `source`'s bytes at guest-physical `base`, in read-array mode (not mapped).
    pub fn new(index: usize, base: u64, source: UnitSource) -> Result<Self, PflashError> {
        let len = source.data.len();
        let mem = Memory::from_ranges(&[(GuestAddress(0), len)]).map_err(|e| PflashError::Memory(index, e.to_string()))?;
        mem.write_slice(&source.data, GuestAddress(0)).map_err(|e| PflashError::Memory(index, e.to_string()))?;
        Ok(Unit {
            name: source.name,
            base,
            len: len as u64,
            mem,
            ro: source.readonly,
            file: source.file,
            slot: SLOTS[index.min(SLOTS.len() - 1)],
            mapped: false,
            wcycle: 0,
            cmd: 0,
            status: STATUS_READY,
            counter: 0,
            blk: None,
            cfi: cfi_table(len as u64),
            write_failed: false,
        })
    }

    /// A read of `data.len()` bytes at `offset` in the unit, split as QEMU's memory core
    /// splits it; nothing past the unit's end.
    pub fn mmio_read(&mut self, offset: u64, data: &mut [u8]) {
        for (at, w) in Pflash::pieces(data.len()) {
            let o = offset.saturating_add(at as u64);
            if o >= self.len {
                return;
            }
            let v = self.read(o, w);
            data[at..at + w].copy_from_slice(&v.to_le_bytes()[..w]);
        }
    }

    /// A write at `offset` in the unit (command cycles), split likewise.
    pub fn mmio_write(&mut self, offset: u64, data: &[u8]) {
        for (at, w) in Pflash::pieces(data.len()) {
            let o = offset.saturating_add(at as u64);
            if o >= self.len {
                return;
            }
            let mut b = [0u8; 4];
            b[..w].copy_from_slice(&data[at..at + w]);
            self.write(o, u32::from_le_bytes(b), w);
        }
    }

    /// The unit's current bytes.
    pub fn memory(&self) -> &Memory {
        &self.mem
    }

    /// Whether `addr` is inside the unit.
    fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr - self.base < self.len
    }

    fn load(&self, offset: u64, width: usize) -> u32 {
        let mut b = [0u8; 4];
        if offset + width as u64 <= self.len {
            let _ = self.mem.read_slice(&mut b[..width], GuestAddress(offset));
        }
        u32::from_le_bytes(b)
    }

    /// A read in the current command mode (QEMU's `pflash_read`, 8-bit bank, no device width).
    fn read(&mut self, offset: u64, width: usize) -> u32 {
        match self.cmd {
            0x10 | 0x20 | 0x28 | 0x40 | 0x50 | 0x60 | 0x70 | 0xe8 => {
                let s = u32::from(self.status);
                if width > 2 {
                    s | s << 16
                } else {
                    s
                }
            }
            // Manufacturer and device ID: both 0 on pc machines; lock status not emulated.
            0x90 => 0,
            0x98 => self.cfi.get((offset & 0xff) as usize).copied().map_or(0, u32::from),
            0x00 => self.load(offset, width),
            _ => {
                self.wcycle = 0;
                self.cmd = 0;
                self.load(offset, width)
            }
        }
    }

    fn store(&mut self, offset: u64, value: u32, width: usize) {
        let b = value.to_le_bytes();
        if let Some((start, buf)) = &mut self.blk {
            if offset < *start || offset + width as u64 > *start + WRITE_BLOCK {
                self.status |= STATUS_PROGRAM_ERROR;
                return;
            }
            let at = (offset - *start) as usize;
            buf[at..at + width].copy_from_slice(&b[..width]);
            return;
        }
        if offset + width as u64 <= self.len {
            let _ = self.mem.write_slice(&b[..width], GuestAddress(offset));
        }
    }

    /// Writes `len` bytes at `offset` back to the NVRAM file.
    fn update(&mut self, offset: u64, len: u64) {
        let Some(f) = &self.file else { return };
        let end = (offset + len).min(self.len);
        let mut b = vec![0u8; end.saturating_sub(offset) as usize];
        if self.mem.read_slice(&mut b, GuestAddress(offset)).is_err() {
            return;
        }
        if let Err(e) = f.write_all_at(&b, offset) {
            if !self.write_failed {
                eprintln!("ferry runtime: pflash unit {}: cannot write the NVRAM file at {offset:#x}: {e}", self.name.escape_debug());
                self.write_failed = true;
            }
        }
    }

    /// Back to read-array mode (the slot is mapped again after the access).
    fn read_array(&mut self) {
        self.wcycle = 0;
        self.cmd = 0;
    }

    /// A write (QEMU's `pflash_write`).
    fn write(&mut self, offset: u64, value: u32, width: usize) {
        let cmd = value as u8;
        match self.wcycle {
            0 => match cmd {
                0x00 | 0xf0 | 0xff => self.read_array(),
                0x10 | 0x40 => self.begin(cmd),
                0x20 => {
                    let at = offset & !(SECTOR - 1);
                    if self.ro {
                        self.status |= STATUS_ERASE_ERROR;
                    } else {
                        let ff = vec![0xffu8; SECTOR as usize];
                        let _ = self.mem.write_slice(&ff[..(self.len - at).min(SECTOR) as usize], GuestAddress(at));
                        self.update(at, SECTOR);
                    }
                    self.status |= STATUS_READY;
                    self.begin(cmd);
                }
                0x50 => {
                    self.status = 0;
                    self.read_array();
                }
                0x60 | 0x98 => self.begin(cmd),
                0x70 | 0x90 => self.cmd = cmd,
                0xe8 => {
                    self.status |= STATUS_READY;
                    self.begin(cmd);
                }
                _ => self.read_array(),
            },
            1 => match self.cmd {
                0x10 | 0x40 => {
                    if self.ro {
                        self.status |= STATUS_PROGRAM_ERROR;
                    } else {
                        self.store(offset, value, width);
                        self.update(offset, width as u64);
                    }
                    self.status |= STATUS_READY;
                    self.wcycle = 0;
                }
                0x20 | 0x28 | 0x60 => match cmd {
                    0xd0 => {
                        self.wcycle = 0;
                        self.status |= STATUS_READY;
                    }
                    0x01 if self.cmd == 0x60 => {
                        self.wcycle = 0;
                        self.status |= STATUS_READY;
                    }
                    _ => self.read_array(),
                },
                0xe8 => {
                    // The count (N - 1) is masked to the bank width.
                    self.counter = u64::from(value & 0xff);
                    self.wcycle += 1;
                }
                0x98 => {
                    if cmd == 0xff {
                        self.read_array();
                    }
                }
                _ => self.read_array(),
            },
            2 if self.cmd == 0xe8 => {
                // The first data write opens the update buffer over its block; a count of 0
                // never opens it (QEMU's behaviour: that one write is a programming error).
                if self.blk.is_none() && self.counter != 0 {
                    let start = offset & !(WRITE_BLOCK - 1);
                    let mut buf = vec![0xffu8; WRITE_BLOCK as usize];
                    let n = self.len.saturating_sub(start).min(WRITE_BLOCK) as usize;
                    let _ = self.mem.read_slice(&mut buf[..n], GuestAddress(start));
                    self.blk = Some((start, buf));
                }
                if !self.ro && self.blk.is_some() {
                    self.store(offset, value, width);
                } else {
                    self.status |= STATUS_PROGRAM_ERROR;
                }
                self.status |= STATUS_READY;
                if self.counter == 0 {
                    self.wcycle += 1;
                }
                self.counter = self.counter.wrapping_sub(1);
            }
            3 if self.cmd == 0xe8 && cmd == 0xd0 && self.status & STATUS_PROGRAM_ERROR == 0 => {
                // Confirm: the update buffer goes to the flash and the NVRAM file.
                if let Some((start, buf)) = self.blk.take() {
                    let n = self.len.saturating_sub(start).min(WRITE_BLOCK) as usize;
                    let _ = self.mem.write_slice(&buf[..n], GuestAddress(start));
                    self.update(start, WRITE_BLOCK);
                }
                self.wcycle = 0;
                self.status |= STATUS_READY;
            }
            _ => {
                self.blk = None;
                self.read_array();
            }
        }
    }

    fn begin(&mut self, cmd: u8) {
        self.wcycle += 1;
        self.cmd = cmd;
    }

    /// Read-array mode with no command cycle open: reads go to memory.
    fn romd(&self) -> bool {
        self.cmd == 0 && self.wcycle == 0
    }
}

/// Both units and the KVM slots they drive.
pub struct Pflash {
    vm: Arc<VmFd>,
    units: Vec<Unit>,
}

impl Pflash {
    /// Checks the sizes of units 0 and 1 as QEMU does.
    pub fn check(units: &[(&str, usize)]) -> Result<(), PflashError> {
        let mut total = 0u64;
        for (i, (name, size)) in units.iter().enumerate() {
            if *size == 0 || !(*size as u64).is_multiple_of(SECTOR) {
                return Err(PflashError::Size { unit: i, name: name.escape_debug().to_string(), size: *size });
            }
            total += *size as u64;
        }
        if total > FLASH_LIMIT {
            return Err(PflashError::Total(total));
        }
        Ok(())
    }

    /// Maps `sources` (unit 0 first) below 4 GiB in read-array mode.
    pub fn new(vm: Arc<VmFd>, sources: Vec<UnitSource>) -> Result<Self, PflashError> {
        let sizes: Vec<(&str, usize)> = sources.iter().map(|s| (s.name.as_str(), s.data.len())).collect();
        Self::check(&sizes)?;
        let mut top = 1u64 << 32;
        let mut units = Vec::new();
        for (i, s) in sources.into_iter().enumerate().take(SLOTS.len()) {
            top -= s.data.len() as u64;
            units.push(Unit::new(i, top, s)?);
        }
        let mut p = Pflash { vm, units };
        for i in 0..p.units.len() {
            p.sync_slot(i)?;
        }
        Ok(p)
    }

    /// Unit `i`'s bytes (unit 0: the firmware image PAM shows at 0xe0000).
    pub fn memory(&self, i: usize) -> Option<&Memory> {
        self.units.get(i).map(Unit::memory)
    }

    /// Unit `i`'s guest-physical base.
    pub fn base(&self, i: usize) -> Option<u64> {
        self.units.get(i).map(|u| u.base)
    }

    /// Whether `addr` is inside a unit.
    pub fn decodes(&self, addr: u64) -> bool {
        self.units.iter().any(|u| u.contains(addr))
    }

    /// Maps or unmaps unit `i`'s slot to match its mode.
    fn sync_slot(&mut self, i: usize) -> Result<(), PflashError> {
        let u = &mut self.units[i];
        let want = u.romd();
        if want == u.mapped {
            return Ok(());
        }
        let err = |e: kvm_ioctls::Error| PflashError::Kvm { unit: i, addr: u.base, err: e.to_string() };
        let region = if want {
            let host = u.mem.get_host_address(GuestAddress(0)).map_err(|e| PflashError::Memory(i, e.to_string()))?;
            kvm_userspace_memory_region { slot: u.slot, flags: KVM_MEM_READONLY, guest_phys_addr: u.base, memory_size: u.len, userspace_addr: host as u64 }
        } else {
            kvm_userspace_memory_region { slot: u.slot, flags: 0, guest_phys_addr: u.base, memory_size: 0, userspace_addr: 0 }
        };
        // SAFETY: a mapping covers `u.mem`'s own mmap (`u.len` bytes), which this struct keeps
        // as long as the VM fd it holds; a size of 0 deletes the slot this struct created.
        unsafe { self.vm.set_user_memory_region(region) }.map_err(err)?;
        u.mapped = want;
        Ok(())
    }

    /// Splits an access into the 1-, 2- and 4-byte accesses QEMU's memory core makes.
    fn pieces(len: usize) -> impl Iterator<Item = (usize, usize)> {
        let mut at = 0;
        std::iter::from_fn(move || {
            if at >= len {
                return None;
            }
            let w = [4, 2, 1].into_iter().find(|w| *w <= len - at).unwrap_or(1);
            let r = (at, w);
            at += w;
            Some(r)
        })
    }

    /// An MMIO read inside a unit (command mode: status, ID, query or array data).
    pub fn read(&mut self, addr: u64, data: &mut [u8]) -> bool {
        let Some(i) = self.units.iter().position(|u| u.contains(addr)) else { return false };
        let u = &mut self.units[i];
        u.mmio_read(addr - u.base, data);
        let _ = self.sync_slot(i);
        true
    }

    /// An MMIO write inside a unit: a command cycle.
    pub fn write(&mut self, addr: u64, data: &[u8]) -> Result<bool, PflashError> {
        let Some(i) = self.units.iter().position(|u| u.contains(addr)) else { return Ok(false) };
        let u = &mut self.units[i];
        u.mmio_write(addr - u.base, data);
        self.sync_slot(i)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(len: usize, ro: bool) -> Unit {
        let data: Arc<[u8]> = vec![0x5a; len].into();
        Unit::new(0, 0, UnitSource { name: "t".into(), data, readonly: ro, file: None }).unwrap()
    }

    fn byte(u: &Unit, at: u64) -> u8 {
        u.load(at, 1) as u8
    }

    #[test]
    fn cfi_query_and_ids() {
        let mut u = unit(0x84000, false);
        u.write(0, 0x98, 1);
        assert!(!u.romd());
        let q: Vec<u8> = (0x10..0x13).map(|o| u.read(o, 1) as u8).collect();
        assert_eq!(q, b"QRY");
        assert_eq!(u.read(0x27, 1), 14); // ctz(0x84000)
        assert_eq!(u.read(0x2d, 1) | u.read(0x2e, 1) << 8, 0x84 - 1);
        assert_eq!(u.read(0x2f, 1), 0x10);
        assert_eq!(u.read(0x2a, 1), 8);
        assert_eq!(u.read(0x60, 1), 0);
        u.write(0, 0x70, 1); // stays in query mode (cycle 1)
        assert_eq!(u.read(0x10, 1), u32::from(b'Q'));
        u.write(0, 0xff, 1);
        assert!(u.romd());
        u.write(0, 0x90, 1);
        assert_eq!((u.read(0, 1), u.read(1, 1)), (0, 0));
        u.write(0, 0xff, 1);
        assert_eq!(u.read(0, 1), 0x5a);
    }

    #[test]
    fn program_erase_and_status() {
        let mut u = unit(0x3000, false);
        u.write(0x1010, 0x10, 1);
        u.write(0x1010, 0x00, 1);
        assert_eq!(u.read(0, 1), 0x80); // status until read array
        u.write(0, 0xff, 1);
        assert_eq!(byte(&u, 0x1010), 0x00);
        u.write(0x1234, 0x20, 1);
        assert_eq!(byte(&u, 0x1010), 0xff); // erased at the setup write, as QEMU does
        assert_eq!(byte(&u, 0x0fff), 0x5a);
        u.write(0x1234, 0xd0, 1);
        assert_eq!(u.read(0, 4), 0x0080_0080);
        u.write(0, 0xff, 1);
        assert!(u.romd());

        let mut ro = unit(0x2000, true);
        ro.write(0x10, 0x40, 1);
        ro.write(0x10, 0x00, 1);
        ro.write(0, 0x20, 1);
        ro.write(0, 0xd0, 1);
        assert_eq!(ro.read(0, 1), 0xb0);
        assert_eq!(byte(&ro, 0x10), 0x5a);
        ro.write(0, 0x50, 1);
        assert!(ro.romd());
        ro.write(0, 0x70, 1);
        assert_eq!(ro.read(0, 1), 0);
    }

    #[test]
    fn buffered_write_commits_on_confirm_only() {
        let mut u = unit(0x2000, false);
        u.write(0x100, 0xe8, 1);
        u.write(0x100, 3, 1); // 4 bytes
        for i in 0..4 {
            u.write(0x104 + i, 0x10 + i as u32, 1);
        }
        assert_eq!(byte(&u, 0x104), 0x5a);
        u.write(0x100, 0xd0, 1);
        assert_eq!(u.load(0x104, 4), 0x1312_1110);
        u.write(0, 0xff, 1);
        // Aborted: anything but confirm discards the buffer.
        u.write(0x200, 0xe8, 1);
        u.write(0x200, 1, 1);
        u.write(0x200, 0x2211, 2);
        u.write(0x202, 0x4433, 2);
        u.write(0x200, 0xff, 1);
        assert_eq!(u.load(0x200, 4), 0x5a5a_5a5a);
        assert!(u.romd());
        // Outside the 256-byte block: programming error, nothing written.
        u.write(0x2fe, 0xe8, 1);
        u.write(0x2fe, 1, 1);
        u.write(0x2fe, 0xaa, 1);
        u.write(0x300, 0xbb, 1);
        u.write(0x2fe, 0xd0, 1);
        assert!(u.romd());
        u.write(0, 0x70, 1);
        assert_eq!(u.read(0, 1), 0x90);
        u.write(0, 0x50, 1);
        assert_eq!(u.load(0x2fe, 4), 0x5a5a_5a5a);
        // A count of 0 never opens the buffer: QEMU's programming error.
        u.write(0x400, 0xe8, 1);
        u.write(0x400, 0, 1);
        u.write(0x400, 0x77, 1);
        u.write(0x400, 0xd0, 1);
        u.write(0, 0x70, 1);
        assert_eq!(u.read(0, 1), 0x90);
        assert_eq!(byte(&u, 0x400), 0x5a);
    }

    #[test]
    fn sizes_as_qemu_checks_them() {
        assert!(Pflash::check(&[("c", 0x37c000), ("v", 0x84000)]).is_ok());
        assert!(Pflash::check(&[("c", 0x37c001)]).is_err());
        assert!(Pflash::check(&[("c", 0)]).is_err());
        assert!(Pflash::check(&[("c", 0x700000), ("v", 0x200000)]).is_err());
        assert_eq!(Pflash::pieces(8).collect::<Vec<_>>(), [(0, 4), (4, 4)]);
        assert_eq!(Pflash::pieces(3).collect::<Vec<_>>(), [(0, 2), (2, 1)]);
    }
}
