//! `ferry run SPEC` (boot a MachineSpec on Ferry's runtime) and `ferry validate SPEC` (boot it on
//! the runtime or QEMU and watch the console for boot milestones).
mod boot_mode;
mod guest_kernel;
mod milestones;
mod nvram;
mod qemu;
mod sandbox;
mod validate;

use anyhow::{bail, Context};
pub use boot_mode::BootMode;
use ferry_formats::layout::MachineSpec;
use ferry_runtime::{run_machine, ConsoleSink, Controller, ExitReason, VmConfig};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

pub use validate::{validate, ValidateArgs};

/// Boot a converted guest (its MachineSpec JSON) on Ferry's KVM runtime.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The spec written by `ferry convert -o ferry`.
    pub spec: PathBuf,
    /// Serial console destination: a file path, or "-" for stdout.
    #[arg(long, default_value = "-")]
    pub console: String,
    /// Serve a QMP monitor on this unix socket (QEMU's commands and events; on pc machines
    /// `blockdev-add`, `device_add` and `device_del` hot-plug virtio-blk, virtio-net and
    /// virtio-rng through ACPI PCI hotplug, on the root bus and behind the PCI bridge, as
    /// QEMU's i440fx does).
    #[arg(long)]
    pub qmp: Option<PathBuf>,
    /// Start with vCPUs stopped (like QEMU -S); `cont` over QMP starts them.
    #[arg(short = 'S', long)]
    pub paused: bool,
    /// Exit when the guest resets instead of rebooting it.
    #[arg(long)]
    pub no_reboot: bool,
    /// Serve the host end of the virtio-console channel port ("org.ferry.channel.0") on this
    /// unix socket: bytes both ways, connects and hang-ups seen by the guest as port open/close.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Stop the VM after this many seconds.
    #[arg(long)]
    pub timeout: Option<u64>,
    #[command(flatten)]
    pub boot: BootArgs,
    /// Do not advise guest RAM for KSM merging (MADV_MERGEABLE).
    #[arg(long)]
    pub no_ksm: bool,
    /// Do not advise guest RAM for transparent huge pages (MADV_HUGEPAGE).
    #[arg(long)]
    pub no_thp: bool,
    /// What backs guest RAM: anonymous memory, a shared memfd, or a memfd on hugetlbfs
    /// (2 MiB pages the host reserved in vm.nr_hugepages).
    #[arg(long, value_enum, default_value = "anonymous")]
    pub memory_backing: MemoryBacking,
    /// Run without the sandbox (by default the VMM restricts itself with Landlock to the
    /// spec's files and sockets, and each VMM thread with a seccomp filter).
    #[arg(long)]
    pub no_sandbox: bool,
    /// Also let the sandboxed VMM open PATH (a file, or a directory and what is beneath it)
    /// read-write: disks to hot-plug with QMP `blockdev-add`. Repeatable.
    #[arg(long, value_name = "PATH")]
    pub sandbox_allow: Vec<PathBuf>,
}

/// `--memory-backing`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum MemoryBacking {
    Anonymous,
    Memfd,
    Hugetlb,
}

impl RunArgs {
    /// The guest-RAM options these flags ask for.
    fn memory_options(&self) -> ferry_runtime::memory::MemoryOptions {
        use ferry_runtime::memory::Backing;
        let backing = match self.memory_backing {
            MemoryBacking::Anonymous => Backing::Anonymous,
            MemoryBacking::Memfd => Backing::Memfd,
            MemoryBacking::Hugetlb => Backing::Hugetlb,
        };
        ferry_runtime::memory::MemoryOptions { thp: !self.no_thp, ksm: !self.no_ksm, backing }
    }
}

/// How to boot the spec (shared by `run` and `validate`).
#[derive(clap::Args, Clone, Debug)]
pub struct BootArgs {
    /// firmware: SeaBIOS/OVMF then the guest's boot loader (OVMF's variables: NAME.vars.fd
    /// beside the spec, created from the build's VARS template on first start);
    /// direct: the kernel, initrd and command line the spec records (read from the guest's
    /// disk); auto: direct for a spec naming host files and, on Ferry's runtime, for any spec
    /// recording a kernel (its fast path), else firmware where its files exist.
    #[arg(long, value_enum, default_value = "auto")]
    pub boot: BootMode,
    /// Firmware file (default: SeaBIOS bios-256k.bin or OVMF from the distribution).
    #[arg(long)]
    pub firmware: Option<PathBuf>,
    /// Append what the firmware writes to its debug console (I/O port 0x402, QEMU's
    /// isa-debugcon) to this file.
    #[arg(long)]
    pub firmware_log: Option<PathBuf>,
}

/// The runtime configuration of `spec` (read from `spec_path`) booted as `boot` asks: a
/// direct boot of the guest's own kernel reads it (and its initrd) from the spec's disks
/// here; a UEFI firmware boot opens the VM's variable store beside the spec.
pub fn runtime_config(spec: &MachineSpec, spec_path: &Path, boot: &BootArgs) -> anyhow::Result<VmConfig> {
    if boot_mode::resolve(spec, boot.boot, false)? == BootMode::Firmware {
        let fw = boot_mode::firmware_file(spec, boot.firmware.as_deref())?;
        let uefi = spec.firmware == ferry_formats::layout::Firmware::Uefi;
        if uefi {
            nvram::refuse_smm(&fw)?;
        }
        let disks = guest_kernel::open_disks(spec)?;
        if let Some(why) = boot_mode::missing_boot_loader(spec, &disks) {
            bail!("{why}");
        }
        // Bounded read: an image over the largest size QEMU maps is refused by its size.
        let mut data = Vec::new();
        std::fs::File::open(&fw)
            .and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, ferry_runtime::firmware::MAX_IMAGE as u64 + 1), &mut data))
            .with_context(|| format!("firmware file {}: cannot read", fw.display()))?;
        let image = ferry_runtime::firmware::FirmwareImage {
            name: fw.display().to_string(),
            data: data.into(),
            debugcon: boot.firmware_log.clone(),
            boot_order: ferry_runtime::firmware::boot_order(&spec.devices, &spec.bridges),
            vars: if uefi { Some(uefi_vars(spec, spec_path, &fw)?) } else { None },
        };
        return Ok(VmConfig::with_firmware(spec, image)?);
    }
    let mut cfg = VmConfig::from_spec(spec)?;
    if let Some(b) = spec.boot.as_ref().filter(|b| b.guest_root.is_some()) {
        cfg.images = Some(guest_kernel::read(spec, b)?);
    } else {
        // Host files are read once, as QEMU reads -kernel/-initrd once: a guest reboot loads
        // the same bytes, even if the file was replaced meanwhile (the sandbox would refuse
        // the new file, and a half-written one would be worse).
        let limit = cfg.memory_mib << 20;
        let kernel = host_image(&cfg.kernel, limit)?;
        let initrd = cfg.initrd.as_deref().map(|p| host_image(p, limit)).transpose()?;
        cfg.images = Some((kernel, initrd));
    }
    Ok(cfg)
}

/// The VM's UEFI variable store (created from the OVMF build's template on first start),
/// shared with the emitted QEMU script and `validate --engine qemu`.
fn uefi_vars(spec: &MachineSpec, spec_path: &Path, code: &Path) -> anyhow::Result<ferry_runtime::firmware::Nvram> {
    let store = nvram::path(spec_path, spec)?;
    let template = boot_mode::ovmf_vars_template(code)
        .with_context(|| format!("firmware file not found: the OVMF variable store beside {} (install ovmf)", code.display()))?;
    let file = nvram::open(&store, &template)?;
    Ok(ferry_runtime::firmware::Nvram { name: store.display().to_string(), file: std::sync::Arc::new(file) })
}

/// Reads a host kernel or initrd, refusing one larger than the guest's RAM by its size.
fn host_image(path: &Path, limit: u64) -> anyhow::Result<ferry_runtime::LoadedImage> {
    use std::io::Read;
    let name = path.display().to_string();
    let f = std::fs::File::open(path).with_context(|| name.clone())?;
    let mut data = Vec::new();
    f.take(limit + 1).read_to_end(&mut data).with_context(|| name.clone())?;
    if data.len() as u64 > limit {
        bail!("{name}: invalid size: over the guest's {} MiB of RAM", limit >> 20);
    }
    Ok(ferry_runtime::LoadedImage { name, data: data.into() })
}

/// Reads and parses a spec, naming the file in errors.
pub fn load_spec(path: &Path) -> anyhow::Result<MachineSpec> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read spec", path.display()))?;
    MachineSpec::from_json(&text).map_err(|e| anyhow::anyhow!("{}: invalid spec: {e}", path.display()))
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let spec = load_spec(&args.spec)?;
    let mut cfg = runtime_config(&spec, &args.spec, &args.boot).with_context(|| format!("{}", args.spec.display()))?;
    cfg.console = if args.console == "-" { ConsoleSink::Stdout } else { ConsoleSink::File(PathBuf::from(&args.console)) };
    cfg.no_reboot = args.no_reboot;
    cfg.channel_socket = args.console_socket.clone();
    cfg.memory = args.memory_options();
    if !args.no_sandbox {
        let policy = sandbox::policy(&spec, &cfg, &args)?;
        sandbox::enter(&policy)?;
    }
    let ctl = Controller::new(args.paused);
    let _qmp = match &args.qmp {
        Some(p) => Some(ferry_runtime::qmp::serve(p, ctl.clone()).with_context(|| format!("{}: cannot serve QMP", p.display()))?),
        None => None,
    };
    let out = run_machine(&cfg, &ctl, args.timeout.map(Duration::from_secs))?;
    for (code, us) in &out.markers {
        eprintln!("ferry run: boot marker {code:#04x} at {:.3} ms", *us as f64 / 1000.0);
    }
    eprintln!("ferry run: {} stopped after {:.3} s: {:?}", spec.name, out.elapsed.as_secs_f64(), out.reason);
    Ok(match out.reason {
        ExitReason::DebugExit(c) => ExitCode::from(c),
        ExitReason::Shutdown | ExitReason::Quit | ExitReason::Reset | ExitReason::HostReset => ExitCode::SUCCESS,
        ExitReason::Timeout => ExitCode::from(124),
        ExitReason::Error(e) => anyhow::bail!("{}: {e}", args.spec.display()),
    })
}
