//! `ferry validate`: boot a spec and check the console reaches each boot milestone in time.
use super::milestones::{progress, select, Milestone};
use super::boot_mode::{self, BootMode};
use super::{guest_kernel, load_spec, qemu, BootArgs};
use qemu::QemuBoot;
use anyhow::Context;
use ferry_runtime::{run_machine, ConsoleSink, Controller, ExitReason, VmConfig};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// Ferry's runtime where hardware KVM is present, else QEMU.
    Auto,
    /// Ferry's own KVM runtime.
    Ferry,
    /// qemu-system-x86_64 (KVM where hardware KVM is present, else TCG).
    Qemu,
}

/// Boot a converted guest and check it reaches its boot milestones.
#[derive(clap::Args)]
pub struct ValidateArgs {
    /// The spec written by `ferry convert -o ferry`.
    pub spec: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    pub engine: Engine,
    /// Seconds before the boot counts as failed.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Milestones to require, in order: kernel, virtio, root, init, login, marker.
    #[arg(long, default_value = "kernel,virtio,root,init,login")]
    pub expect: String,
    /// Console text that proves the "marker" milestone (appended to --expect if absent there).
    #[arg(long)]
    pub marker: Option<String>,
    /// Keep the console log here (default: a temporary file).
    #[arg(long)]
    pub console_log: Option<PathBuf>,
    /// Print a JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub boot: BootArgs,
}

/// How QEMU boots `spec` (read from `spec_path`); temporary files (the guest's kernel read
/// from its disk) live in `tmp`. OVMF gets the VM's own variable store, as the emitted script
/// and `ferry run` use it.
fn qemu_boot(spec: &ferry_formats::layout::MachineSpec, spec_path: &std::path::Path, boot: &BootArgs, tmp: &std::path::Path) -> anyhow::Result<QemuBoot> {
    let fw = boot_mode::firmware_file(spec, boot.firmware.as_deref());
    let mode = boot_mode::resolve(spec, boot.boot, fw.is_ok())?;
    if mode == BootMode::Firmware {
        let code = fw?;
        let disks = guest_kernel::open_disks(spec)?;
        if let Some(why) = boot_mode::missing_boot_loader(spec, &disks) {
            anyhow::bail!("{why}");
        }
        let vars = match spec.firmware {
            ferry_formats::layout::Firmware::Bios => None,
            ferry_formats::layout::Firmware::Uefi => {
                let t = boot_mode::ovmf_vars_template(&code).with_context(|| {
                    format!("firmware file not found: the OVMF variable store beside {} (install ovmf)", code.display())
                })?;
                let v = super::nvram::path(spec_path, spec)?;
                drop(super::nvram::open(&v, &t)?);
                Some(v)
            }
        };
        return Ok(QemuBoot::Firmware { code, vars });
    }
    let Some(b) = &spec.boot else { anyhow::bail!("the spec records no kernel to boot directly") };
    if b.guest_root.is_none() {
        return Ok(QemuBoot::Direct { kernel: b.kernel.clone(), initrd: b.initrd.clone(), cmdline: b.cmdline.clone() });
    }
    let (k, rd) = guest_kernel::read(spec, b)?;
    let kernel = tmp.join("kernel");
    std::fs::write(&kernel, &k.data).with_context(|| format!("{}: write", kernel.display()))?;
    let initrd = match rd {
        Some(rd) => {
            let p = tmp.join("initrd");
            std::fs::write(&p, &rd.data).with_context(|| format!("{}: write", p.display()))?;
            Some(p)
        }
        None => None,
    };
    Ok(QemuBoot::Direct { kernel, initrd, cmdline: b.cmdline.clone() })
}

/// Hardware-assisted KVM: /dev/kvm usable, not kvm_pvm, and the CPU has VMX or SVM.
pub fn hardware_kvm() -> bool {
    let dev = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .map(|c| c.lines().filter(|l| l.starts_with("flags")).any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm")))
        .unwrap_or(false);
    dev && cpu && !ferry_runtime::host_is_pvm()
}

enum Prepared {
    Qemu(QemuBoot),
    Ferry(Box<VmConfig>),
}

enum Running {
    Ferry(Arc<Controller>, std::thread::JoinHandle<anyhow::Result<ExitReason>>),
    Qemu(Child),
}

impl Running {
    fn finished(&mut self) -> bool {
        match self {
            Running::Ferry(_, h) => h.is_finished(),
            Running::Qemu(c) => !matches!(c.try_wait(), Ok(None)),
        }
    }
    fn stop(self) -> String {
        match self {
            Running::Ferry(ctl, h) => {
                ctl.request(ExitReason::Quit);
                match h.join() {
                    Ok(Ok(r)) => format!("{r:?}"),
                    Ok(Err(e)) => format!("error: {e:#}"),
                    Err(_) => "runtime thread panicked".into(),
                }
            }
            Running::Qemu(mut c) => {
                let _ = c.kill();
                let st = c.wait();
                let mut err = String::new();
                if let Some(mut e) = c.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                format!("qemu {}: {}", st.map(|s| s.to_string()).unwrap_or_default(), err.trim())
            }
        }
    }
}

pub fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let spec = load_spec(&args.spec)?;
    let mut expect = args.expect.clone();
    if args.marker.is_some() && !expect.split(',').any(|s| s.trim() == "marker") {
        expect.push_str(",marker");
    }
    let milestones: Vec<Milestone> = select(&expect, args.marker.as_deref()).map_err(anyhow::Error::msg)?;
    let hw = hardware_kvm();
    let engine = match args.engine {
        Engine::Auto if hw => Engine::Ferry,
        Engine::Auto => Engine::Qemu,
        e => e,
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let tmp_log = std::env::temp_dir().join(format!("ferry-validate-{}-{nanos}.log", std::process::id()));
    let log = args.console_log.clone().unwrap_or_else(|| tmp_log.clone());
    std::fs::write(&log, b"").with_context(|| format!("{}: cannot create console log", log.display()))?;
    let engine_name = if engine == Engine::Qemu { if hw { "qemu-kvm" } else { "qemu-tcg" } } else { "ferry" };
    if engine == Engine::Qemu && !on_path("qemu-system-x86_64") {
        if args.console_log.is_none() {
            let _ = std::fs::remove_file(&tmp_log);
        }
        anyhow::bail!(
            "{}: --engine qemu needs qemu-system-x86_64, which is not installed: install the qemu-system-x86 package (apt-get install qemu-system-x86)",
            args.spec.display()
        );
    }
    let tmp = tempfile::Builder::new().prefix("ferry-validate-").tempdir().context("cannot create a temporary directory")?;
    let prepared = match engine {
        Engine::Qemu => qemu_boot(&spec, &args.spec, &args.boot, tmp.path()).map(Prepared::Qemu),
        _ => super::runtime_config(&spec, &args.spec, &args.boot).map(|c| Prepared::Ferry(Box::new(c))),
    };
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => {
            if args.json {
                let report = serde_json::json!({
                    "spec": args.spec, "engine": engine_name, "passed": false,
                    "failed_milestone": milestones.first().map(|m| m.name.clone()), "error": crate::error_line(&e),
                });
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            if args.console_log.is_none() {
                let _ = std::fs::remove_file(&tmp_log);
            }
            eprintln!("ferry validate: {}: cannot boot {} on {engine_name}: {}", args.spec.display(), spec.name, crate::error_line(&e));
            return Ok(ExitCode::from(1));
        }
    };
    let boot_name = match &prepared {
        Prepared::Qemu(QemuBoot::Firmware { .. }) => "firmware",
        Prepared::Ferry(cfg) if cfg.firmware.is_some() => "firmware",
        _ => "direct",
    };
    let start = Instant::now();
    let mut running = match prepared {
        Prepared::Qemu(boot) => {
            let mut cmd = Command::new("qemu-system-x86_64");
            cmd.args(qemu::args(&spec, &boot)?)
                .args(["-accel", if hw { "kvm" } else { "tcg" }, "-no-reboot"])
                .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=4"])
                .args(match &args.boot.firmware_log {
                    Some(p) => vec!["-chardev".to_string(), format!("file,id=fwlog,path={}", p.display()), "-device".into(), "isa-debugcon,iobase=0x402,chardev=fwlog".into()],
                    None => vec![],
                })
                .arg("-serial")
                .arg(format!("file:{}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let child = cmd.spawn().map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    anyhow::anyhow!(
                        "{}: --engine qemu needs qemu-system-x86_64, which is not installed: install the qemu-system-x86 package (apt-get install qemu-system-x86)",
                        args.spec.display()
                    )
                } else {
                    anyhow::anyhow!("{}: cannot start qemu-system-x86_64: {e}", args.spec.display())
                }
            })?;
            Running::Qemu(child)
        }
        Prepared::Ferry(mut cfg) => {
            cfg.console = ConsoleSink::File(log.clone());
            cfg.no_reboot = true;
            let ctl = Controller::new(false);
            let c2 = ctl.clone();
            let h = std::thread::spawn(move || Ok(run_machine(&cfg, &c2, None)?.reason));
            Running::Ferry(ctl, h)
        }
    };
    let mut times: Vec<Option<f64>> = vec![None; milestones.len()];
    let mut reached = 0;
    let deadline = Duration::from_secs(args.timeout);
    let mut console: String;
    loop {
        let done = running.finished();
        console = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
        let now = progress(&milestones, &console);
        for t in times.iter_mut().take(now).skip(reached) {
            *t = Some(start.elapsed().as_secs_f64());
        }
        reached = now;
        if reached == milestones.len() || done || start.elapsed() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let end = running.stop();
    if args.console_log.is_none() {
        let _ = std::fs::remove_file(&tmp_log);
    }
    let failed = milestones.get(reached);
    if args.json {
        let ms: Vec<serde_json::Value> = milestones
            .iter()
            .zip(&times)
            .map(|(m, t)| serde_json::json!({"name": m.name, "patterns": m.patterns, "reached": t.is_some(), "seconds": t}))
            .collect();
        let report = serde_json::json!({
            "spec": args.spec, "engine": engine_name, "boot": boot_name, "passed": failed.is_none(),
            "failed_milestone": failed.map(|m| m.name.clone()), "elapsed_seconds": elapsed,
            "timeout_seconds": args.timeout, "milestones": ms, "engine_exit": end,
            "console_log": args.console_log,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    match failed {
        None => {
            eprintln!("ferry validate: {} passed on {engine_name} ({boot_name} boot) in {elapsed:.1} s", spec.name);
            Ok(ExitCode::SUCCESS)
        }
        Some(m) => {
            let mut last: Vec<&str> = console.lines().rev().filter(|l| !l.trim().is_empty()).take(5).collect();
            last.reverse();
            let last = if last.is_empty() { "(the console stayed empty)".to_string() } else { format!("{last:?}") };
            eprintln!(
                "ferry validate: {}: milestone {:?} ({}) not reached on {engine_name} after {elapsed:.1} s (timeout {} s; engine: {end}); last console lines: {last}",
                spec.name,
                m.name,
                m.patterns.join(" | "),
                args.timeout
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// Whether `name` is an executable file in one of `$PATH`'s directories.
fn on_path(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| std::fs::metadata(d.join(name)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
    })
}
