//! `ferry convert`: read a guest description, lay the guest out on a machine profile, copy
//! its disks and write the descriptions (libvirt XML, QEMU script, Ferry spec).
//!
//! Order: read the description, lay it out, open the source disks under copy-on-write
//! overlays and convert the guest on them ([`linux`]), copy each overlay to its output in one
//! pass ([`copy`]), write the descriptions.

mod cache;
pub(crate) mod copy;
mod in_place;
pub(crate) mod input;
pub(crate) mod linux;
mod network;
pub(crate) mod root;
mod volumes;

pub use copy::CopyJob;

use crate::{image_choices, output};
use ferry_formats::convert::OutputFormat;
use ferry_formats::qcow2::Preallocation;
use anyhow::{bail, Context};
use clap::ValueEnum;
use ferry_formats::disk::BlockDevice;
use ferry_formats::layout::{allocate, OutputPlan, Profile, DEFAULT_PROFILE};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `-i`: where the guest comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InputMode {
    /// A VMware `.vmx` file.
    Vmx,
    /// An OVA archive (tar, gzip/xz-compressed tar, zip) or a directory holding an `.ovf`.
    Ova,
    /// A libvirt domain XML file (Xen, VMware ESX, KVM).
    Libvirtxml,
    /// A Xen xl.cfg or legacy xm configuration.
    Xen,
    /// Bare disk images.
    #[value(alias = "local")]
    Disk,
}

/// `-o`: what to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputMode {
    /// Disks plus NAME.xml, NAME.sh and NAME.ferry.json.
    #[value(alias = "disk")]
    Local,
    /// Disks plus the QEMU launch script NAME.sh (its arguments are passed on to QEMU, e.g.
    /// `NAME.sh -display none -kernel FILE`; FERRY_QEMU_ACCEL picks the accelerator).
    Qemu,
    /// Disks plus the libvirt domain XML NAME.xml.
    LibvirtXml,
    /// Disks plus Ferry's runtime spec NAME.ferry.json.
    Ferry,
}

#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// Input mode.
    #[arg(short = 'i', long = "input-mode", value_enum, default_value = "vmx")]
    pub input: InputMode,
    /// Input format for `-i disk` (raw, qcow2, vmdk); probed when absent.
    #[arg(long = "input-format")]
    pub input_format: Option<String>,
    /// The guest: a .vmx, .ova or directory, XML file, xl/xm config, or disk images.
    #[arg(required = true)]
    pub source: Vec<PathBuf>,
    /// Output mode.
    #[arg(short = 'o', long = "output-mode", value_enum, default_value = "local")]
    pub output: OutputMode,
    /// Output directory (-os).
    #[arg(long = "output-storage")]
    pub output_storage: Option<PathBuf>,
    /// Output disk format (-of).
    #[arg(long = "output-format", value_parser = image_choices::format_parser(), default_value = "qcow2")]
    pub output_format: OutputFormat,
    /// Output allocation (-oa).
    #[arg(long = "output-allocation", value_parser = image_choices::allocation_parser(), default_value = "sparse")]
    pub output_allocation: Preallocation,
    /// Rename the guest (-on).
    #[arg(long = "output-name")]
    pub output_name: Option<String>,
    /// Machine profile (guest ABI) to lay the guest out on.
    #[arg(long, default_value = DEFAULT_PROFILE)]
    pub profile: String,
    /// Map a NIC by MAC: `MAC:network:NAME` or `MAC:bridge:NAME`.
    #[arg(long = "mac")]
    pub mac: Vec<String>,
    /// Map source networks: `[in:]out`.
    #[arg(short = 'n', long = "network")]
    pub network: Vec<String>,
    /// Map source bridges: `[in:]out`.
    #[arg(short = 'b', long = "bridge")]
    pub bridge: Vec<String>,
    /// Directory holding VMware datastores as subdirectories (`[ds] p` → DIR/ds/p).
    #[arg(long = "datastore-dir")]
    pub datastore_dir: Option<PathBuf>,
    /// One datastore's local directory: `NAME=DIR` (repeatable).
    #[arg(long = "datastore")]
    pub datastore: Vec<String>,
    /// Print the parsed source and stop.
    #[arg(long = "print-source")]
    pub print_source: bool,
    /// Print JSON: the parsed source with --print-source, else a report of the conversion
    /// (plan, changes, rebuilt initramfs, output files) instead of the human-readable plan.
    #[arg(long)]
    pub json: bool,
    /// Inspect the guest and print the conversion plan; change and write nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Write only the descriptions, naming the disks they would reference; copy nothing.
    #[arg(long = "no-copy")]
    pub no_copy: bool,
    /// Convert the guest inside its disk images (qcow2 or raw, e.g. synced by `ferry img
    /// sync`): only the changed blocks are written back, nothing is copied, and the
    /// descriptions name the images themselves.
    #[arg(long = "in-place", conflicts_with_all = ["no_copy", "dry_run"])]
    pub in_place: bool,
    /// Copy the disks without converting the guest (the base copy of a warm migration;
    /// `ferry img sync` then applies snapshot deltas and `--in-place` converts at cutover).
    #[arg(long = "copy-only", conflicts_with_all = ["no_copy", "in_place"])]
    pub copy_only: bool,
    /// Show a progress bar of the disk copy on stderr even when it is not a terminal (it is
    /// shown on a terminal anyway); stdout, and so --json, is unaffected.
    #[arg(short = 'p', long)]
    pub progress: bool,
    /// Which Linux root to convert when the disks hold several: `single` (the default: more
    /// than one is an error listing them), `first`, a device as inspection names it
    /// (`/dev/sdb1`, `/dev/vg0/root`), or `ask` (prompt when standard input is a terminal,
    /// else as `single`). As virt-v2v's --root.
    #[arg(long, default_value = "single", value_name = "ask|single|first|DEVICE")]
    pub root: root::RootChoice,
}

/// Writes `data` to `path` through a temporary name in the same directory.
pub fn write_atomic(path: &Path, data: &[u8], executable: bool) -> anyhow::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.part"));
    std::fs::write(&tmp, data).with_context(|| format!("{}: write", tmp.display()))?;
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("{}: chmod", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("{}: rename to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// virt-v2v's disk naming: sda, sdb, ... sdz, sdaa.
fn disk_suffix(i: usize) -> String {
    output::drive_name("sd", i)
}

pub fn run(args: ConvertArgs) -> anyhow::Result<ExitCode> {
    let mut vm = input::read(&args)?;
    if args.print_source {
        if args.json {
            println!("{}", vm.to_json());
        } else {
            print!("{}", vm.print_source());
        }
        return Ok(ExitCode::SUCCESS);
    }
    for w in &vm.warnings {
        eprintln!("ferry: warning: {w}");
    }
    let name = args.output_name.clone().unwrap_or_else(|| vm.name.clone());
    if name.is_empty() || name.contains(['/', '\0']) || name.starts_with('.') {
        bail!("output name {name:?} cannot be used as a file name (use -on NAME)");
    }
    vm.name = name.clone();
    let Some(dir) = args.output_storage.clone() else { bail!("-o {:?} needs -os DIR", args.output) };
    if !dir.is_dir() {
        bail!("{}: output storage is not a directory", dir.display());
    }
    let dir = dir.canonicalize().with_context(|| format!("{}: canonicalize", dir.display()))?;
    let profile = Profile::builtin(&args.profile)?;
    let nic_backends = network::map_nics(&vm, &args.network, &args.bridge, &args.mac)?;
    let mut disk_files: Vec<PathBuf> = (0..vm.disks.len()).map(|i| dir.join(format!("{name}-{}", disk_suffix(i)))).collect();
    if args.in_place {
        let probe: Vec<CopyJob> = vm.disks.iter().zip(&disk_files).map(|(d, out)| CopyJob::new(d, out.clone(), args.output_format, args.output_allocation)).collect();
        disk_files = in_place::targets(&probe)?;
    }
    let plan = OutputPlan {
        name: name.clone(),
        disk_files: disk_files.clone(),
        disk_format: match (args.in_place, disk_files.first()) {
            (true, Some(first)) => ferry_formats::disk::probe_format(first)?.name().into(),
            _ => image_choices::format_name(args.output_format).into(),
        },
        nic_backends,
    };
    let layout = allocate(&vm, &profile, &plan)?;
    let started = std::time::Instant::now();
    let mut report = serde_json::json!({ "name": name });
    if !args.no_copy || args.dry_run {
        let jobs: Vec<CopyJob> = vm
            .disks
            .iter()
            .zip(&disk_files)
            .map(|(d, out)| CopyJob::new(d, out.clone(), args.output_format, args.output_allocation))
            .collect();
        for job in &jobs {
            copy::check_resolved(&job.source)?;
        }
        let overlays = linux::open_overlays(&jobs, &dir)?;
        // --copy-only: the disks as they are (the base copy of a warm migration).
        if !args.copy_only {
            let opts = linux::Options { dry_run: args.dry_run, print: !args.json, root: args.root.clone() };
            let guest = linux::convert_guest(&vm, &layout, &overlays, &opts)?;
            for w in &guest.warnings {
                eprintln!("ferry: warning: {w}");
            }
            report["guest"] = serde_json::to_value(&guest)?;
        }
        if args.dry_run {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            return Ok(ExitCode::SUCCESS);
        }
        let mut disks = Vec::new();
        if args.in_place {
            for (overlay, path) in overlays.iter().zip(&disk_files) {
                let edited = overlay.edited();
                let t = std::time::Instant::now();
                let bytes = in_place::write_back(&**overlay, &edited, path)?;
                disks.push(serde_json::json!({ "in-place": path, "written-bytes": bytes, "ranges": edited.len(), "seconds": t.elapsed().as_secs_f64() }));
            }
        }
        // One bar over all disks: each disk's progress counts from the sizes before it.
        let total: u64 = overlays.iter().map(|o| o.size()).sum();
        let bar = crate::progress::bar(total, args.progress);
        let mut before = 0u64;
        for (job, overlay) in jobs.iter().zip(&overlays).filter(|_| !args.in_place) {
            let t = std::time::Instant::now();
            let progress = |done: u64, _total: u64| {
                if let Some(b) = &bar {
                    b.set_position(before + done);
                }
            };
            let stats = copy::copy_device(&**overlay, job, &job.output, &progress)?;
            before += overlay.size();
            disks.push(serde_json::json!({
                "source": job.source.describe(), "output": job.output, "format": image_choices::format_name(job.format),
                "virtual-size": stats.virtual_size, "data-clusters": stats.data_clusters,
                "zero-clusters": stats.zero_clusters, "edited-bytes": overlay.overlay_bytes(),
                "seconds": t.elapsed().as_secs_f64(),
            }));
        }
        if let Some(b) = &bar {
            b.finish();
        }
        report["disks"] = serde_json::Value::Array(disks);
    }
    let (xml, sh, json) = match args.output {
        OutputMode::Local => (true, true, true),
        OutputMode::Qemu => (false, true, false),
        OutputMode::LibvirtXml => (true, false, false),
        OutputMode::Ferry => (false, false, true),
    };
    if xml {
        write_atomic(&dir.join(format!("{name}.xml")), output::libvirt_xml(&layout).as_bytes(), false)?;
    }
    if sh {
        write_atomic(&dir.join(format!("{name}.sh")), output::qemu_script(&layout).as_bytes(), true)?;
    }
    if json {
        write_atomic(&dir.join(format!("{name}.ferry.json")), output::ferry_spec(&layout).as_bytes(), false)?;
    }
    report["seconds"] = serde_json::json!(started.elapsed().as_secs_f64());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}
