//! The chipset's Programmable Attribute Map: seven registers of the host bridge (q35 MCH
//! 0x90..=0x96, i440FX 0x59..=0x5f) that route each segment of 0xc0000..0x100000 to RAM or
//! to the PCI side (where the firmware's last 128 KiB, QEMU's "isa-bios", shows at
//! 0xe0000..0x100000). SeaBIOS shadows itself into RAM through them, then write-protects it.
//!
//! Each segment is its own KVM memory slot: RAM read-write, RAM read-only, or the ROM
//! (read-only); writes that a read-only slot turns into MMIO exits go to RAM where the
//! segment's write-enable bit says so (mode 2: reads ROM, writes RAM), else they are dropped.
use crate::memory::Memory;
use crate::pci::bus::{PciFunction, Stub};
use crate::pci::{ConfigSpace, Machine};
use kvm_bindings::{kvm_userspace_memory_region, KVM_MEM_READONLY};
use kvm_ioctls::VmFd;
use std::sync::{Arc, Mutex};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend};

/// Start of the PAM-controlled area.
pub const AREA_START: u64 = 0xc0000;
/// End (exclusive).
pub const AREA_END: u64 = 0x10_0000;
/// First KVM slot number the segments use (RAM uses the low numbers).
const FIRST_SLOT: u32 = 32;
/// Segments: 0xf0000 (64 KiB, PAM0) then 0xc0000..0xf0000 in 16 KiB steps (PAM1..PAM6).
const SEGMENTS: usize = 13;

/// First PAM register of the machine's host bridge.
pub fn first_register(m: Machine) -> usize {
    match m {
        Machine::Q35 => 0x90,
        Machine::Pc => 0x59,
    }
}

fn segment(i: usize) -> (u64, u64) {
    if i == 0 {
        (0xf0000, 0x10000)
    } else {
        (AREA_START + (i as u64 - 1) * 0x4000, 0x4000)
    }
}

/// The segments' modes from the seven register bytes: bit 0 read-enable, bit 1 write-enable.
pub fn modes(regs: &[u8; 7]) -> [u8; SEGMENTS] {
    let mut m = [0u8; SEGMENTS];
    m[0] = (regs[0] >> 4) & 3;
    for r in 1..7 {
        m[2 * r - 1] = regs[r] & 3;
        m[2 * r] = (regs[r] >> 4) & 3;
    }
    m
}

/// The PAM state and the KVM slots it drives.
pub struct Pam {
    vm: Arc<VmFd>,
    ram: Memory,
    /// The firmware image (at address 0 of its own mapping); its last bytes, up to 128 KiB,
    /// show at 1 MiB minus their length.
    rom: Memory,
    rom_start: u64,
    isa_offset: u64,
    modes: [Option<u8>; SEGMENTS],
    mapped: [bool; SEGMENTS],
}

/// A KVM slot could not be changed.
#[derive(Debug, thiserror::Error)]
#[error("PAM segment {addr:#x}: KVM_SET_USER_MEMORY_REGION: {err}")]
pub struct PamError {
    addr: u64,
    err: kvm_ioctls::Error,
}

impl Pam {
    /// Maps every segment as at reset (all to the PCI side). `rom` holds the `rom_len`-byte
    /// firmware image at its address 0.
    pub fn new(vm: Arc<VmFd>, ram: Memory, rom: Memory, rom_len: u64) -> Result<Self, PamError> {
        let isa = rom_len.min(0x20000);
        let mut p = Pam { vm, ram, rom, rom_start: AREA_END - isa, isa_offset: rom_len - isa, modes: [None; SEGMENTS], mapped: [false; SEGMENTS] };
        p.apply(&[0; 7])?;
        Ok(p)
    }

    fn host(mem: &Memory, at: u64) -> Option<u64> {
        mem.get_host_address(GuestAddress(at)).ok().map(|p| p as u64)
    }

    fn set_slot(&mut self, i: usize, host: Option<(u64, u32)>) -> Result<(), PamError> {
        let (addr, len) = segment(i);
        let slot = FIRST_SLOT + i as u32;
        let err = |err| PamError { addr, err };
        let delete = kvm_userspace_memory_region { slot, flags: 0, guest_phys_addr: addr, memory_size: 0, userspace_addr: 0 };
        if self.mapped[i] {
            // SAFETY: deleting a slot this struct created; a size of 0 maps nothing.
            unsafe { self.vm.set_user_memory_region(delete) }.map_err(err)?;
            self.mapped[i] = false;
        }
        if let Some((userspace_addr, flags)) = host {
            let r = kvm_userspace_memory_region { slot, flags, guest_phys_addr: addr, memory_size: len, userspace_addr };
            // SAFETY: `userspace_addr..+len` lies inside `self.ram` or `self.rom`, mappings this
            // struct keeps alive (clones of their Arc'd regions) as long as the VM fd it holds.
            unsafe { self.vm.set_user_memory_region(r) }.map_err(err)?;
            self.mapped[i] = true;
        }
        Ok(())
    }

    /// Applies the seven PAM register bytes: remaps every segment whose mode changed.
    pub fn apply(&mut self, regs: &[u8; 7]) -> Result<(), PamError> {
        for (i, mode) in modes(regs).into_iter().enumerate() {
            if self.modes[i] == Some(mode) {
                continue;
            }
            let (addr, _) = segment(i);
            let host = match mode {
                3 => Self::host(&self.ram, addr).map(|h| (h, 0)),
                1 => Self::host(&self.ram, addr).map(|h| (h, KVM_MEM_READONLY)),
                _ if addr >= self.rom_start => Self::host(&self.rom, self.isa_offset + addr - self.rom_start).map(|h| (h, KVM_MEM_READONLY)),
                _ => None, // PCI side with nothing there: reads 0xff
            };
            self.set_slot(i, host)?;
            self.modes[i] = Some(mode);
        }
        Ok(())
    }

    /// A guest write that exited (read-only slot or nothing mapped) inside the area: it
    /// reaches RAM if the segment is write-enabled. Returns false for addresses outside.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        if !(AREA_START..AREA_END).contains(&addr) {
            return false;
        }
        let i = if addr >= 0xf0000 { 0 } else { 1 + ((addr - AREA_START) / 0x4000) as usize };
        if self.modes[i].is_some_and(|m| m & 2 != 0) {
            let _ = self.ram.write_slice(data, GuestAddress(addr));
        }
        true
    }
}

/// The host bridge with its PAM registers wired to [`Pam`].
pub struct PamHost {
    inner: Stub,
    first: usize,
    pam: Arc<Mutex<Pam>>,
}

impl PamHost {
    /// Wraps the host bridge's header.
    pub fn new(config: ConfigSpace, machine: Machine, pam: Arc<Mutex<Pam>>) -> Self {
        PamHost { inner: Stub(config), first: first_register(machine), pam }
    }
}

impl PciFunction for PamHost {
    fn config(&self) -> &ConfigSpace {
        &self.inner.0
    }
    fn config_write(&mut self, off: usize, data: &[u8]) {
        self.inner.config_write(off, data);
        if off < self.first + 7 && off + data.len() > self.first {
            let mut regs = [0u8; 7];
            for (i, r) in regs.iter_mut().enumerate() {
                *r = self.inner.0.get8(self.first + i);
            }
            if let Ok(mut p) = self.pam.lock() {
                if let Err(e) = p.apply(&regs) {
                    crate::virtio::log("pam", &e.to_string());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_nibbles_map_to_segments() {
        // SeaBIOS's make_bios_writable: PAM0 = 0x30, PAM1..6 = 0x33
        let m = modes(&[0x30, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33]);
        assert_eq!(m, [3; SEGMENTS]);
        // make_bios_readonly: 0x10 / 0x11
        let m = modes(&[0x10, 0x11, 0x11, 0x11, 0x11, 0x11, 0x01]);
        assert_eq!(m[..12], [1; 12]);
        assert_eq!(m[12], 0); // 0xec000 upper nibble of PAM6
        assert_eq!(segment(12), (0xec000, 0x4000));
        assert_eq!(segment(1), (0xc0000, 0x4000));
    }
}
