//! `ferry inspect DISK...`: partitions, volumes, filesystems and operating systems of a
//! guest's disks, as a human summary, JSON, or virt-inspector XML.

use crate::convert::copy::CopyJob;
use ferry_formats::convert::OutputFormat;
use ferry_formats::qcow2::Preallocation;
use crate::convert::{input, linux, InputMode};
use anyhow::{bail, Context};
use ferry_formats::model::Datastores;
use ferry_formats::disk::{open_image, ImageFormat};
use ferry_inspectors::Device;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct InspectArgs {
    /// The guest's disk images, in boot order (named /dev/sda, /dev/sdb, ... in the report);
    /// with `-i vmx|ova|libvirtxml|xen`, the one description file whose disks to inspect.
    #[arg(required = true, value_name = "DISK")]
    disks: Vec<PathBuf>,
    /// Input mode, as `ferry convert -i`: `disk` (the default: DISK... are images), or a VM
    /// description whose disks are inspected, named as the guest sees them (sda, xvda, hda).
    #[arg(short = 'i', long = "input-mode", value_name = "MODE", value_enum, default_value = "disk")]
    input_mode: InputMode,
    /// With `-i vmx|libvirtxml`: the directory holding datastore `ds` as `DIR/ds`.
    #[arg(long, value_name = "DIR")]
    datastore_dir: Option<PathBuf>,
    /// Image format of every DISK (raw, vmdk, qcow2); probed when not given.
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// Print the report as JSON.
    #[arg(long, conflicts_with = "xml")]
    json: bool,
    /// Print virt-inspector's XML.
    #[arg(long)]
    xml: bool,
}

/// Inspection's name of the n-th disk: /dev/sda, ..., /dev/sdz, /dev/sdaa, ...
pub(crate) fn disk_name(n: usize) -> String {
    format!("/dev/{}", crate::output::drive_name("sd", n))
}

/// The disks of a VM description, opened read-only under the names the guest gives them.
/// Members of compressed archives are unpacked to a temporary image first, as `convert` does.
fn described_disks(args: &InspectArgs) -> anyhow::Result<(Vec<Device>, Vec<String>)> {
    let [path] = args.disks.as_slice() else {
        bail!("-i {:?} takes exactly one description file, got {}", args.input_mode, args.disks.len())
    };
    let mut vm = input::read_description(args.input_mode, path)?;
    vm.resolve_datastores(&Datastores { dir: args.datastore_dir.clone(), ..Default::default() });
    let names = linux::guest_disk_names(&vm);
    let jobs: Vec<CopyJob> = vm
        .disks
        .iter()
        .zip(&names)
        .map(|(d, name)| CopyJob::new(d, std::env::temp_dir().join(name), OutputFormat::Qcow2, Preallocation::Off))
        .collect();
    let overlays = linux::open_overlays(&jobs, &std::env::temp_dir())?;
    let devices = overlays
        .into_iter()
        .zip(&names)
        .map(|(o, name)| Device::new(format!("/dev/{name}"), o))
        .collect();
    let labels = vm.disks.iter().zip(&names).map(|(d, n)| format!("/dev/{n} = {}", d.source.describe())).collect();
    Ok((devices, labels))
}

pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let (disks, labels) = if args.input_mode == InputMode::Disk {
        let format = match &args.format {
            Some(f) => Some(ImageFormat::from_name(f).with_context(|| format!("unknown image format {f}"))?),
            None => None,
        };
        let mut disks = Vec::new();
        let mut labels = Vec::new();
        for (i, path) in args.disks.iter().enumerate() {
            let dev = open_image(path, format).with_context(|| format!("opening {}", path.display()))?;
            disks.push(Device::new(disk_name(i), Arc::from(dev)));
            labels.push(format!("{} = {}", disk_name(i), path.display()));
        }
        (disks, labels)
    } else {
        described_disks(&args)?
    };
    let report = ferry_inspectors::inspect(&disks)?;
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else if args.xml {
        report.to_xml()
    } else {
        labels.iter().map(|l| format!("{l}\n")).collect::<String>() + &report.summary()
    };
    // Warnings and read errors go to stderr (and stay in the JSON / XML document). Read
    // errors (not the partition-table damage worked around) with no operating system found
    // make the disks unusable: exit 1.
    for w in &report.warnings {
        eprintln!("ferry: warning: {}", w.replace(['\n', '\r'], " "));
    }
    let worked_around: std::collections::HashSet<&String> =
        report.disks.iter().filter_map(|d| d.partition_table.as_ref()).flat_map(|t| &t.warnings).collect();
    let errors = report.warnings.iter().filter(|w| !worked_around.contains(w)).count();
    let code = if errors > 0 && report.operating_systems.is_empty() {
        eprintln!("ferry: {errors} read error(s) and no operating system found on these disks");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(code),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn disk_names() {
        assert_eq!(super::disk_name(0), "/dev/sda");
        assert_eq!(super::disk_name(25), "/dev/sdz");
        assert_eq!(super::disk_name(26), "/dev/sdaa");
    }
}
