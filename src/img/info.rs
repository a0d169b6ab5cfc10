//! `ferry img info`.
use super::{human_size, open, parse_format};
use ferry_formats::disk::ImageFormat;
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct InfoArgs {
    /// Source format (probed when absent).
    #[arg(short = 'f', value_parser = parse_format)]
    format: Option<ImageFormat>,
    /// Print JSON like `qemu-img info --output=json`.
    #[arg(long)]
    json: bool,
    file: PathBuf,
}

/// Keys that qemu-img prints at the top level rather than under format-specific data.
const TOP_LEVEL: [&str; 3] = ["dirty-flag", "backing-filename", "backing-filename-format"];

pub fn run(a: InfoArgs) -> anyhow::Result<ExitCode> {
    let img = open(&a.file, a.format)?;
    let info = img.info();
    let mut top = Map::new();
    top.insert("filename".into(), json!(a.file.display().to_string()));
    top.insert("format".into(), json!(info.format));
    top.insert("virtual-size".into(), json!(info.virtual_size));
    top.insert("actual-size".into(), json!(info.actual_size));
    if let Some(cs) = info.cluster_size {
        top.insert("cluster-size".into(), json!(cs));
    }
    let mut data = Map::new();
    for (k, v) in &info.details {
        if TOP_LEVEL.contains(&k.as_str()) {
            top.insert(k.clone(), v.clone());
        } else {
            data.insert(k.clone(), v.clone());
        }
    }
    top.entry("dirty-flag").or_insert(json!(false));
    if let Some(b) = &info.backing {
        top.insert("full-backing-filename".into(), json!(b.display().to_string()));
        top.entry("backing-filename").or_insert_with(|| json!(b.display().to_string()));
    }
    if info.files.len() > 1 {
        data.insert("files".into(), json!(info.files));
    }
    if !data.is_empty() {
        top.insert("format-specific".into(), json!({ "type": info.format, "data": data }));
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&Value::Object(top))?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("image: {}", a.file.display());
    println!("file format: {}", info.format);
    println!("virtual size: {} ({} bytes)", human_size(info.virtual_size), info.virtual_size);
    println!("disk size: {}", human_size(info.actual_size));
    if let Some(cs) = info.cluster_size {
        println!("cluster_size: {cs}");
    }
    if let Some(b) = top.get("backing-filename").and_then(Value::as_str) {
        match &info.backing {
            Some(full) => println!("backing file: {b} (actual path: {})", full.display()),
            None => println!("backing file: {b}"),
        }
    }
    if let Some(f) = top.get("backing-filename-format").and_then(Value::as_str) {
        println!("backing file format: {f}");
    }
    if !data.is_empty() {
        println!("Format specific information:");
        for (k, v) in &data {
            let shown = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            println!("    {}: {shown}", k.replace('-', " "));
        }
    }
    Ok(ExitCode::SUCCESS)
}
