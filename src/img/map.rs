//! `ferry img map`: the allocation map, human or JSON like `qemu-img map --output=json`.
use super::{open, parse_format};
use ferry_formats::disk::{ExtentKind, ImageFormat};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct MapArgs {
    /// Image format (probed when absent).
    #[arg(short = 'f', value_parser = parse_format)]
    format: Option<ImageFormat>,
    /// Print JSON: a list of {start, length, present, zero, data}.
    #[arg(long)]
    json: bool,
    file: PathBuf,
}

pub fn run(a: MapArgs) -> anyhow::Result<ExitCode> {
    let img = open(&a.file, a.format)?;
    let size = img.size();
    let mut list = Vec::new();
    let mut windows = super::Windows::new(size, 64 << 30);
    while let Some((pos, len)) = windows.next_window() {
        let part = img.map(pos, len)?;
        windows.done(part.len() <= 1);
        list.extend(part);
    }
    let list = ferry_formats::disk::coalesce(list);
    if a.json {
        let v: Vec<serde_json::Value> = list
            .iter()
            .map(|e| {
                serde_json::json!({
                    "start": e.offset, "length": e.length,
                    "present": e.kind != ExtentKind::Unallocated,
                    "zero": e.kind != ExtentKind::Data, "data": e.kind == ExtentKind::Data,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<20}{:<20}Kind", "Offset", "Length");
    for e in &list {
        let kind = match e.kind {
            ExtentKind::Data => "data",
            ExtentKind::Zero => "zero",
            ExtentKind::Unallocated => "unallocated",
        };
        println!("{:<20}{:<20}{kind}", format!("{:#x}", e.offset), format!("{:#x}", e.length));
    }
    Ok(ExitCode::SUCCESS)
}
