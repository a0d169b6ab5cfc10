//! Interrupt state of one virtio-pci function, shared by the vCPU threads (register accesses)
//! and a device's I/O thread (completions): MSI-X table and pending bits, the ISR, queue and
//! config vectors, NEEDS_RESET, and the INTx pin used while MSI-X is off. Messages go out with
//! KVM_SIGNAL_MSI; the pin is a level line (KVM_IRQ_LINE) that follows the ISR.
use super::{log, VirtioError};
use crate::devices::intx::IntxPin;
use kvm_bindings::kvm_msi;
use kvm_ioctls::VmFd;
use std::sync::{Arc, Mutex, MutexGuard};

/// "No vector" in the common config.
pub const NO_VECTOR: u16 = 0xffff;

/// The mutable part, behind [`Irq`]'s lock.
pub struct IrqState {
    /// MSI-X table entries: address lo, address hi, data, vector control.
    pub table: Vec<[u32; 4]>,
    /// Pending bits of masked vectors.
    pub pending: u64,
    /// MSI-X enable (message control bit 15).
    pub enabled: bool,
    /// MSI-X function mask (message control bit 14).
    pub masked: bool,
    /// ISR status: bit 0 queue, bit 1 configuration change.
    pub isr: u8,
    /// config_generation.
    pub generation: u8,
    /// The device hit a driver error and waits for a reset.
    pub needs_reset: bool,
    /// msix_config.
    pub config_vector: u16,
    /// queue_msix_vector of each queue.
    pub vectors: Vec<u16>,
    /// The legacy interrupt pin, when the function is routed.
    pub intx: Option<IntxPin>,
    /// Command register bit 10 (INTx disable).
    pub intx_disabled: bool,
}

/// Shared interrupt state of one function.
pub struct Irq {
    id: String,
    vm: Arc<VmFd>,
    state: Mutex<IrqState>,
}

impl Irq {
    /// `nvec` MSI-X vectors (all masked), `nqueues` queues without vectors.
    pub fn new(id: &str, vm: Arc<VmFd>, nvec: u16, nqueues: usize) -> Arc<Self> {
        Arc::new(Irq {
            id: id.to_string(),
            vm,
            state: Mutex::new(IrqState {
                table: vec![[0, 0, 0, 1]; usize::from(nvec)],
                pending: 0,
                enabled: false,
                masked: false,
                isr: 0,
                generation: 0,
                needs_reset: false,
                config_vector: NO_VECTOR,
                vectors: vec![NO_VECTOR; nqueues],
                intx: None,
                intx_disabled: false,
            }),
        })
    }

    /// The state, for register accesses.
    pub fn lock(&self) -> MutexGuard<'_, IrqState> {
        // Every update is a plain field store: a poisoned lock still holds consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `vector`, or marks it pending when masked; without MSI-X the INTx pin follows the
    /// ISR instead.
    pub fn deliver(&self, s: &mut IrqState, vector: u16) {
        if !s.enabled {
            return self.update_intx(s);
        }
        if vector == NO_VECTOR {
            return;
        }
        let Some(e) = s.table.get(usize::from(vector)).copied() else { return };
        if s.masked || e[3] & 1 != 0 {
            s.pending |= 1 << (vector & 63);
            return;
        }
        let msi = kvm_msi { address_lo: e[0], address_hi: e[1], data: e[2], ..Default::default() };
        if let Err(err) = self.vm.signal_msi(msi) {
            log(&self.id, &format!("MSI delivery failed: {err}"));
        }
    }

    /// Drives the INTx pin: high while a cause is in the ISR, MSI-X is off and the command
    /// register allows INTx.
    pub fn update_intx(&self, s: &mut IrqState) {
        let level = s.isr != 0 && !s.enabled && !s.intx_disabled;
        if let Some(p) = s.intx.as_mut() {
            p.set(level);
        }
    }

    /// Sends every pending vector that is no longer masked.
    pub fn flush_pending(&self, s: &mut IrqState) {
        if !s.enabled || s.masked {
            return;
        }
        for v in 0..s.table.len().min(64) {
            if s.pending & (1 << v) != 0 && s.table[v][3] & 1 == 0 {
                s.pending &= !(1 << v);
                self.deliver(s, v as u16);
            }
        }
    }

    /// Used-ring interrupt of queue `q`.
    pub fn queue(&self, q: usize) {
        let mut s = self.lock();
        s.isr |= 1;
        let v = s.vectors.get(q).copied().unwrap_or(NO_VECTOR);
        self.deliver(&mut s, v);
    }

    /// Configuration-change interrupt.
    pub fn config(&self) {
        let mut s = self.lock();
        s.generation = s.generation.wrapping_add(1);
        s.isr |= 2;
        let v = s.config_vector;
        self.deliver(&mut s, v);
    }

    /// The driver broke the contract: NEEDS_RESET plus a configuration-change interrupt.
    pub fn fail(&self, e: &VirtioError) {
        log(&self.id, &format!("{e}; device status NEEDS_RESET"));
        self.lock().needs_reset = true;
        self.config();
    }

    /// Whether the device waits for a reset.
    pub fn needs_reset(&self) -> bool {
        self.lock().needs_reset
    }

    /// Device reset: causes, vectors and NEEDS_RESET cleared (the MSI-X table is kept).
    pub fn reset(&self) {
        let mut s = self.lock();
        s.isr = 0;
        s.needs_reset = false;
        s.config_vector = NO_VECTOR;
        s.vectors.fill(NO_VECTOR);
        self.update_intx(&mut s);
    }
}
