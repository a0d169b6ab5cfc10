//! `ferry img check`: exit 0 clean, 1 check could not run, 2 corruptions, 3 leaks only, 63
//! the format has no checks (raw), as qemu-img.
use super::{open, parse_format};
use ferry_formats::disk::{probe_format, BlockDevice, ExtentKind, ImageFormat};
use ferry_formats::qcow2::check::{check, CheckReport};
use rayon::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct CheckArgs {
    /// Image format (probed when absent).
    #[arg(short = 'f', value_parser = parse_format)]
    format: Option<ImageFormat>,
    /// Print JSON like `qemu-img check --output=json`.
    #[arg(long)]
    json: bool,
    file: PathBuf,
}

pub fn run(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let format = match a.format {
        Some(f) => f,
        None => probe_format(&a.file)?,
    };
    if format == ImageFormat::Raw {
        // Like qemu-img: a raw file has no metadata, so there is nothing to check.
        eprintln!("{}: raw images have no metadata to check: this image format does not support checks", a.file.display());
        return Ok(ExitCode::from(63));
    }
    let report = match format {
        // The whole chain must open first (loops, depth, missing files), as info and
        // convert require: an image they refuse is not reported clean (exit 1).
        ImageFormat::Qcow2 => {
            let r = check(&a.file)?;
            if r.corruptions == 0 && r.check_errors == 0 {
                open(&a.file, Some(format))?;
            }
            r
        }
        _ => check_by_reading(&*open(&a.file, Some(format))?),
    };
    if a.json {
        let v = serde_json::json!({
            "filename": a.file, "format": format.name(),
            "check-errors": report.check_errors, "corruptions": report.corruptions, "leaks": report.leaks,
            "image-end-offset": report.image_end_offset, "total-clusters": report.total_clusters,
            "allocated-clusters": report.allocated_clusters, "fragmented-clusters": report.fragmented_clusters,
            "compressed-clusters": report.compressed_clusters,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for m in &report.messages {
            eprintln!("{m}");
        }
        print_summary(&report, format);
    }
    Ok(ExitCode::from(if report.corruptions > 0 || report.check_errors > 0 {
        2
    } else if report.leaks > 0 {
        3
    } else {
        0
    }))
}

fn print_summary(r: &CheckReport, format: ImageFormat) {
    if r.corruptions == 0 && r.leaks == 0 && r.check_errors == 0 {
        println!("No errors were found on the image.");
    }
    if r.corruptions > 0 {
        println!("\n{} errors were found on the image.", r.corruptions);
        println!("Data may be corrupted, or further writes to the image may corrupt it.");
    }
    if r.leaks > 0 {
        println!("\n{} leaked clusters were found on the image.", r.leaks);
        println!("This means waste of disk space, but no harm to data.");
    }
    if format == ImageFormat::Qcow2 && r.total_clusters > 0 {
        let pct = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 * 100.0 / d as f64 };
        println!(
            "{}/{} = {:.2}% allocated, {:.2}% fragmented, {:.2}% compressed clusters",
            r.allocated_clusters,
            r.total_clusters,
            pct(r.allocated_clusters, r.total_clusters),
            pct(r.fragmented_clusters, r.allocated_clusters),
            pct(r.compressed_clusters, r.allocated_clusters)
        );
    }
    if format == ImageFormat::Qcow2 {
        println!("Image end offset: {}", r.image_end_offset);
    }
}

/// For formats without refcounts: map the whole disk and read every allocated byte, so
/// every table entry and compressed grain the reader can reach is verified.
fn check_by_reading(img: &dyn BlockDevice) -> CheckReport {
    let mut r = CheckReport::default();
    let step = 16u64 << 20;
    let mut windows = super::Windows::new(img.size(), 1 << 30);
    while let Some((pos, len)) = windows.next_window() {
        let map = match img.map(pos, len) {
            Ok(m) => m,
            Err(e) => {
                r.corruptions += 1;
                r.messages.push(format!("ERROR: {e}"));
                return r;
            }
        };
        let mut pieces = Vec::new();
        for e in map.iter().filter(|e| e.kind == ExtentKind::Data) {
            let mut at = e.offset;
            while at < e.offset + e.length {
                let n = step.min(e.offset + e.length - at);
                pieces.push((at, n));
                at += n;
            }
            r.allocated_clusters += e.length;
        }
        let first_err = pieces
            .par_iter()
            .map(|&(at, n)| {
                let mut buf = vec![0u8; n as usize];
                img.read_at(&mut buf, at)
            })
            .find_first(|res| res.is_err());
        if let Some(Err(e)) = first_err {
            r.corruptions += 1;
            r.messages.push(format!("ERROR: {e}"));
            return r;
        }
        windows.done(pieces.is_empty());
    }
    r.allocated_clusters = 0;
    r
}
