//! `ferry batch`: many guests from one manifest.
//!
//! `run` converts every entry (in parallel, resumable from per-VM journals next to the
//! outputs), `plan` shows what would run with each guest's inspection (nothing written),
//! `validate` boot-checks the converted guests, `report` merges shards' JSON reports.
//! `--shard I/N` picks a deterministic share balanced by disk bytes ([`shard`]).

mod child;
mod display;
mod journal;
pub mod manifest;
mod parse;
mod report;
mod rss;
mod runner;
pub mod shard;

pub use journal::write_atomic;

use anyhow::Context;
use manifest::Entry;
use shard::Shard;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args)]
pub struct BatchArgs {
    #[command(subcommand)]
    command: BatchCommand,
}

#[derive(clap::Args)]
struct Common {
    /// The manifest: TOML (`.toml`) or YAML (`.yaml`, `.yml`), `defaults` plus one `vm`
    /// entry per guest, each key a `ferry convert` long option.
    manifest: PathBuf,
    /// Run only shard I of N (1-based), a deterministic share balanced by disk bytes.
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
}

#[derive(clap::Args)]
struct RunOpts {
    #[command(flatten)]
    common: Common,
    /// VMs converted at once (default: the cores, at most one per GiB of available memory).
    #[arg(short = 'j', long)]
    jobs: Option<usize>,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Write the JUnit XML report here (a testcase per VM and step).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum BatchCommand {
    /// Convert every VM of the manifest; rerun to resume after an interruption.
    Run(RunOpts),
    /// Print what `run` would do, with each guest's inspection, as JSON; write nothing.
    Plan(Common),
    /// Boot-check the manifest's converted guests (`ferry validate NAME.ferry.json`).
    Validate(RunOpts),
    /// Merge shards' JSON reports into one JSON report and/or JUnit XML file.
    Report {
        /// The shards' JSON reports.
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// Write the merged JSON report here (default: standard output).
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Write the merged JUnit XML here.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
}

pub fn run(args: BatchArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        BatchCommand::Run(o) => execute(o, runner::Mode::Run),
        BatchCommand::Validate(o) => execute(o, runner::Mode::Validate),
        BatchCommand::Plan(c) => plan(c),
        BatchCommand::Report { reports, json, junit } => {
            let mut all = Vec::new();
            for p in &reports {
                all.push((p.display().to_string(), report::read(p)?));
            }
            let merged = report::merge(&all)?;
            if json.is_none() {
                println!("{}", serde_json::to_string_pretty(&merged)?);
            }
            report::write(&merged, json.as_deref(), junit.as_deref())?;
            eprintln!("ferry batch report: {}", merged.summary());
            Ok(if merged.failed() > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
    }
}

/// An entry's input identity and disk bytes, or why they could not be read.
type Ident = Result<(journal::Identity, u64), String>;

type Selected<'a> = Vec<(&'a Entry, Ident)>;

/// Loads the manifest, reads each entry's identity (for the shard weights), keeps the shard.
fn select(common: &Common) -> anyhow::Result<(manifest::Manifest, Vec<(usize, Ident)>)> {
    let m = manifest::load(&common.manifest)?;
    let idents: Vec<Ident> =
        m.entries.iter().map(|e| journal::identity(e).map_err(|err| child::clean_message(&format!("{err:#}")))).collect();
    let keep: Vec<usize> = match common.shard {
        Some(s) => {
            let bytes: Vec<u64> = idents.iter().map(|i| i.as_ref().map(|x| x.1).unwrap_or(0)).collect();
            shard::select(&bytes, s)
        }
        None => (0..m.entries.len()).collect(),
    };
    let mut idents: Vec<Option<_>> = idents.into_iter().map(Some).collect();
    let chosen = keep.into_iter().filter_map(|i| idents[i].take().map(|id| (i, id))).collect();
    Ok((m, chosen))
}

fn execute(o: RunOpts, mode: runner::Mode) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let (m, chosen) = select(&o.common)?;
    let selected: Selected = chosen.into_iter().map(|(i, id)| (&m.entries[i], id)).collect();
    if mode == runner::Mode::Run {
        for (e, _) in &selected {
            std::fs::create_dir_all(&e.storage).with_context(|| format!("{}: cannot create output storage", e.storage.display()))?;
        }
    }
    let jobs = match o.jobs {
        Some(0) => anyhow::bail!("--jobs 0: at least one job"),
        Some(j) => j,
        None => runner::default_jobs(),
    };
    let disp = display::Display::new(selected.len());
    let sampler = rss::Sampler::start();
    let vms = runner::run_all(&selected, jobs, mode, &disp);
    let peak_rss_kib = sampler.finish();
    disp.close();
    let rep = report::Report {
        command: if mode == runner::Mode::Run { "run" } else { "validate" }.into(),
        manifest: m.path.display().to_string(),
        shards: o.common.shard.map(|s| vec![s.to_string()]).unwrap_or_default(),
        jobs,
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_kib,
        vms,
    };
    report::write(&rep, o.report.as_deref(), o.junit.as_deref())?;
    eprintln!("ferry batch: {}", rep.summary());
    Ok(if rep.failed() > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn plan(common: Common) -> anyhow::Result<ExitCode> {
    let (m, chosen) = select(&common)?;
    let mut vms = Vec::new();
    let mut failed = 0;
    for (i, ident) in chosen {
        let e = &m.entries[i];
        let mut v = serde_json::json!({ "name": e.name, "line": e.line, "storage": e.storage, "convert-args": e.argv.iter().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>() });
        if let Some(val) = &e.validate {
            v["validate-args"] = serde_json::json!(val.args);
        }
        match &ident {
            Ok((id, bytes)) => {
                v["disk-bytes"] = serde_json::json!(bytes);
                let prev = journal::read(&e.storage, &e.name);
                let up_to_date = prev.as_ref().is_some_and(|j| {
                    j.state == journal::State::Done && &j.identity == id && j.outputs.iter().all(|p| p.exists())
                });
                v["action"] = serde_json::json!(if up_to_date { "skip (already done, inputs unchanged)" } else { "convert" });
                if up_to_date {
                    vms.push(v);
                    continue;
                }
                let mut args: Vec<OsString> = vec!["convert".into(), "--dry-run".into(), "--json".into()];
                args.extend(e.argv.iter().cloned());
                // The dry run needs its output directory to exist: before the first run it
                // does not, so the inspection runs against an empty scratch directory.
                let scratch = (!e.storage.is_dir()).then(|| std::env::temp_dir().join(format!("ferry-plan-{}-{i}", std::process::id())));
                if let Some(dir) = &scratch {
                    std::fs::create_dir(dir).with_context(|| format!("{}: create", dir.display()))?;
                    if let Some(k) = args.iter().position(|a| a == "--output-storage") {
                        args[k + 1] = dir.clone().into_os_string();
                    }
                }
                let outcome = child::run(&args, None, &mut |_| {});
                if let Some(dir) = &scratch {
                    let _ = std::fs::remove_dir_all(dir);
                }
                match outcome {
                    Ok(o) if o.ok => {
                        v["inspection"] = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
                    }
                    Ok(o) => {
                        failed += 1;
                        v["error"] = serde_json::json!(o.message);
                    }
                    Err(err) => {
                        failed += 1;
                        v["error"] = serde_json::json!(format!("{err:#}"));
                    }
                }
            }
            Err(err) => {
                failed += 1;
                v["action"] = serde_json::json!("fail");
                v["error"] = serde_json::json!(err);
            }
        }
        vms.push(v);
    }
    let doc = serde_json::json!({
        "manifest": m.path,
        "shard": common.shard.map(|s| s.to_string()),
        "vms": vms,
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
