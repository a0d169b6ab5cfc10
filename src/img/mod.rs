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
    /// Check an image's metadata (exit 0 clean, 2 corrupt, 3 leaked clusters, 63 raw: no checks).
    Check(check::CheckArgs),
    /// Show an image's allocation map.
    Map(map::MapArgs),
    /// Warm migration: apply what a delta VMDK, a qcow2 overlay or a changed-block list
    /// holds to a target image, in place.
    Sync(sync::SyncArgs),
}

impl ImgArgs {
    /// True for the verbs that write an output file.
    pub fn writes(&self) -> bool {
        matches!(self.command, ImgCommand::Convert(_))
    }
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
    ImageFormat::from_name(name).ok_or_else(|| format!("unknown format {name:?} ({})", ImageFormat::NAMES))
}

/// Opens an image read-only, with an optional forced format.
fn open(path: &Path, format: Option<ImageFormat>) -> anyhow::Result<Box<dyn BlockDevice>> {
    // The error names the file already.
    Ok(open_image(path, format)?)
}

/// Walks a disk in map windows that grow while the map finds nothing to do: a window that
/// comes back as one uniform extent (or with no data, as [`Windows::done`] says) doubles the
/// next one, any other resets it. A huge ZERO or unallocated extent then costs a few map calls,
/// not one per base window: the work follows the extents, not the size.
struct Windows {
    pos: u64,
    size: u64,
    base: u64,
    window: u64,
}

impl Windows {
    fn new(size: u64, base: u64) -> Self {
        Windows { pos: 0, size, base, window: base }
    }

    /// The next `(offset, length)` to map.
    fn next_window(&self) -> Option<(u64, u64)> {
        (self.pos < self.size).then(|| (self.pos, self.window.min(self.size - self.pos)))
    }

    /// Moves past the window just mapped; `idle` says it held nothing to work on.
    fn done(&mut self, idle: bool) {
        let (_, len) = self.next_window().unwrap_or((0, 0));
        self.pos += len;
        self.window = if idle { self.window.saturating_mul(2) } else { self.base };
    }
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
    fn windows_grow_over_idle_ranges() {
        let mut w = super::Windows::new(1 << 40, 1 << 30);
        let mut calls = 0;
        while let Some((_, len)) = w.next_window() {
            calls += 1;
            w.done(len > 0);
        }
        assert!(calls <= 11, "{calls}");
        let mut w = super::Windows::new(4 << 30, 1 << 30);
        let mut seen = Vec::new();
        while let Some(win) = w.next_window() {
            seen.push(win);
            w.done(false);
        }
        assert_eq!(seen, [(0, 1 << 30), (1 << 30, 1 << 30), (2 << 30, 1 << 30), (3 << 30, 1 << 30)]);
    }

    #[test]
    fn human_sizes() {
        assert_eq!(super::human_size(4 << 30), "4 GiB");
        assert_eq!(super::human_size(512), "512 B");
        assert_eq!(super::human_size(200704), "196 KiB");
        assert_eq!(super::human_size(14098432), "13.4 MiB");
        assert_eq!(super::human_size(5 << 29), "2.5 GiB");
    }
}
