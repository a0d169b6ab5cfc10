//! `ferry img`: qemu-img-like verbs (info, convert, compare, check, map), each with `--json`,
//! and `sync` (warm migration rounds).
mod check;
mod compare;
mod convert;
mod info;
mod map;
mod sync;

use clap::Subcommand;
use ferry_formats::disk::{open_image, BlockDevice, ImageFormat};
use std::path::Path;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ImgArgs {
    #[command(subcommand)]
    command: ImgCommand,
}

#[derive(Subcommand)]
enum ImgCommand {
    /// Show an image's format, sizes and format-specific details.
    Info(info::InfoArgs),
    /// Convert an image to qcow2 or raw.
    Convert(convert::ConvertArgs),
    /// Compare the contents of two images (exit 0 identical, 1 different, 2 error).
    Compare(compare::CompareArgs),
    /// Check an image's metadata (exit 0 clean, 2 corrupt, 3 leaked clusters).
    Check(check::CheckArgs),
    /// Show an image's allocation map.
    Map(map::MapArgs),
    /// Warm migration: apply what a delta VMDK, a qcow2 overlay or a changed-block list
    /// holds to a target image, in place.
    Sync(sync::SyncArgs),
}

pub fn run(args: ImgArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ImgCommand::Info(a) => info::run(a),
        ImgCommand::Convert(a) => convert::run(a),
        ImgCommand::Compare(a) => compare::run(a),
        ImgCommand::Check(a) => check::run(a),
        ImgCommand::Map(a) => map::run(a),
        ImgCommand::Sync(a) => sync::run(a),
    }
}

/// Parses a `-f` value.
fn parse_format(name: &str) -> Result<ImageFormat, String> {
    ImageFormat::from_name(name).ok_or_else(|| format!("unknown format {name:?} (raw, vmdk, qcow2)"))
}

/// Opens an image read-only, with an optional forced format.
fn open(path: &Path, format: Option<ImageFormat>) -> anyhow::Result<Box<dyn BlockDevice>> {
    // The error names the file already.
    Ok(open_image(path, format)?)
}

/// `4 GiB`, `196 KiB`, `512 B`: sizes as qemu-img prints them.
fn human_size(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        return format!("{n} B");
    }
    // Three significant digits, trailing zeros dropped (C's %0.3g).
    let digits = if v >= 100.0 { 0 } else if v >= 10.0 { 1 } else { 2 };
    let mut s = format!("{v:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s} {}", UNITS[u])
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_sizes() {
        assert_eq!(super::human_size(4 << 30), "4 GiB");
        assert_eq!(super::human_size(512), "512 B");
        assert_eq!(super::human_size(200704), "196 KiB");
        assert_eq!(super::human_size(14098432), "13.4 MiB");
        assert_eq!(super::human_size(5 << 29), "2.5 GiB");
    }
}
