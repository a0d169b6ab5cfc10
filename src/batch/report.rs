//! Batch reports: one JSON document per run (or shard), its JUnit XML rendering (a
//! `testcase` per VM and step: inspect, convert, copy, validate), and the merge of several
//! shards' JSON reports (`ferry batch report`).

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Reports larger than this are refused by `ferry batch report`.
const MAX_REPORT_BYTES: u64 = 256 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    Failed,
    Skipped,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// inspect, convert, copy, validate.
    pub step: String,
    pub status: Status,
    pub seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VmReport {
    pub name: String,
    pub status: Status,
    /// Finished in an earlier run with the same inputs: not redone.
    #[serde(default)]
    pub resumed: bool,
    #[serde(default)]
    pub disk_bytes: u64,
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<std::path::PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// "run", "plan", "validate" or "merged".
    pub command: String,
    pub manifest: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<String>,
    pub jobs: usize,
    pub seconds: f64,
    /// Peak VmRSS summed over the batch and all its child processes at one moment (KiB,
    /// sampled every 20 ms); a merged report has the largest shard's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_kib: Option<u64>,
    pub vms: Vec<VmReport>,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.vms.iter().filter(|v| v.status == Status::Failed).count()
    }

    pub fn summary(&self) -> String {
        let ok = self.vms.iter().filter(|v| v.status == Status::Ok).count();
        let resumed = self.vms.iter().filter(|v| v.resumed).count();
        format!(
            "{} VMs: {ok} ok ({resumed} already done), {} failed, {:.1} s",
            self.vms.len(),
            self.failed(),
            self.seconds
        )
    }
}

/// Reads one JSON report, naming the file in errors.
pub fn read(path: &Path) -> anyhow::Result<Report> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    if meta.len() > MAX_REPORT_BYTES {
        anyhow::bail!("{shown}: report is {} bytes, over the {MAX_REPORT_BYTES}-byte limit", meta.len());
    }
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("{shown}: not a ferry batch report: line {}: {e}", e.line()))
}

/// Merges shard reports: VMs in name order; a VM in two reports is an error.
pub fn merge(reports: &[(String, Report)]) -> anyhow::Result<Report> {
    let mut vms: Vec<VmReport> = Vec::new();
    let mut from = std::collections::HashMap::new();
    let mut shards = Vec::new();
    let mut seconds: f64 = 0.0;
    let mut jobs = 0;
    let mut peak_rss_kib: Option<u64> = None;
    for (file, r) in reports {
        seconds = seconds.max(r.seconds);
        peak_rss_kib = peak_rss_kib.max(r.peak_rss_kib);
        jobs += r.jobs;
        shards.extend(r.shards.iter().cloned());
        for v in &r.vms {
            if let Some(other) = from.insert(v.name.clone(), file.clone()) {
                anyhow::bail!("{file}: VM {:?} is also in {other}", v.name);
            }
            vms.push(v.clone());
        }
    }
    vms.sort_by(|a, b| a.name.cmp(&b.name));
    shards.sort();
    let manifest = reports.first().map(|(_, r)| r.manifest.clone()).unwrap_or_default();
    Ok(Report { command: "merged".into(), manifest, shards, jobs, seconds, peak_rss_kib, vms })
}

/// The JUnit XML rendering: one `testsuite` per VM, one `testcase` per step.
pub fn junit(r: &Report) -> anyhow::Result<String> {
    let mut w = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let count = |s: Status| r.vms.iter().flat_map(|v| &v.steps).filter(|x| x.status == s).count();
    let tests = r.vms.iter().map(|v| v.steps.len()).sum::<usize>().to_string();
    let mut root = BytesStart::new("testsuites");
    root.push_attribute(("name", "ferry batch"));
    root.push_attribute(("tests", tests.as_str()));
    root.push_attribute(("failures", count(Status::Failed).to_string().as_str()));
    root.push_attribute(("skipped", count(Status::Skipped).to_string().as_str()));
    root.push_attribute(("time", format!("{:.3}", r.seconds).as_str()));
    w.write_event(Event::Start(root))?;
    for v in &r.vms {
        let mut suite = BytesStart::new("testsuite");
        let fails = v.steps.iter().filter(|x| x.status == Status::Failed).count().to_string();
        let skips = v.steps.iter().filter(|x| x.status == Status::Skipped).count().to_string();
        let time: f64 = v.steps.iter().map(|s| s.seconds).sum();
        suite.push_attribute(("name", v.name.as_str()));
        suite.push_attribute(("tests", v.steps.len().to_string().as_str()));
        suite.push_attribute(("failures", fails.as_str()));
        suite.push_attribute(("errors", "0"));
        suite.push_attribute(("skipped", skips.as_str()));
        suite.push_attribute(("time", format!("{time:.3}").as_str()));
        w.write_event(Event::Start(suite))?;
        for s in &v.steps {
            let mut tc = BytesStart::new("testcase");
            let class = format!("ferry.batch.{}", v.name);
            tc.push_attribute(("classname", class.as_str()));
            tc.push_attribute(("name", s.step.as_str()));
            tc.push_attribute(("time", format!("{:.3}", s.seconds).as_str()));
            let body = match s.status {
                Status::Ok => None,
                Status::Failed => Some("failure"),
                Status::Skipped => Some("skipped"),
            };
            match body {
                None => {
                    w.write_event(Event::Empty(tc))?;
                }
                Some(tag) => {
                    w.write_event(Event::Start(tc))?;
                    let msg = s.message.clone().unwrap_or_default();
                    let first = msg.lines().next().unwrap_or("").to_string();
                    let mut el = BytesStart::new(tag);
                    el.push_attribute(("message", first.as_str()));
                    if tag == "failure" {
                        w.write_event(Event::Start(el))?;
                        w.write_event(Event::Text(BytesText::new(&msg)))?;
                        w.write_event(Event::End(BytesEnd::new(tag)))?;
                    } else {
                        w.write_event(Event::Empty(el))?;
                    }
                    w.write_event(Event::End(BytesEnd::new("testcase")))?;
                }
            }
        }
        w.write_event(Event::End(BytesEnd::new("testsuite")))?;
    }
    w.write_event(Event::End(BytesEnd::new("testsuites")))?;
    let mut s = String::from_utf8(w.into_inner())?;
    s.push('\n');
    Ok(s)
}

/// Writes the JSON report and/or its JUnit rendering, each atomically.
pub fn write(r: &Report, json: Option<&Path>, junit_path: Option<&Path>) -> anyhow::Result<()> {
    if let Some(p) = json {
        let mut data = serde_json::to_vec_pretty(r)?;
        data.push(b'\n');
        super::journal::write_atomic(p, &data).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    }
    if let Some(p) = junit_path {
        super::journal::write_atomic(p, junit(r)?.as_bytes()).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    }
    Ok(())
}
