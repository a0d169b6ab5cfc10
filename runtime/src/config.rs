//! What to boot: a [`VmConfig`], usually built from a `MachineSpec`.
use crate::cpuid::CpuTopology;
use ferry_formats::layout::{MachineSpec, Profile, SpecBridge, SpecDevice};
use std::path::PathBuf;
use std::sync::Arc;

/// A kernel or initrd already read into memory (from the guest's own disk), with the name
/// errors give it (`/boot/vmlinuz-6.1.0 on /dev/sda1`).
#[derive(Clone, Debug)]
pub struct LoadedImage {
    pub name: String,
    pub data: Arc<[u8]>,
}

/// Where the serial console goes.
#[derive(Clone, Debug, Default)]
pub enum ConsoleSink {
    /// Only captured in memory.
    #[default]
    None,
    /// Copied to the process's stdout.
    Stdout,
    /// Appended to a file.
    File(PathBuf),
}

/// Everything the VMM needs.
#[derive(Clone, Debug)]
pub struct VmConfig {
    /// Guest name (SMBIOS product, logs).
    pub name: String,
    /// RAM in MiB.
    pub memory_mib: u64,
    /// vCPU topology (1..=64 vCPUs).
    pub topology: CpuTopology,
    /// Machine profile (its chipset functions are built from its data).
    pub profile: Profile,
    /// Kernel image (PVH ELF or bzImage): a host file, or with `guest_root` a path inside the
    /// guest whose bytes the caller puts in `images`.
    pub kernel: PathBuf,
    /// Optional initrd (like `kernel`).
    pub initrd: Option<PathBuf>,
    /// The guest root filesystem `kernel` and `initrd` live on (`UUID=...`); none: host files.
    pub guest_root: Option<String>,
    /// The kernel and initrd read from the guest's disks (by the caller: the runtime does not
    /// read filesystems); required when `guest_root` is set.
    pub images: Option<(LoadedImage, Option<LoadedImage>)>,
    /// Kernel command line.
    pub cmdline: String,
    /// PCIe root ports / PCI bridges in front of buses 1.. (spec `bridges`).
    pub bridges: Vec<SpecBridge>,
    /// Devices with their pinned addresses.
    pub devices: Vec<SpecDevice>,
    /// SMBIOS type-1 UUID.
    pub smbios_uuid: Option<String>,
    /// Serial console destination.
    pub console: ConsoleSink,
    /// Exit instead of rebooting when the guest resets.
    pub no_reboot: bool,
    /// Unix socket serving the host end of the first virtio-console's port 1
    /// ("org.ferry.channel.0"); none leaves the port without a host end.
    pub channel_socket: Option<PathBuf>,
    /// How guest RAM is backed and advised.
    pub memory: crate::memory::MemoryOptions,
    /// Boot through this firmware (SeaBIOS) instead of loading a kernel.
    pub firmware: Option<crate::firmware::FirmwareImage>,
}

/// A spec the runtime cannot boot.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A field has a value the runtime does not support.
    #[error("invalid {0} {1}: {2}")]
    Invalid(&'static str, String, String),
}

impl VmConfig {
    /// Builds the configuration of a spec with direct kernel boot.
    pub fn from_spec(spec: &MachineSpec) -> Result<Self, ConfigError> {
        let mut cfg = Self::machine(spec)?;
        let boot = spec.boot.as_ref().ok_or_else(|| {
            ConfigError::Invalid(
                "boot",
                "none".into(),
                "the spec records no kernel to boot directly (convert the guest again with `ferry convert -o ferry` to record its kernel)".into(),
            )
        })?;
        cfg.kernel = boot.kernel.clone();
        cfg.initrd = boot.initrd.clone();
        cfg.guest_root = boot.guest_root.clone();
        cfg.cmdline = boot.cmdline.clone();
        Ok(cfg)
    }

    /// The machine of `spec` booted through `firmware` (the spec's `boot` is not used).
    pub fn with_firmware(spec: &MachineSpec, firmware: crate::firmware::FirmwareImage) -> Result<Self, ConfigError> {
        crate::firmware::check_image(&firmware.name, &firmware.data, firmware.vars.as_ref().map(|v| (v.name.as_str(), v.file.metadata().map_or(0, |m| m.len() as usize))))
            .map_err(|e| ConfigError::Invalid("firmware", firmware.name.clone(), e.to_string()))?;
        let mut cfg = Self::machine(spec)?;
        cfg.firmware = Some(firmware);
        Ok(cfg)
    }

    fn machine(spec: &MachineSpec) -> Result<Self, ConfigError> {
        let profile = Profile::builtin(&spec.profile).map_err(|e| ConfigError::Invalid("profile", spec.profile.clone(), e.to_string()))?;
        crate::pci::chipset::functions(&profile).map_err(|e| ConfigError::Invalid("profile", spec.profile.clone(), e.to_string()))?;
        if crate::pci::Machine::of(&profile).is_none() {
            return Err(ConfigError::Invalid("profile", spec.profile.clone(), format!("machine {:?} is not q35 or pc", profile.machine)));
        }

        let topology = match spec.topology {
            Some(t) => CpuTopology { sockets: t.sockets, cores: t.cores, threads: t.threads },
            None => CpuTopology::flat(spec.vcpus),
        };
        if topology.vcpus() != spec.vcpus || !(1..=64).contains(&spec.vcpus) {
            return Err(ConfigError::Invalid("vcpus", spec.vcpus.to_string(), "must be 1..=64 and equal sockets*cores*threads".into()));
        }
        if !(16..=1 << 20).contains(&spec.memory_mib) {
            return Err(ConfigError::Invalid("memory_mib", spec.memory_mib.to_string(), "must be 16..=1048576".into()));
        }
        check_addresses(spec)?;
        Ok(VmConfig {
            name: spec.name.clone(),
            memory_mib: spec.memory_mib,
            topology,
            profile,
            kernel: PathBuf::new(),
            initrd: None,
            guest_root: None,
            images: None,
            cmdline: String::new(),
            bridges: spec.bridges.clone(),
            devices: spec.devices.clone(),
            smbios_uuid: spec.smbios_uuid.clone(),
            console: ConsoleSink::None,
            no_reboot: false,
            channel_socket: None,
            memory: Default::default(),
            firmware: None,
        })
    }
}

/// Bridges of a kind the runtime serves, on the root bus, each in front of its own bus; every
/// device on the root bus or behind a bridge (slot 0 only behind a PCIe root port).
fn check_addresses(spec: &MachineSpec) -> Result<(), ConfigError> {
    let valid = |a: &ferry_formats::layout::PciAddr| a.slot < 32 && a.function < 8;
    let mut buses = std::collections::BTreeMap::new();
    for b in &spec.bridges {
        let Some(kind) = crate::pci::BridgeKind::of(&b.kind) else {
            return Err(ConfigError::Invalid("kind", format!("{:?}", b.kind), format!("bridge {}: the runtime serves pcie-root-port and pci-bridge only", b.id)));
        };
        if b.addr.bus != 0 || !valid(&b.addr) {
            return Err(ConfigError::Invalid("addr", b.addr.to_string(), format!("bridge {}: bridges must sit on the root bus", b.id)));
        }
        if b.bus == 0 || buses.insert(b.bus, kind).is_some() {
            return Err(ConfigError::Invalid("bus", b.bus.to_string(), format!("bridge {}: bus 0 or a bus another bridge already serves", b.id)));
        }
    }
    for d in &spec.devices {
        if !valid(&d.addr) {
            return Err(ConfigError::Invalid("addr", d.addr.to_string(), format!("device {}: slot or function out of range", d.id)));
        }
        match (d.addr.bus, buses.get(&d.addr.bus)) {
            (0, _) => {}
            (_, None) => return Err(ConfigError::Invalid("addr", d.addr.to_string(), format!("device {}: no bridge in the spec serves bus {}", d.id, d.addr.bus))),
            (_, Some(crate::pci::BridgeKind::RootPort)) if d.addr.slot != 0 => {
                return Err(ConfigError::Invalid("addr", d.addr.to_string(), format!("device {}: a PCIe root port has slot 0 only", d.id)));
            }
            _ => {}
        }
    }
    Ok(())
}
