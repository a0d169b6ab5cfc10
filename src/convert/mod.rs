//! `ferry convert`: read a guest description, lay the guest out on a machine profile, copy
//! its disks and write the descriptions (libvirt XML, QEMU script, Ferry spec).
//!
//! Order: read the description, lay it out, open the source disks under copy-on-write
//! overlays and convert the guest on them ([`linux`]), copy each overlay to its output in one
//! pass ([`copy`]), write the descriptions.

mod boot_record;
mod cache;
pub(crate) mod copy;
pub(crate) mod in_place;
pub(crate) mod input;
pub(crate) mod linux;
mod network;
mod no_os;
pub(crate) mod root;
mod volumes;
mod windows;

pub use copy::CopyJob;

use crate::{image_choices, output};
use ferry_formats::convert::{OutputFormat, TempOutput};
use ferry_formats::model::DiskSource;
use ferry_formats::qcow2::Preallocation;
use anyhow::{bail, Context};
use clap::ValueEnum;
use ferry_formats::disk::BlockDevice;
use ferry_formats::layout::{allocate, BlockDriver, Layout, OutputPlan, Profile, VirtioModel, DEFAULT_PROFILE};
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

/// `--block-driver`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BlockDriverChoice {
    /// One virtio-blk PCI device per disk (`vdX` in the guest; Windows: `viostor`).
    VirtioBlk,
    /// One virtio-scsi controller, a SCSI disk per target (`sdX` in the guest; Windows:
    /// `vioscsi`).
    VirtioScsi,
}

/// `--virtio`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum VirtioChoice {
    Auto,
    Legacy,
    Modern,
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
    /// Map a NIC by MAC: `MAC:network:NAME` or `MAC:bridge:NAME`; or give it a static IPv4
    /// address at first boot, `MAC:ip:ADDR[,GW[,LEN[,DNS,...]]]` (Windows guests, as virt-v2v).
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
    /// A disk the description names by a reference not on this host (Xen network storage
    /// `rbd:pool/img`, `iscsi:...`, `nbd:...`; a datastore path): read FILE instead
    /// (`REFERENCE=FILE`, repeatable).
    #[arg(long = "disk-file", value_name = "REFERENCE=FILE")]
    pub disk_file: Vec<String>,
    /// The VM to convert when an OVF holds several (a VirtualSystemCollection): its id or Name.
    #[arg(long = "vm", value_name = "NAME")]
    pub vm: Option<String>,
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
    /// Also the way to copy a guest whose OS Ferry cannot find: without it, a source that
    /// names a guest OS, or disks holding Linux or Windows filesystems, with no OS found, is
    /// refused.
    #[arg(long = "copy-only", conflicts_with_all = ["no_copy", "in_place"])]
    pub copy_only: bool,
    /// Show a progress bar of the disk copy on stderr even when it is not a terminal (it is
    /// shown on a terminal anyway); stdout, and so --json, is unaffected.
    #[arg(short = 'p', long)]
    pub progress: bool,
    /// Virtio device model: `auto` (transitional when a bootable kernel of the guest speaks
    /// only legacy virtio, or inspection cannot tell; modern when the guest is not inspected,
    /// as with --no-copy), `legacy` (transitional devices) or `modern` (modern-only).
    #[arg(long, value_enum, default_value = "auto")]
    pub virtio: VirtioChoice,
    /// Which Linux root to convert when the disks hold several: `single` (the default: more
    /// than one is an error listing them), `first`, a device as inspection names it
    /// (`/dev/sdb1`, `/dev/vg0/root`), or `ask` (prompt when standard input is a terminal,
    /// else as `single`). As virt-v2v's --root.
    #[arg(long, default_value = "single", value_name = "ask|single|first|DEVICE")]
    pub root: root::RootChoice,
    /// The device the converted guest's disks sit on, as virt-v2v's --block-driver:
    /// `virtio-blk` (one virtio-blk device per disk) or `virtio-scsi` (one virtio-scsi
    /// controller, a SCSI disk per target; Windows gets `vioscsi` as its boot driver, Linux
    /// needs `virtio_scsi` in its initramfs).
    #[arg(long = "block-driver", value_enum, default_value = "virtio-blk")]
    pub block_driver: BlockDriverChoice,
    /// Windows guests: the virtio-win drivers, the virtio-win ISO image (read by Ferry) or a
    /// directory laid out as it (`viostor/2k22/amd64/viostor.sys`, ...); else the
    /// `VIRTIO_WIN` environment variable.
    /// The drivers for the guest's version and architecture are copied to
    /// `%SystemRoot%\Drivers\VirtIO` and `viostor` (`vioscsi` with --block-driver
    /// virtio-scsi) is made boot-start.
    #[arg(long = "virtio-win", value_name = "PATH")]
    pub virtio_win: Option<PathBuf>,
    /// Replace this guest's outputs already in the output directory (refused otherwise).
    #[arg(long)]
    pub overwrite: bool,
}

/// Writes `data` to `path` through a new temporary in the same directory (`O_EXCL`,
/// `O_NOFOLLOW`), renamed into place when complete.
pub fn write_atomic(path: &Path, data: &[u8], executable: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let temp = TempOutput::create(path, if executable { 0o755 } else { 0o644 })?;
    let mut file = temp.file();
    file.write_all(data).with_context(|| format!("{}: write", temp.path().display()))?;
    temp.commit(path, false)?;
    Ok(())
}

/// Records every file of a disk source as a source, so no output may replace it.
fn note_sources(src: &DiskSource) {
    use std::os::unix::fs::MetadataExt;
    let note = |p: &Path| {
        if let Ok(m) = std::fs::metadata(p) {
            ferry_formats::disk::note_source((m.dev(), m.ino()), p);
        }
    };
    match src {
        DiskSource::File { path } | DiskSource::Block { path } => note(path),
        DiskSource::InPlace { archive, .. }
        | DiskSource::SparseInPlace { archive, .. }
        | DiskSource::Streamed { archive, .. } => note(archive),
        DiskSource::Chunked { chunks } => chunks.iter().for_each(note_sources),
        DiskSource::Gzip { inner } => note_sources(inner),
        DiskSource::Unresolved { .. } | DiskSource::Blank { .. } => {}
    }
}

/// The files this conversion writes: disks (unless `--no-copy`) and descriptions.
fn output_files(args: &ConvertArgs, dir: &Path, name: &str, disks: &[PathBuf]) -> Vec<PathBuf> {
    // In place, the disks are the sources themselves: only the descriptions are new.
    let mut out = if args.no_copy || args.in_place { Vec::new() } else { disks.to_vec() };
    let (xml, sh, json) = descriptions(args.output);
    for (want, ext) in [(xml, "xml"), (sh, "sh"), (json, "ferry.json")] {
        if want {
            out.push(dir.join(format!("{name}.{ext}")));
        }
    }
    out
}

/// The description files an output mode writes, with their bytes and executable bit.
fn description_files(mode: OutputMode, dir: &Path, name: &str, layout: &Layout) -> Vec<in_place::Description> {
    let (xml, sh, json) = descriptions(mode);
    let mut out = Vec::new();
    if xml {
        out.push((dir.join(format!("{name}.xml")), output::libvirt_xml(layout, dir).into_bytes(), false));
    }
    if sh {
        out.push((dir.join(format!("{name}.sh")), output::qemu_script(layout).into_bytes(), true));
    }
    if json {
        out.push((dir.join(format!("{name}.ferry.json")), output::ferry_spec(layout).into_bytes(), false));
    }
    out
}

/// Which descriptions an output mode writes: (libvirt XML, QEMU script, Ferry spec).
fn descriptions(mode: OutputMode) -> (bool, bool, bool) {
    match mode {
        OutputMode::Local => (true, true, true),
        OutputMode::Qemu => (false, true, false),
        OutputMode::LibvirtXml => (true, false, false),
        OutputMode::Ferry => (false, false, true),
    }
}

/// The `-o` value as typed on the command line (`-o disk`, `--output-mode=qemu`), if any.
fn typed_output_mode() -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let mut it = args.iter().skip(1);
    let mut found = None;
    while let Some(a) = it.next() {
        if a == "-o" || a == "--output-mode" {
            found = it.next().cloned();
        } else if let Some(v) = a.strip_prefix("--output-mode=").or_else(|| a.strip_prefix("-o=")) {
            found = Some(v.to_string());
        }
    }
    found
}

/// Warnings printed before the rest are only counted.
const MAX_PRINTED_WARNINGS: usize = 20;

/// Prints warnings to stderr, each on one line; past [`MAX_PRINTED_WARNINGS`] only a count.
pub fn print_warnings(warnings: &[String]) {
    for w in warnings.iter().take(MAX_PRINTED_WARNINGS) {
        eprintln!("ferry: warning: {}", ferry_formats::model::one_line(w));
    }
    if warnings.len() > MAX_PRINTED_WARNINGS {
        eprintln!("ferry: warning: {} more warnings not shown", warnings.len() - MAX_PRINTED_WARNINGS);
    }
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
    print_warnings(&vm.warnings);
    let name = args.output_name.clone().unwrap_or_else(|| vm.name.clone());
    if name.is_empty() || name.contains('/') || name.chars().any(char::is_control) || name.starts_with('.') {
        bail!("output name {name:?} cannot be used as a file name (use -on NAME)");
    }
    vm.name = name.clone();
    let Some(dir) = args.output_storage.clone() else {
        let mode = typed_output_mode().unwrap_or_else(|| args.output.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default());
        bail!("-o {} needs -os DIR (the output directory)", ferry_formats::model::one_line(&mode))
    };
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
        // An interrupted in-place conversion of these images is finished, not redone.
        if !args.dry_run {
            for f in &disk_files {
                if let Some(journal) = in_place::recover(f)? {
                    // The crashed run's temporaries go too (its descriptions' .part files).
                    crate::signals::remove_stale_temps(&dir);
                    if args.json {
                        println!("{}", serde_json::json!({ "name": name, "recovered-journal": journal }));
                    }
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    }
    let forced = match args.virtio {
        VirtioChoice::Legacy => Some(VirtioModel::Transitional),
        VirtioChoice::Modern => Some(VirtioModel::Modern),
        VirtioChoice::Auto => None,
    };
    let mut plan = OutputPlan {
        name: name.clone(),
        disk_files: disk_files.clone(),
        disk_format: match (args.in_place, disk_files.first()) {
            (true, Some(first)) => ferry_formats::disk::probe_format(first)?.name().into(),
            _ => image_choices::format_name(args.output_format).into(),
        },
        nic_backends,
        virtio: forced.unwrap_or_default(),
        block_driver: match args.block_driver {
            BlockDriverChoice::VirtioBlk => BlockDriver::VirtioBlk,
            BlockDriverChoice::VirtioScsi => BlockDriver::VirtioScsi,
        },
    };
    let mut layout = allocate(&vm, &profile, &plan)?;
    let outputs = output_files(&args, &dir, &name, &disk_files);
    if !args.dry_run {
        crate::signals::remove_stale_temps(&dir);
        if !args.overwrite {
            if let Some(o) = outputs.iter().find(|o| o.symlink_metadata().is_ok()) {
                bail!(
                    "{}: already exists (an output of guest {name:?}): refusing to overwrite it without --overwrite",
                    o.display()
                );
            }
        }
    }
    for src in &args.source {
        note_sources(&DiskSource::File { path: src.clone() });
    }
    for d in &vm.disks {
        note_sources(&d.source);
    }
    let mut virtio = serde_json::json!({ "model": plan.virtio.name(), "chosen-by": if forced.is_some() { "--virtio" } else { "default" } });
    let started = std::time::Instant::now();
    let mut report = serde_json::json!({ "name": name, "block-driver": plan.block_driver.name() });
    let mut descriptions_written = false;
    if !args.no_copy || args.dry_run {
        let jobs: Vec<CopyJob> = vm
            .disks
            .iter()
            .zip(&disk_files)
            .map(|(d, out)| CopyJob::new(d, out.clone(), args.output_format, args.output_allocation))
            .collect();
        let mut outside_files = Vec::new();
        for job in &jobs {
            copy::check_resolved(&job.source)?;
            let files = copy::files_read(&job.source, job.source_format.as_deref())?;
            match (&vm.confine, &job.source) {
                // A directory OVA: every file its disks read must be inside it.
                (Some(root), _) => {
                    if let Some(f) = copy::outside(&files, root)?.first() {
                        bail!(
                            "{}: disk {} reads {}, outside the OVA directory {}: refused",
                            root.display(),
                            job.source.describe(),
                            f.display(),
                            root.display()
                        );
                    }
                }
                // -i vmx / -i disk: extents and parents elsewhere are allowed (as qemu-img),
                // and reported.
                (None, DiskSource::File { path } | DiskSource::Block { path }) => {
                    // The disk the description names is not itself an outside reference.
                    let own = path.canonicalize().ok();
                    let refs: Vec<PathBuf> = files.into_iter().filter(|f| f.canonicalize().ok() != own).collect();
                    let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                    for f in copy::outside(&refs, base)? {
                        eprintln!("ferry: warning: {} reads {}, outside its directory", path.display(), f.display());
                        outside_files.push(f);
                    }
                }
                (None, _) => {}
            }
        }
        if !outside_files.is_empty() {
            report["outside-files"] = serde_json::to_value(&outside_files)?;
        }
        let overlays = linux::open_overlays(&jobs, &dir)?;
        // Every source file is open now: no output may be one of them (checked again as
        // each output is created).
        for o in &outputs {
            ferry_formats::convert::temp::check_not_source(o)?;
        }
        // --copy-only: the disks as they are (the base copy of a warm migration).
        if !args.copy_only {
            let opts = linux::Options {
                dry_run: args.dry_run,
                print: !args.json,
                root: args.root.clone(),
                virtio_win: args.virtio_win.clone(),
                static_ips: network::static_ips(&args.mac)?,
                block_driver: plan.block_driver,
            };
            let guest = linux::convert_guest(&vm, &layout, &overlays, &opts)?;
            print_warnings(&guest.warnings);
            // Linux: the kernels' virtio-pci; Windows: the injected block driver's INF.
            if let Some(need) = guest.plan.as_ref().map(|p| &p.virtio).or_else(|| guest.windows_plan.as_ref().map(|w| &w.virtio)) {
                let wanted = if need.transitional { VirtioModel::Transitional } else { VirtioModel::Modern };
                if forced.is_none() && wanted != plan.virtio {
                    // Same slots, MACs and serials: only the devices' model changes.
                    plan.virtio = wanted;
                    layout = allocate(&vm, &profile, &plan)?;
                }
                virtio = serde_json::json!({
                    "model": plan.virtio.name(),
                    "chosen-by": if forced.is_some() { "--virtio" } else { "inspection" },
                    "kernel": need.kernel, "interface": need.interface, "reason": need.reason,
                });
                if !args.json {
                    match forced {
                        Some(m) if m != wanted => println!(
                            "virtio devices: {} (--virtio), though kernel {} needs {}: {}",
                            m.name(),
                            need.kernel,
                            wanted.name(),
                            need.reason
                        ),
                        _ => {}
                    }
                }
            }
            report["virtio"] = virtio.clone();
            layout.spec.boot = guest.boot.clone();
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
            // The images and the descriptions change together, through one journal.
            let edits: Vec<(&dyn ferry_formats::disk::BlockDevice, _)> = overlays.iter().map(|o| (&**o as _, o.edited())).collect();
            let files = description_files(args.output, &dir, &name, &layout);
            disks = in_place::commit(&edits, &disk_files, &files)?;
            descriptions_written = true;
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
    if !descriptions_written {
        for (path, data, executable) in description_files(args.output, &dir, &name, &layout) {
            write_atomic(&path, &data, executable)?;
        }
    }
    if report.get("virtio").is_none() {
        report["virtio"] = virtio;
    }
    report["seconds"] = serde_json::json!(started.elapsed().as_secs_f64());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}
