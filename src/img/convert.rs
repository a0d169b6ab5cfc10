//! `ferry img convert`.
use super::{open, parse_format};
use anyhow::{bail, Context};
use ferry_formats::convert::{convert, ConvertOptions, Source};
use ferry_formats::disk::ImageFormat;
use ferry_formats::qcow2::{CompressionType, Preallocation};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ConvertArgs {
    /// Source format (probed when absent).
    #[arg(short = 'f', value_parser = parse_format)]
    format: Option<ImageFormat>,
    /// Output format: qcow2 or raw.
    #[arg(short = 'O', default_value = "raw")]
    output_format: String,
    /// Compress qcow2 clusters (zlib unless --compression says otherwise).
    #[arg(short = 'c')]
    compress: bool,
    /// Compression codec (implies -c).
    #[arg(long, value_parser = ["zlib", "zstd"])]
    compression: Option<String>,
    /// Output options: preallocation=off|metadata|full, cluster_size=N, compression_type=zlib|zstd.
    #[arg(short = 'o')]
    options: Vec<String>,
    /// fsync the output before renaming it into place (default: no flush, like qemu-img).
    #[arg(long)]
    flush: bool,
    /// Show a progress bar even when stderr is not a terminal.
    #[arg(short = 'p')]
    progress: bool,
    /// Print what was done as JSON.
    #[arg(long)]
    json: bool,
    source: PathBuf,
    output: PathBuf,
}

/// Parses `64k`, `2M`, `65536`.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'b' | 'B') => (&s[..i], 1),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn options(a: &ConvertArgs) -> anyhow::Result<ConvertOptions> {
    let mut o = ConvertOptions {
        format: crate::image_choices::output_format(&a.output_format)
            .with_context(|| format!("unsupported output format {:?} (qcow2 or raw)", a.output_format))?,
        flush: a.flush,
        ..Default::default()
    };
    let mut codec = a.compression.clone();
    for opt in a.options.iter().flat_map(|s| s.split(',')).filter(|s| !s.is_empty()) {
        let (k, v) = opt.split_once('=').with_context(|| format!("option {opt:?} is not KEY=VALUE"))?;
        match k {
            "preallocation" => {
                o.preallocation = Preallocation::from_name(v)
                    .with_context(|| format!("preallocation {v:?} is not off, metadata or full"))?
            }
            "cluster_size" => {
                o.cluster_size = parse_size(v).with_context(|| format!("cluster_size {v:?} is not a size"))?
            }
            "compression_type" => codec = Some(v.to_string()),
            _ => bail!("unknown output option {k:?}"),
        }
    }
    if a.compress || a.compression.is_some() {
        o.compression = Some(match codec.as_deref() {
            None | Some("zlib") => CompressionType::Zlib,
            Some("zstd") => CompressionType::Zstd,
            Some(other) => bail!("compression type {other:?} is not zlib or zstd"),
        });
    }
    Ok(o)
}

pub fn run(a: ConvertArgs) -> anyhow::Result<ExitCode> {
    let opts = options(&a)?;
    let dir = a.output.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    crate::signals::remove_stale_temps(dir);
    let src = open(&a.source, a.format)?;
    let bar = crate::progress::bar(src.size(), a.progress);
    let progress = |done: u64, _total: u64| {
        if let Some(b) = &bar {
            b.set_position(done);
        }
    };
    let start = std::time::Instant::now();
    let stats = convert(Source::Device(&*src), &a.output, &opts, &progress)
        .with_context(|| format!("could not convert {} to {}", a.source.display(), a.output.display()))?;
    if let Some(b) = &bar {
        b.finish();
    }
    if a.json {
        let v = serde_json::json!({
            "source": a.source, "output": a.output, "format": a.output_format,
            "virtual-size": stats.virtual_size, "data-clusters": stats.data_clusters,
            "compressed-clusters": stats.compressed_clusters, "zero-clusters": stats.zero_clusters,
            "cluster-size": opts.cluster_size, "seconds": start.elapsed().as_secs_f64(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(ExitCode::SUCCESS)
}

