//! `ferry inspect DISK...`: partitions, volumes, filesystems and operating systems of a
//! guest's disks, as a human summary, JSON, or virt-inspector XML.

use anyhow::{bail, Context};
use ferry_formats::disk::{open_image, ImageFormat};
use ferry_inspectors::Device;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct InspectArgs {
    /// The guest's disk images, in boot order (named /dev/sda, /dev/sdb, ... in the report).
    #[arg(required = true, value_name = "DISK")]
    disks: Vec<PathBuf>,
    /// Input mode: `disk` (the default: DISK... are images). The VM-config modes
    /// (vmx, ova, libvirtxml) are not wired to `inspect` yet.
    #[arg(short = 'i', long = "input-mode", value_name = "MODE", default_value = "disk")]
    input_mode: String,
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

/// Guest-style name of the n-th disk: sda, sdb, ..., sdz, sdaa, ...
fn disk_name(mut n: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'a' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    s.reverse();
    format!("/dev/sd{}", String::from_utf8_lossy(&s))
}

pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    if args.input_mode != "disk" {
        bail!(
            "inspect -i {}: reading disks from a VM configuration is not wired to `ferry inspect` yet; pass the disk images instead",
            args.input_mode
        );
    }
    let format = match &args.format {
        Some(f) => Some(ImageFormat::from_name(f).with_context(|| format!("unknown image format {f}"))?),
        None => None,
    };
    let mut disks = Vec::new();
    for (i, path) in args.disks.iter().enumerate() {
        let dev = open_image(path, format).with_context(|| format!("opening {}", path.display()))?;
        disks.push(Device::new(disk_name(i), Arc::from(dev)));
    }
    let report = ferry_inspectors::inspect(&disks)?;
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else if args.xml {
        report.to_xml()
    } else {
        let mut t = String::new();
        for (i, p) in args.disks.iter().enumerate() {
            t += &format!("{} = {}\n", disk_name(i), p.display());
        }
        t + &report.summary()
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
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
