//! Running a batch: a pool of `--jobs` workers takes VMs in manifest order; each VM runs its
//! steps (inspect, convert with its copy, validate) as child processes and records its state
//! in its journal before and after, so an interrupted batch resumes where it stopped.

use super::child;
use super::display::Display;
use super::journal::{self, Journal, State};
use super::manifest::Entry;
use super::report::{Status, Step, VmReport};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Convert (and validate where asked), resuming from the journals.
    Run,
    /// Only boot-check the converted guests.
    Validate,
}

/// The default `--jobs`: the cores, but no more than one job per GiB of available memory.
pub fn default_jobs() -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let avail = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| (kb >> 20) as usize)
        .unwrap_or(cores);
    cores.min(avail).max(1)
}

fn step(name: &str, status: Status, t: Instant, message: Option<String>) -> Step {
    Step { step: name.into(), status, seconds: t.elapsed().as_secs_f64(), message }
}

fn skipped(name: &str, why: &str) -> Step {
    Step { step: name.into(), status: Status::Skipped, seconds: 0.0, message: Some(why.into()) }
}

/// Runs the selected entries on `jobs` workers; the reports come back in `entries` order.
pub fn run_all(entries: &[(&Entry, super::Ident)], jobs: usize, mode: Mode, disp: &Display) -> Vec<VmReport> {
    let queue: Mutex<VecDeque<usize>> = Mutex::new((0..entries.len()).collect());
    let results: Mutex<Vec<Option<VmReport>>> = Mutex::new(vec![None; entries.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1).min(entries.len().max(1)) {
            s.spawn(|| loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                let Some(i) = next else { break };
                let (entry, ident) = &entries[i];
                let r = match mode {
                    Mode::Run => run_vm(entry, ident, disp),
                    Mode::Validate => validate_vm(entry, ident, disp),
                };
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter().flatten().collect()
}

fn validate_step(entry: &Entry, disp: &Display) -> Step {
    disp.step(&entry.name, "validate");
    let t = Instant::now();
    let mut args: Vec<OsString> = vec!["validate".into(), entry.spec_path().into()];
    if let Some(v) = &entry.validate {
        args.extend(v.args.iter().map(OsString::from));
    }
    match child::run(&args, None, &mut |_| {}) {
        Ok(o) if o.ok => step("validate", Status::Ok, t, None),
        Ok(o) => step("validate", Status::Failed, t, Some(o.message)),
        Err(e) => step("validate", Status::Failed, t, Some(format!("{e:#}"))),
    }
}

fn finish(entry: &Entry, bytes: u64, steps: Vec<Step>, outputs: Vec<PathBuf>, resumed: bool, disp: &Display) -> VmReport {
    let status = if steps.iter().any(|s| s.status == Status::Failed) { Status::Failed } else { Status::Ok };
    let outcome = match (status, resumed) {
        (Status::Ok, true) => "already done".to_string(),
        (Status::Ok, false) => "ok".to_string(),
        _ => {
            let failed = steps.iter().find(|s| s.status == Status::Failed);
            let why = failed.and_then(|s| s.message.as_deref()).and_then(|m| m.lines().last()).unwrap_or("");
            format!("{} failed: {why}", failed.map(|s| s.step.as_str()).unwrap_or("?"))
        }
    };
    disp.finish(&entry.name, &outcome);
    VmReport { name: entry.name.clone(), status, resumed, disk_bytes: bytes, steps, outputs }
}

fn validate_vm(entry: &Entry, ident: &super::Ident, disp: &Display) -> VmReport {
    let bytes = ident.as_ref().map(|i| i.1).unwrap_or(0);
    let steps = vec![validate_step(entry, disp)];
    finish(entry, bytes, steps, vec![entry.spec_path()], false, disp)
}

/// The files VM `name` has in its output directory now (no temporaries).
fn outputs_present(entry: &Entry) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(&entry.storage)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_str().is_some_and(|n| !n.starts_with('.') && journal::is_output_name(n, &entry.name)))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn run_vm(entry: &Entry, ident: &super::Ident, disp: &Display) -> VmReport {
    disp.step(&entry.name, "inspect");
    let t = Instant::now();
    let (identity, bytes) = match ident {
        Ok(i) => i.clone(),
        Err(e) => {
            let steps = vec![
                step("inspect", Status::Failed, t, Some(e.clone())),
                skipped("convert", "inspect failed"),
                skipped("copy", "inspect failed"),
            ];
            return finish(entry, 0, steps, vec![], false, disp);
        }
    };
    journal::clean_temps(&entry.storage, &entry.name);
    let previous = journal::read(&entry.storage, &entry.name);
    if let Some(j) = &previous {
        if j.state == State::Done && j.identity == identity && !j.outputs.is_empty() && j.outputs.iter().all(|p| p.exists()) {
            return finish(entry, bytes, j.steps.clone(), j.outputs.clone(), true, disp);
        }
    }
    let mut steps = vec![step("inspect", Status::Ok, t, None)];
    let fail = |steps: Vec<Step>, disp: &Display| finish(entry, bytes, steps, vec![], false, disp);
    // A clean state: what an earlier run of this VM left (outputs, temporaries, spools).
    if let Some(j) = &previous {
        if let Err(e) = journal::clean(&entry.storage, &entry.name, j.pid) {
            steps.push(step("convert", Status::Failed, t, Some(format!("{e:#}"))));
            return fail(steps, disp);
        }
    }
    // The timestamp the guest edits carry: the environment's SOURCE_DATE_EPOCH, else the
    // one an earlier attempt fixed, else now.
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .or(previous.as_ref().filter(|j| j.identity == identity).and_then(|j| j.epoch))
        .unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
        });
    let mut record =
        Journal { name: entry.name.clone(), state: State::Running, identity, outputs: vec![], steps: vec![], pid: None, epoch: Some(epoch) };
    if let Err(e) = journal::write(&entry.storage, &record) {
        steps.push(step("convert", Status::Failed, t, Some(format!("{e:#}"))));
        return fail(steps, disp);
    }
    disp.step(&entry.name, "convert");
    let t = Instant::now();
    let mut args: Vec<OsString> = vec!["convert".into(), "--json".into()];
    args.extend(entry.argv.iter().cloned());
    let mut journal_err = None;
    let outcome = child::run(&args, Some(epoch), &mut |pid| {
        record.pid = Some(pid);
        if let Err(e) = journal::write(&entry.storage, &record) {
            journal_err = Some(e);
        }
    });
    let total = t.elapsed().as_secs_f64();
    match outcome {
        Ok(o) if o.ok && journal_err.is_none() => {
            let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            let copy_seconds: f64 =
                report["disks"].as_array().map(|d| d.iter().filter_map(|x| x["seconds"].as_f64()).sum()).unwrap_or(0.0);
            steps.push(Step { step: "convert".into(), status: Status::Ok, seconds: (total - copy_seconds).max(0.0), message: None });
            if entry.convert.no_copy {
                steps.push(skipped("copy", "no-copy"));
            } else {
                steps.push(Step { step: "copy".into(), status: Status::Ok, seconds: copy_seconds, message: None });
            }
        }
        Ok(o) => {
            let msg = journal_err.map(|e| format!("{e:#}")).unwrap_or(o.message);
            steps.push(Step { step: "convert".into(), status: Status::Failed, seconds: total, message: Some(msg) });
            steps.push(skipped("copy", "convert failed"));
        }
        Err(e) => {
            steps.push(Step { step: "convert".into(), status: Status::Failed, seconds: total, message: Some(format!("{e:#}")) });
            steps.push(skipped("copy", "convert failed"));
        }
    }
    let converted = steps.iter().all(|s| s.status != Status::Failed);
    if entry.validate.is_some() {
        if converted {
            steps.push(validate_step(entry, disp));
        } else {
            steps.push(skipped("validate", "convert failed"));
        }
    }
    let ok = steps.iter().all(|s| s.status != Status::Failed);
    let outputs = if converted { outputs_present(entry) } else { vec![] };
    record.state = if ok { State::Done } else { State::Failed };
    record.outputs = outputs.clone();
    record.steps = steps.clone();
    record.pid = None;
    if let Err(e) = journal::write(&entry.storage, &record) {
        steps.push(Step { step: "journal".into(), status: Status::Failed, seconds: 0.0, message: Some(format!("{e:#}")) });
    }
    finish(entry, bytes, steps, outputs, false, disp)
}
