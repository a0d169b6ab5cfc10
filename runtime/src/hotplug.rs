//! Live PCI hotplug on pc's root bus, the way QEMU's i440fx machine does it through the PIIX4's
//! ACPI PCI hotplug: QMP `blockdev-add`/`blockdev-del` keep block nodes, `device_add` puts a
//! virtio-blk, virtio-net or virtio-rng function in a free slot and raises the hotplug GPE
//! (the guest's `PCNT` finds it and its `acpiphp` scans the slot), `device_del` asks the guest
//! to let go (GPE again; the guest's `_EJ0` writes the eject register), and only the eject
//! removes the function and emits `DEVICE_DELETED`.
//!
//! As on QEMU, block nodes and hot-plugged functions outlive a guest reset (the [`Registry`]
//! belongs to the [`crate::Controller`]): the next boot has them cold-plugged where they were,
//! and unplug requests the guest never answered are carried out at the reset.
//!
//! New functions start unassigned, as on QEMU: the guest gives them BARs from the root bus's
//! windows. Their interrupts are those of a cold-plugged function in the same slot (the `_PRT`
//! INTx pin, or MSI-X). A disk file is opened by `blockdev-add` in the monitor thread, so
//! under the sandbox it must be a `--sandbox-allow` path.
use crate::devices::intx::{self, IntxLines, IntxPin};
use crate::devices::pcihp;
use crate::disk::{self, Backend};
use crate::memory::Memory;
use crate::pci::Machine;
use crate::virtio::{blk::Blk, net, pci::VirtioPci, rng::Rng, VirtioDevice};
use kvm_ioctls::VmFd;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

/// A QMP error answer: class and description.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct QmpError {
    pub class: &'static str,
    pub desc: String,
}

/// A name from the client in an answer: control characters escaped, the rest as given (as QEMU
/// echoes it).
pub(crate) fn esc(s: &str) -> String {
    s.escape_debug().to_string()
}

/// A GenericError answer.
pub(crate) fn generic(desc: String) -> QmpError {
    QmpError { class: "GenericError", desc }
}

/// QEMU's null-co default size (1 GiB).
const NULL_SIZE: u64 = 1 << 30;

/// A block node from `blockdev-add`.
struct Node {
    /// How to open it again after a device let it go.
    source: Source,
    readonly: bool,
    /// Opened and not yet attached.
    open: Option<Box<dyn Backend>>,
    /// The device using it.
    user: Option<String>,
}

#[derive(Clone)]
enum Source {
    File { path: std::path::PathBuf, format: String },
    Null { size: u64 },
}

impl Source {
    fn open(&self, readonly: bool) -> Result<Box<dyn Backend>, QmpError> {
        match self {
            Source::File { path, format } => {
                // A FIFO or a socket would block the monitor thread in open(): only regular
                // files and block devices are disks.
                use std::os::unix::fs::FileTypeExt;
                let shown = esc(&path.display().to_string());
                let t = std::fs::metadata(path).map_err(|e| generic(format!("Could not open '{shown}': {e}")))?.file_type();
                if !t.is_file() && !t.is_block_device() {
                    return Err(generic(format!("Could not open '{shown}': not a regular file or block device")));
                }
                disk::open(path, format, readonly).map_err(|e| generic(format!("Could not open '{shown}': {e}")))
            }
            Source::Null { size } => Ok(disk::null(*size)),
        }
    }
}

/// What a new function is.
#[derive(Clone, Debug)]
pub(crate) enum Model {
    /// virtio-blk on a node.
    Blk { node: String, serial: String },
    /// virtio-net with no backend (QEMU's NIC without `netdev`).
    Net { mac: Option<String> },
    /// virtio-rng.
    Rng,
}

/// A checked `device_add`.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub id: String,
    /// The spec bus: 0, or the bus behind a PCI bridge.
    pub bus: u8,
    pub slot: u8,
    pub transitional: bool,
    pub vectors: Option<u16>,
    pub model: Model,
}

#[derive(Default)]
struct State {
    nodes: BTreeMap<String, Node>,
    /// Functions hot-plugged and not ejected, in plug order.
    plugged: Vec<Request>,
    /// Cold-plugged (spec) functions the guest ejected: later boots leave them out.
    gone: BTreeSet<String>,
    unplugging: BTreeSet<String>,
    ejected: Vec<String>,
    /// NICs given QEMU's default MAC so far.
    default_macs: u8,
}

/// Block nodes and hot-plug history of one `ferry run`, across guest resets.
#[derive(Default)]
pub(crate) struct Registry {
    state: Mutex<State>,
}

impl Registry {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `blockdev-add` (drivers raw, qcow2, file, host_device, null-co).
    pub(crate) fn blockdev_add(&self, args: &Value) -> Result<(), QmpError> {
        let Some(name) = args.get("node-name").and_then(Value::as_str) else {
            return Err(generic("'node-name' must be specified for the root node".into()));
        };
        let driver = args.get("driver").and_then(Value::as_str).ok_or_else(|| generic("Parameter 'driver' is missing".into()))?;
        let readonly = args.get("read-only").and_then(Value::as_bool).unwrap_or(false);
        let file_of = |v: &Value| -> Result<std::path::PathBuf, QmpError> {
            match v.get("driver").and_then(Value::as_str) {
                Some("file" | "host_device") => {}
                Some(d) => return Err(generic(format!("Parameter 'driver' does not accept value '{}'", esc(d)))),
                None => return Err(generic("Parameter 'driver' is missing".into())),
            }
            v.get("filename").and_then(Value::as_str).map(Into::into).ok_or_else(|| generic("Parameter 'filename' is missing".into()))
        };
        let source = match driver {
            "file" | "host_device" => Source::File { path: file_of(args)?, format: "raw".into() },
            "raw" | "qcow2" => match args.get("file") {
                Some(f @ Value::Object(_)) => Source::File { path: file_of(f)?, format: driver.into() },
                Some(_) => return Err(generic("ferry-runtime takes 'file' as an object with 'driver' and 'filename'".into())),
                None => return Err(generic("Parameter 'file' is missing".into())),
            },
            "null-co" => Source::Null { size: args.get("size").and_then(Value::as_u64).unwrap_or(NULL_SIZE) },
            other => return Err(generic(format!("Parameter 'driver' does not accept value '{}'", esc(other)))),
        };
        if self.state().nodes.contains_key(name) {
            return Err(generic(format!("Duplicate nodes with node-name='{}'", esc(name))));
        }
        let open = source.open(readonly)?;
        self.state().nodes.insert(name.to_string(), Node { source, readonly, open: Some(open), user: None });
        Ok(())
    }

    /// `blockdev-del`.
    pub(crate) fn blockdev_del(&self, args: &Value) -> Result<(), QmpError> {
        let name = args.get("node-name").and_then(Value::as_str).ok_or_else(|| generic("Parameter 'node-name' is missing".into()))?;
        let mut st = self.state();
        match st.nodes.get(name) {
            None => Err(generic(format!("Failed to find node with node-name='{}'", esc(name)))),
            Some(n) if n.user.is_some() => Err(generic(format!("Node {} is in use", esc(name)))),
            Some(_) => {
                st.nodes.remove(name);
                Ok(())
            }
        }
    }

    /// The disk of node `node` for device `id` (a device plugged before a reset takes its node
    /// back).
    fn attach(&self, node: &str, id: &str) -> Result<Box<dyn Backend>, QmpError> {
        let mut st = self.state();
        let n = st.nodes.get_mut(node).ok_or_else(|| generic(format!("Property 'virtio-blk-device.drive' can't find value '{}'", esc(node))))?;
        if let Some(u) = n.user.as_ref().filter(|u| *u != id) {
            return Err(generic(format!("Drive '{}' is already in use by '{u}'", esc(node))));
        }
        let disk = match n.open.take() {
            Some(d) => d,
            None => n.source.open(n.readonly)?,
        };
        n.user = Some(id.to_string());
        Ok(disk)
    }

    /// Gives a NIC added without a MAC QEMU's default for the next such NIC
    /// (52:54:00:12:34:56, then :57, ...), kept across resets.
    pub(crate) fn fill_mac(&self, req: &mut Request) {
        if let Model::Net { mac: mac @ None } = &mut req.model {
            let mut st = self.state();
            *mac = Some(format!("52:54:00:12:34:{:02x}", 0x56u8.wrapping_add(st.default_macs)));
            st.default_macs = st.default_macs.wrapping_add(1);
        }
    }

    /// `id` no longer uses a node.
    fn release(st: &mut State, id: &str) {
        for n in st.nodes.values_mut() {
            if n.user.as_deref() == Some(id) {
                n.user = None;
            }
        }
    }

    /// A placed function: later boots plug it again.
    pub(crate) fn plugged(&self, req: &Request) {
        self.state().plugged.push(req.clone());
    }

    /// A function could not be placed after [`Hotplug::build`]: its node is free again.
    pub(crate) fn not_plugged(&self, id: &str) {
        Self::release(&mut self.state(), id);
    }

    /// The functions to plug at the start of a boot.
    pub(crate) fn replug(&self) -> Vec<Request> {
        self.state().plugged.clone()
    }

    /// A function that could not be plugged again after a reset (its file is gone): dropped.
    pub(crate) fn forget(&self, id: &str) {
        let mut st = self.state();
        Self::release(&mut st, id);
        st.plugged.retain(|r| r.id != id);
    }

    /// Whether spec device `id` was ejected in an earlier boot.
    pub(crate) fn is_gone(&self, id: &str) -> bool {
        self.state().gone.contains(id)
    }

    /// Marks `id` as asked to go.
    pub(crate) fn request_unplug(&self, id: &str) {
        self.state().unplugging.insert(id.to_string());
    }

    /// The guest ejected these functions: their nodes are free, their events wait.
    pub(crate) fn ejected(&self, ids: Vec<String>) {
        let mut st = self.state();
        for id in &ids {
            Self::release(&mut st, id);
            st.unplugging.remove(id);
            let before = st.plugged.len();
            st.plugged.retain(|r| r.id != *id);
            if st.plugged.len() == before {
                st.gone.insert(id.clone());
            }
        }
        st.ejected.extend(ids);
    }

    /// A reset carries out the unplug requests the guest never answered (as QEMU's PIIX4
    /// does); returns their ids.
    pub(crate) fn reset(&self) -> Vec<String> {
        let ids: Vec<String> = std::mem::take(&mut self.state().unplugging).into_iter().collect();
        self.ejected(ids.clone());
        self.take_ejected();
        ids
    }

    /// The ids ejected since the last call (for `DEVICE_DELETED`).
    pub(crate) fn take_ejected(&self) -> Vec<String> {
        std::mem::take(&mut self.state().ejected)
    }
}

/// A PCI bridge whose bus takes hot-plugged devices.
#[derive(Clone, Debug)]
pub(crate) struct HotBridge {
    /// QMP id (`bus=` of its devices).
    pub id: String,
    /// The spec bus behind it.
    pub bus: u8,
    /// Its slot on the root bus.
    pub slot: u8,
}

/// What the VM needs to build functions while it runs.
pub(crate) struct Hotplug {
    mem: Memory,
    vm: Arc<VmFd>,
    intx: Arc<IntxLines>,
    machine: Machine,
    queues: u16,
    /// The bridges with hotplug, in bus-selector order (BSEL 1, 2, ...).
    pub(crate) bridges: Vec<HotBridge>,
    /// The run's nodes and hot-plug history.
    pub(crate) registry: Arc<Registry>,
}

impl Hotplug {
    pub(crate) fn new(mem: Memory, vm: Arc<VmFd>, intx: Arc<IntxLines>, machine: Machine, queues: u16, bridges: Vec<HotBridge>, registry: Arc<Registry>) -> Self {
        Hotplug { mem, vm, intx, machine, queues, bridges, registry }
    }

    /// The bus selector of spec bus `bus` (0 for the root bus).
    pub(crate) fn bsel(&self, bus: u8) -> Option<usize> {
        if bus == 0 {
            return Some(0);
        }
        self.bridges.iter().position(|b| b.bus == bus).map(|i| i + 1)
    }

    /// The spec bus of bus selector `bsel`.
    pub(crate) fn bus_of(&self, bsel: usize) -> Option<u8> {
        match bsel {
            0 => Some(0),
            n => self.bridges.get(n - 1).map(|b| b.bus),
        }
    }

    /// Builds the function `req` asks for (its disk taken from the node), with its
    /// `query-block` row for a disk.
    pub(crate) fn build(&self, req: &Request) -> Result<(VirtioPci, Option<Value>), QmpError> {
        let mut block = None;
        let (dev, legacy): (Box<dyn VirtioDevice>, u16) = match &req.model {
            Model::Blk { node, serial } => {
                let disk = self.registry.attach(node, &req.id)?;
                let b = Blk::new(&req.id, disk, serial, 512, 512).with_queues(self.queues);
                block = Some(b.describe());
                (Box::new(b), 0x1001)
            }
            Model::Net { mac } => {
                let s = mac.as_deref().unwrap_or("52:54:00:12:34:56");
                let m = net::parse_mac(s).ok_or_else(|| generic(format!("Property 'virtio-net-pci.mac' doesn't take value '{}'", esc(s))))?;
                (Box::new(net::Net::new(m)), 0x1000)
            }
            Model::Rng => (Box::new(Rng), 0x1005),
        };
        let mut f = VirtioPci::new(&req.id, dev, self.mem.clone(), self.vm.clone(), req.vectors, req.transitional.then_some(legacy));
        // INTx as a cold-plugged function there: straight on the root bus, swizzled behind a
        // bridge.
        let gsi = match self.bridges.iter().find(|b| b.bus == req.bus) {
            None => intx::gsi(self.machine, req.slot, 1),
            Some(b) => intx::gsi_behind(self.machine, b.slot, req.slot, 1),
        };
        if let Some(gsi) = gsi {
            f = f.with_intx(IntxPin::behind(self.intx.clone(), gsi, req.bus, req.slot, 0));
        }
        Ok((f, block))
    }
}

/// The root-bus slots of `machine` that take hot-plugged devices: none on q35 (`pcie.0` has no
/// hotplug), and on pc every slot that holds neither a chipset function, a class stub (VGA)
/// nor a cold-plugged bridge, as QEMU's DSDT gives `_EJ0` to those slots only. (The buses
/// behind pc's PCI bridges take them in all 32 slots.)
pub(crate) fn slots(machine: Machine, taken: impl IntoIterator<Item = u8>) -> u32 {
    if machine != Machine::Pc {
        return 0;
    }
    taken.into_iter().filter(|s| *s < 32).fold(!0u32, |m, s| m & !(1 << s))
}

/// The hotplug GPE bit, for the VM's PM device.
pub(crate) const GPE_BIT: u8 = pcihp::GPE_BIT;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nodes_open_disks_only_and_refuse_what_is_in_use() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("path");
        // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let r = Registry::default();
        let e = r.blockdev_add(&json!({"node-name": "f", "driver": "raw", "file": {"driver": "file", "filename": fifo}})).expect_err("a FIFO");
        assert!(e.desc.ends_with("not a regular file or block device"), "{e:?}");
        let img = dir.path().join("d.raw");
        std::fs::write(&img, vec![0u8; 4096]).expect("image");
        r.blockdev_add(&json!({"node-name": "d", "driver": "raw", "file": {"driver": "file", "filename": img}})).expect("raw node");
        let e = r.blockdev_add(&json!({"node-name": "d", "driver": "null-co"})).expect_err("duplicate");
        assert_eq!(e.desc, "Duplicate nodes with node-name='d'");
        assert!(r.attach("d", "disk9").is_ok());
        assert_eq!(r.blockdev_del(&json!({"node-name": "d"})).expect_err("in use").desc, "Node d is in use");
        assert!(r.attach("d", "other").is_err(), "a node serves one device");
        r.ejected(vec!["disk9".into()]);
        assert_eq!(r.take_ejected(), ["disk9"]);
        assert!(r.is_gone("disk9"), "a spec device ejected stays out of later boots");
        r.blockdev_del(&json!({"node-name": "d"})).expect("free again");
        let e = r.blockdev_add(&json!({"node-name": "x", "driver": "vvfat"})).expect_err("driver");
        assert_eq!(e.desc, "Parameter 'driver' does not accept value 'vvfat'");
    }
}
