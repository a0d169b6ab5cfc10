//! `ferry batch`: a manifest of the bundled sample guest under several names, run in
//! parallel with one broken entry (isolation), resumed (nothing redone), killed with SIGKILL
//! at several points and rerun (the outputs equal an uninterrupted run's: `qemu-img compare`
//! for disks, bytes for descriptions), bad manifests refused with one line before anything
//! runs, `plan` writing nothing, and shards through the Kubernetes entrypoint script merged
//! by `ferry batch report`.

mod convert_support;

use convert_support::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sample/sample.vmx")
}

fn manifest(dir: &Path, names: &[&str], extra: &str) -> PathBuf {
    let mut m = format!("[defaults]\ninput-mode = \"vmx\"\nos = \"out\"\nsource = {:?}\n{extra}\n", sample().to_str().unwrap());
    for n in names {
        m.push_str(&format!("[[vm]]\nname = \"{n}\"\n"));
    }
    let p = dir.join("fleet.toml");
    std::fs::write(&p, m).unwrap();
    p
}

fn batch(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferry")).arg("batch").args(args).output().unwrap()
}

fn report(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Every file in `dir` (sorted), and the listing of hidden ones.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn qemu_img_compare(a: &Path, b: &Path) {
    let o = Command::new("qemu-img").args(["compare", "-q"]).arg(a).arg(b).output().unwrap();
    assert!(o.status.success(), "qemu-img compare {} {}: {}", a.display(), b.display(), String::from_utf8_lossy(&o.stderr));
}

#[test]
fn parallel_run_isolates_failures_reports_and_resumes() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let m = manifest(d, &["a", "b", "c"], "");
    // A fourth entry whose source does not exist: it fails alone.
    std::fs::write(&m, std::fs::read_to_string(&m).unwrap() + "[[vm]]\nname = \"broken\"\nsource = \"nope.vmx\"\n").unwrap();
    let (r, j) = (d.join("r.json"), d.join("r.xml"));
    let o = batch(&["run", "-j", "2", "--report", r.to_str().unwrap(), "--junit", j.to_str().unwrap(), m.to_str().unwrap()]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("ferry batch: [4/4]"), "{stderr}");
    let rep = report(&r);
    let vms = rep["vms"].as_array().unwrap();
    assert_eq!(vms.len(), 4);
    for v in &vms[..3] {
        assert_eq!(v["status"], "ok", "{v}");
        assert_eq!(v["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect::<Vec<_>>(), ["inspect", "convert", "copy"]);
    }
    assert_eq!(vms[3]["status"], "failed");
    assert!(vms[3]["steps"][0]["message"].as_str().unwrap().contains("nope.vmx"), "{}", vms[3]);
    // The whole batch's peak memory (batch + children, sampled): there, and under 512 MiB.
    let peak = rep["peak_rss_kib"].as_u64().unwrap_or(0);
    assert!(peak > 1024 && peak < 512 << 10, "{rep}");
    let out = d.join("out");
    for n in ["a", "b", "c"] {
        let disk = out.join(format!("{n}-sda"));
        let o = Command::new("qemu-img").args(["check", "-q"]).arg(&disk).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(out.join(format!("{n}.ferry.json")).is_file());
    }
    let xml = std::fs::read_to_string(&j).unwrap();
    assert!(xml.contains("<testsuites name=\"ferry batch\" tests=\"12\" failures=\"1\" skipped=\"2\""), "{xml}");
    assert!(xml.contains("<testcase classname=\"ferry.batch.a\" name=\"copy\""), "{xml}");
    assert!(xml.contains("<failure message="), "{xml}");
    if have("xmllint") {
        let o = Command::new("xmllint").arg("--noout").arg(&j).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // Rerun: the three done VMs are not redone (same files, same mtimes).
    let before: Vec<_> = ["a", "b", "c"].iter().map(|n| std::fs::metadata(out.join(format!("{n}-sda"))).unwrap().modified().unwrap()).collect();
    let o = batch(&["run", "--report", r.to_str().unwrap(), m.to_str().unwrap()]);
    assert!(!o.status.success());
    let rep = report(&r);
    for (i, n) in ["a", "b", "c"].iter().enumerate() {
        assert_eq!(rep["vms"][i]["resumed"], true, "{n}");
        assert_eq!(std::fs::metadata(out.join(format!("{n}-sda"))).unwrap().modified().unwrap(), before[i]);
    }
    // A changed input (mtime) redoes the VMs that read it.
    let vmx = d.join("copy.vmx");
    std::fs::copy(sample(), &vmx).unwrap();
    std::fs::copy(sample().with_extension("vmdk"), d.join("sample.vmdk")).unwrap();
    std::fs::write(&m, std::fs::read_to_string(&m).unwrap().replace("nope.vmx", "copy.vmx")).unwrap();
    let o = batch(&["run", "--report", r.to_str().unwrap(), m.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rep = report(&r);
    assert_eq!(rep["vms"][3]["status"], "ok");
    assert_eq!(rep["vms"][3]["resumed"], false);
}

/// The outputs `ferry convert` writes for VM `name` of the sample at time `epoch`.
fn convert_alone(dir: &Path, name: &str, epoch: i64) {
    let o = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["convert", "-i", "vmx", sample().to_str().unwrap(), "-o", "local", "-os", dir.to_str().unwrap(), "-on", name])
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn killed_at_any_point_then_rerun_gives_the_uninterrupted_outputs() {
    if !have("qemu-img") {
        eprintln!("qemu-img not installed: skipped");
        return;
    }
    let names = ["k1", "k2", "k3"];
    for delay_ms in [30u64, 150, 400, 800] {
        let t = tempfile::tempdir().unwrap();
        let m = manifest(t.path(), &names, "");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["batch", "run", "-j", "2", m.to_str().unwrap()])
            .env_remove("SOURCE_DATE_EPOCH")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // The children die with the batch: give them a moment to go.
        std::thread::sleep(Duration::from_millis(200));
        let o = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["batch", "run", "-j", "2", m.to_str().unwrap()])
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .unwrap();
        assert!(o.status.success(), "after kill at {delay_ms} ms: {}", String::from_utf8_lossy(&o.stderr));
        let b = t.path().join("out");
        // The uninterrupted reference: plain `ferry convert` at the time the journal fixed
        // (the first attempt's, kept across the kill).
        let reference = tempfile::tempdir().unwrap();
        let a = reference.path();
        for n in names {
            let j: serde_json::Value = report(&b.join(format!(".{n}.ferry-batch.json")));
            assert_eq!(j["state"], "done");
            convert_alone(a, n, j["epoch"].as_i64().unwrap());
            qemu_img_compare(&a.join(format!("{n}-sda")), &b.join(format!("{n}-sda")));
            assert_eq!(outputs(a, n), outputs(&b, n), "{n} after kill at {delay_ms} ms");
        }
        // Nothing left over but the journals.
        let hidden: Vec<String> = listing(&b).into_iter().filter(|n| n.starts_with('.') && !n.ends_with(".ferry-batch.json")).collect();
        assert!(hidden.is_empty(), "after kill at {delay_ms} ms: {hidden:?}");
        let visible = |d: &Path| listing(d).into_iter().filter(|n| !n.starts_with('.')).collect::<Vec<_>>();
        assert_eq!(visible(a), visible(&b));
    }
}

#[test]
fn bad_manifests_are_one_line_and_nothing_runs() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let m = manifest(d, &["a", "b", "a"], "");
    let o = batch(&["run", m.to_str().unwrap()]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("fleet.toml:10: vm[2] (a): output \"a\" in ") && e.contains("also written by vm[0] (line 6)"), "{e}");
    assert!(!d.join("out").exists(), "nothing may run");
    let y = d.join("bad.yaml");
    std::fs::write(&y, "defaults:\n  os: out\nvm:\n  - name: a\n    source: a.vmx\n    output-allocation: \"thin\\u0007\"\n").unwrap();
    let o = batch(&["plan", y.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("bad.yaml:6: vm[0] (a): output-allocation = \"thin\\u{7}\": "), "{e}");
    std::fs::write(&y, [0xffu8, 0xfe, 0x00]).unwrap();
    let o = batch(&["run", y.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.lines().count() == 1 && e.contains("bad.yaml: manifest is not UTF-8"), "{e}");
}

#[test]
fn plan_writes_nothing_and_shows_the_inspection() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::create_dir(d.join("out")).unwrap();
    let m = manifest(d, &["p1", "p2"], "");
    let o = batch(&["plan", "--shard", "1/1", m.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["vms"].as_array().unwrap().len(), 2);
    assert_eq!(plan["vms"][0]["action"], "convert");
    assert!(plan["vms"][0]["inspection"]["guest"].is_object(), "{}", plan["vms"][0]);
    assert!(plan["vms"][0]["disk-bytes"].as_u64().unwrap() > 0);
    assert!(listing(&d.join("out")).is_empty(), "{:?}", listing(&d.join("out")));
    // Before the first run the output directory does not exist; plan still inspects, and
    // creates nothing.
    std::fs::remove_dir(d.join("out")).unwrap();
    let o = batch(&["plan", m.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(plan["vms"][1]["inspection"]["guest"].is_object(), "{}", plan["vms"][1]);
    assert!(!d.join("out").exists());
}

#[test]
fn kubernetes_entrypoint_shards_cover_the_manifest_and_reports_merge() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let names: Vec<String> = (0..7).map(|i| format!("vm{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let m = manifest(d, &refs, "no-copy = true");
    let reports = d.join("reports");
    let entry = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/entrypoint.sh");
    let mut seen = Vec::new();
    for index in 0..3 {
        let o = Command::new("sh")
            .arg(&entry)
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .env("FERRY_SHARDS", "3")
            .env("FERRY_MANIFEST", &m)
            .env("FERRY_REPORTS", &reports)
            .env("FERRY", env!("CARGO_BIN_EXE_ferry"))
            .output()
            .unwrap();
        assert!(o.status.success(), "index {index}: {}", String::from_utf8_lossy(&o.stderr));
        let r = report(&reports.join(format!("shard-{}.json", index + 1)));
        assert_eq!(r["shards"][0], format!("{}/3", index + 1));
        assert!(reports.join(format!("shard-{}.xml", index + 1)).is_file());
        for v in r["vms"].as_array().unwrap() {
            seen.push(v["name"].as_str().unwrap().to_string());
        }
    }
    seen.sort();
    assert_eq!(seen, names, "shards are disjoint and cover the manifest");
    // Without the index the script refuses.
    let o = Command::new("sh").arg(&entry).env_remove("JOB_COMPLETION_INDEX").env("FERRY_SHARDS", "3").output().unwrap();
    assert!(!o.status.success());
    let merged = d.join("all.json");
    let junit = d.join("all.xml");
    let shard_reports: Vec<String> = (1..=3).map(|i| reports.join(format!("shard-{i}.json")).to_string_lossy().into_owned()).collect();
    let mut args = vec!["report", "--json", merged.to_str().unwrap(), "--junit", junit.to_str().unwrap()];
    args.extend(shard_reports.iter().map(String::as_str));
    let o = batch(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = report(&merged);
    let got: Vec<&str> = r["vms"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(got, refs);
    assert_eq!(r["shards"], serde_json::json!(["1/3", "2/3", "3/3"]));
    assert!(std::fs::read_to_string(&junit).unwrap().contains("tests=\"21\" failures=\"0\" skipped=\"7\""));
    // The same report twice is refused: a VM in two shards.
    let o = batch(&["report", &shard_reports[0], &shard_reports[0]]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("is also in"));
}

#[test]
fn slurm_array_script_runs_its_shard() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let m = manifest(d, &["s0", "s1", "s2", "s3"], "no-copy = true");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/slurm/ferry-batch.sbatch");
    let o = Command::new("bash")
        .arg(&script)
        .arg(&m)
        .current_dir(d)
        .env("SLURM_ARRAY_TASK_ID", "5")
        .env("SLURM_ARRAY_TASK_MIN", "4")
        .env("SLURM_ARRAY_TASK_COUNT", "2")
        .env("FERRY", env!("CARGO_BIN_EXE_ferry"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = report(&d.join("reports/shard-2.json"));
    assert_eq!(r["shards"][0], "2/2");
    assert_eq!(r["vms"].as_array().unwrap().len(), 2);
}

/// The Kubernetes manifests against the bundled API schemas of `kubernetes-validate` (PyPI;
/// tests/run.sh installs it into a virtualenv and puts it on PATH), strict: unknown fields
/// fail. A broken copy must fail too, so the validator is known to be checking.
#[test]
fn kubernetes_manifests_pass_an_offline_schema_validator() {
    let tool = std::env::var("FERRY_KUBE_VALIDATE").unwrap_or_else(|_| "kubernetes-validate".into());
    if !have(&tool) {
        eprintln!("kubernetes-validate not installed: Kubernetes schema check skipped");
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "yaml")).collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    let o = Command::new(&tool).args(["--strict", "--no-warn"]).args(&files).output().unwrap();
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let t = tempfile::tempdir().unwrap();
    let bad = t.path().join("job.yaml");
    let job = std::fs::read_to_string(dir.join("job.yaml")).unwrap();
    std::fs::write(&bad, job.replace("completionMode: Indexed", "completionMode: Indexed\n  completionz: 4")).unwrap();
    let o = Command::new(&tool).arg("--strict").arg(&bad).output().unwrap();
    assert!(!o.status.success(), "a misspelt field passed");
}

/// `ferry batch validate` boots each converted guest's spec; here none was converted, so
/// every VM fails its validate step, with the spec named, in JSON and JUnit.
#[test]
fn validate_reports_each_guest() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let m = manifest(d, &["v1", "v2"], "validate = { engine = \"qemu\", timeout = 5 }");
    let (r, j) = (d.join("v.json"), d.join("v.xml"));
    let o = batch(&["validate", "--report", r.to_str().unwrap(), "--junit", j.to_str().unwrap(), m.to_str().unwrap()]);
    assert!(!o.status.success());
    let rep = report(&r);
    assert_eq!(rep["command"], "validate");
    for (i, n) in ["v1", "v2"].iter().enumerate() {
        let s = &rep["vms"][i]["steps"][0];
        assert_eq!(s["step"], "validate");
        assert_eq!(s["status"], "failed");
        assert!(s["message"].as_str().unwrap().contains(&format!("{n}.ferry.json")), "{s}");
    }
    let xml = std::fs::read_to_string(&j).unwrap();
    assert!(xml.contains("tests=\"2\" failures=\"2\""), "{xml}");
}

/// On a terminal (a pty from util-linux `script`) the batch draws indicatif's display: the
/// total bar's "N/M VMs" line; into a pipe it prints plain lines (the other tests).
#[test]
fn a_terminal_gets_the_progress_display() {
    if !have("script") {
        eprintln!("script (util-linux) not installed: skipped");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let m = manifest(t.path(), &["t1", "t2"], "no-copy = true");
    let cmd = format!("{} batch run {} 2>&1", env!("CARGO_BIN_EXE_ferry"), m.display());
    let o = Command::new("script").args(["-qec", &cmd, "/dev/null"]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("2/2 VMs"), "{out}");
    assert!(!out.contains("ferry batch: [1/2]"), "{out}");
}
