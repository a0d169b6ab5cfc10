//! `ferry run SPEC` (boot a MachineSpec on Ferry's runtime) and `ferry validate SPEC` (boot it on
//! the runtime or QEMU and watch the console for boot milestones).
mod milestones;
mod qemu;
mod validate;

use anyhow::Context;
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
    /// Serve a QMP monitor on this unix socket.
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
}

/// Reads and parses a spec, naming the file in errors.
pub fn load_spec(path: &Path) -> anyhow::Result<MachineSpec> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read spec", path.display()))?;
    MachineSpec::from_json(&text).map_err(|e| anyhow::anyhow!("{}: invalid spec: {e}", path.display()))
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let spec = load_spec(&args.spec)?;
    let mut cfg = VmConfig::from_spec(&spec).with_context(|| format!("{}", args.spec.display()))?;
    cfg.console = if args.console == "-" { ConsoleSink::Stdout } else { ConsoleSink::File(PathBuf::from(&args.console)) };
    cfg.no_reboot = args.no_reboot;
    cfg.channel_socket = args.console_socket.clone();
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
