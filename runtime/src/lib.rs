//! Ferry's KVM runtime: a small VMM on the rust-vmm crates presenting the device-layout
//! profile (q35 / pc) with virtio-pci devices, booted by direct kernel load or through firmware.
//!
//! Layout: [`layout`] (memory map), [`memory`], [`cpuid`], [`boot`] + [`regs`] (PVH / 64-bit
//! Linux entry), [`acpi`] (RSDP, XSDT, FADT, DSDT, MADT, MCFG), [`tables`] (MP table, SMBIOS),
//! [`devices`] (serial, i8042, RTC, ACPI PM, debug ports), [`firmware`] (SeaBIOS boot: fw_cfg,
//! PAM, CMOS),
//! [`pci`] (config spaces, chipset stubs, CF8/ECAM bus), [`virtio`] (transport + blk, net,
//! console, rng), [`disk`] (backends), [`vm`] (one boot), [`qmp`] (monitor subset).
pub mod acpi;
pub mod boot;
pub mod config;
pub mod cpuid;
pub mod devices;
pub mod disk;
pub mod firmware;
mod hotplug;
pub mod layout;
pub mod memory;
pub mod pci;
pub mod qmp;
pub mod regs;
pub mod sandbox;
pub mod tables;
pub mod virtio;
pub mod vm;

pub use config::{ConsoleSink, LoadedImage, VmConfig};
pub use vm::{host_is_pvm, Outcome, Vm};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Why a boot ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// The guest wrote this byte to the debug-exit port 0xf4.
    DebugExit(u8),
    /// The guest reset the machine (i8042, 0xcf9, triple fault).
    Reset,
    /// The monitor asked for a reset (`system_reset`).
    HostReset,
    /// The guest powered off.
    Shutdown,
    /// The monitor asked to quit.
    Quit,
    /// The caller's timeout passed.
    Timeout,
    /// The VMM could not continue.
    Error(String),
}

/// Errors creating a VM.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// A KVM ioctl failed.
    #[error("{0}: {1}")]
    Kvm(String, kvm_ioctls::Error),
    /// Guest memory.
    #[error(transparent)]
    Memory(#[from] memory::MemoryError),
    /// Kernel / initrd loading.
    #[error(transparent)]
    Boot(#[from] boot::BootError),
    /// Anything else while building the machine.
    #[error("{0}")]
    Setup(String),
}

/// Run state shared with the monitor: pause/resume, host requests, events.
pub struct Controller {
    paused: Mutex<bool>,
    cv: Condvar,
    current: Mutex<Option<Arc<vm::Shared>>>,
    subscribers: Mutex<Vec<Sender<serde_json::Value>>>,
    shut_down: AtomicBool,
    started: AtomicBool,
    /// Block nodes and hot-plugged functions, across guest resets.
    pub(crate) registry: Arc<hotplug::Registry>,
}

impl Controller {
    /// A controller for a machine that starts running (or paused, like QEMU's `-S`).
    pub fn new(start_paused: bool) -> Arc<Self> {
        Arc::new(Controller {
            paused: Mutex::new(start_paused),
            cv: Condvar::new(),
            current: Mutex::new(None),
            subscribers: Mutex::new(Vec::new()),
            shut_down: AtomicBool::new(false),
            started: AtomicBool::new(!start_paused),
            registry: Arc::default(),
        })
    }
    pub(crate) fn attach(&self, s: Arc<vm::Shared>) {
        if let Ok(mut c) = self.current.lock() {
            *c = Some(s);
        }
    }
    /// Waits until the first boot's machine exists (or the VM stopped, or `limit` passed):
    /// QEMU serves its monitor only once the machine is built, so `query-pci` right after the
    /// greeting lists every device.
    pub(crate) fn wait_attached(&self, limit: Duration) {
        let start = std::time::Instant::now();
        while start.elapsed() < limit && !self.shut_down.load(Ordering::SeqCst) {
            if self.current.lock().map(|c| c.is_some()).unwrap_or(true) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    pub(crate) fn detach(&self) {
        if let Ok(mut c) = self.current.lock() {
            *c = None;
        }
    }
    pub(crate) fn wait_while_paused(&self, stopping: &AtomicBool) {
        let mut p = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        while *p && !stopping.load(Ordering::SeqCst) {
            p = match self.cv.wait_timeout(p, Duration::from_millis(100)) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }
    pub(crate) fn wake_paused(&self) {
        self.cv.notify_all();
    }
    /// Whether vCPUs are held.
    pub fn is_paused(&self) -> bool {
        self.paused.lock().map(|p| *p).unwrap_or(false)
    }
    /// Whether the machine has shut down for good.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::SeqCst)
    }
    /// QMP run state: prelaunch, running, paused or shutdown.
    pub fn status(&self) -> &'static str {
        if self.is_shut_down() {
            "shutdown"
        } else if !self.is_paused() {
            "running"
        } else if self.started.load(Ordering::SeqCst) {
            "paused"
        } else {
            "prelaunch"
        }
    }
    /// Holds all vCPUs (QMP `stop`), emitting STOP.
    pub fn pause(&self) {
        if let Ok(mut p) = self.paused.lock() {
            if *p {
                return;
            }
            *p = true;
        }
        if let Ok(c) = self.current.lock() {
            if let Some(s) = c.as_ref() {
                s.kick();
            }
        }
        self.emit("STOP", serde_json::json!({}));
    }
    /// Releases the vCPUs (QMP `cont`), emitting RESUME.
    pub fn resume(&self) {
        if let Ok(mut p) = self.paused.lock() {
            if !*p {
                return;
            }
            *p = false;
        }
        self.started.store(true, Ordering::SeqCst);
        self.cv.notify_all();
        self.emit("RESUME", serde_json::json!({}));
    }
    /// Ends the current boot with `r` (QMP `quit`, `system_reset`).
    pub fn request(&self, r: ExitReason) {
        if let Ok(c) = self.current.lock() {
            if let Some(s) = c.as_ref() {
                s.finish(r);
            }
        }
        self.cv.notify_all();
    }
    /// Presses the ACPI power button of the running boot (QMP `system_powerdown`); true if
    /// the guest had enabled the power-button event, so an SCI was raised.
    pub fn power_button(&self) -> bool {
        let c = self.current.lock().ok().and_then(|c| c.clone());
        c.is_some_and(|s| s.power_button())
    }
    /// `query-pci` devices of the running boot.
    pub fn query_pci(&self) -> Vec<serde_json::Value> {
        let c = self.current.lock().ok().and_then(|c| c.clone());
        c.and_then(|s| s.pci.lock().ok().map(|p| p.describe())).unwrap_or_default()
    }
    /// `query-block` data of the running boot.
    pub fn query_block(&self) -> Vec<serde_json::Value> {
        self.current.lock().ok().and_then(|c| c.as_ref().and_then(|s| s.blocks.lock().ok().map(|b| b.clone()))).unwrap_or_default()
    }
    /// QMP `balloon`: asks the guest's balloon driver to leave it `bytes` of RAM. False when
    /// the machine has no balloon.
    pub fn set_balloon(&self, bytes: u64) -> bool {
        let c = self.current.lock().ok().and_then(|c| c.clone());
        let Some(s) = c else { return false };
        let Some(b) = s.balloon.as_ref() else { return false };
        b.set_target(bytes);
        if let Ok(mut p) = s.pci.lock() {
            p.poll_all(); // raises the configuration-change interrupt
        }
        true
    }
    /// QMP `query-balloon`: the guest's RAM less its balloon, in bytes.
    pub fn query_balloon(&self) -> Option<u64> {
        let c = self.current.lock().ok().and_then(|c| c.clone());
        c.and_then(|s| s.balloon.as_ref().map(|b| b.actual_bytes()))
    }
    /// Receives every event emitted from now on.
    pub fn subscribe(&self) -> Receiver<serde_json::Value> {
        let (tx, rx) = channel();
        if let Ok(mut s) = self.subscribers.lock() {
            s.push(tx);
        }
        rx
    }
    /// QEMU's `DEVICE_DELETED` pair for a virtio device: its backend, then the device.
    pub(crate) fn device_deleted(&self, id: &str) {
        self.emit("DEVICE_DELETED", serde_json::json!({"path": format!("/machine/peripheral/{id}/virtio-backend")}));
        self.emit("DEVICE_DELETED", serde_json::json!({"device": id, "path": format!("/machine/peripheral/{id}")}));
    }
    /// Emits a QMP-style event.
    pub fn emit(&self, event: &str, data: serde_json::Value) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let ev = serde_json::json!({"event": event, "data": data,
            "timestamp": {"seconds": now.as_secs(), "microseconds": now.subsec_micros()}});
        if let Ok(mut s) = self.subscribers.lock() {
            s.retain(|tx| tx.send(ev.clone()).is_ok());
        }
    }
}

/// Boots `cfg` and keeps rebooting on resets (unless `cfg.no_reboot`) until the guest stops,
/// the monitor quits, or `timeout` passes. Markers and console output accumulate over reboots.
pub fn run_machine(cfg: &VmConfig, ctl: &Arc<Controller>, timeout: Option<Duration>) -> Result<Outcome, VmError> {
    let start = Instant::now();
    let mut console = Vec::new();
    let channel = vm::open_channel(cfg)?;
    loop {
        let vm = Vm::with_registry(cfg, channel.clone(), ctl.registry.clone())?;
        let left = timeout.map(|t| t.saturating_sub(start.elapsed()));
        let mut out = vm.run(ctl, left);
        console.append(&mut out.console);
        let reboot = match out.reason {
            ExitReason::Reset if !cfg.no_reboot => {
                ctl.emit("RESET", serde_json::json!({"guest": true, "reason": "guest-reset"}));
                true
            }
            ExitReason::HostReset => {
                ctl.emit("RESET", serde_json::json!({"guest": false, "reason": "host-qmp-system-reset"}));
                true
            }
            _ => false,
        };
        if reboot {
            for id in ctl.registry.reset() {
                ctl.device_deleted(&id);
            }
        }
        if !reboot {
            let (guest, reason) = match &out.reason {
                ExitReason::Quit => (false, "host-qmp-quit"),
                ExitReason::Reset => (true, "guest-reset"),
                ExitReason::Timeout | ExitReason::Error(_) => (false, "host-error"),
                _ => (true, "guest-shutdown"),
            };
            ctl.shut_down.store(true, Ordering::SeqCst);
            ctl.emit("SHUTDOWN", serde_json::json!({"guest": guest, "reason": reason}));
            out.console = console;
            out.elapsed = start.elapsed();
            return Ok(out);
        }
    }
}
