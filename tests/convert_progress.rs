//! `ferry convert -p`: the copy phase draws one progress bar over all disks on stderr (plain
//! lines when stderr is not a terminal), while stdout stays the JSON report (`--json`), which
//! still parses; without `-p` and without a terminal, stderr has no bar. Oracle: qemu-img
//! (the outputs have the sources' content).

mod convert_linux_support;

use convert_linux_support::*;

#[test]
fn progress_goes_to_stderr_and_json_stays_clean() {
    if !have("qemu-img") {
        eprintln!("skipped: qemu-img not installed (tests/run.sh installs it)");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (raw0, raw1) = (t.path().join("d0.raw"), t.path().join("d1.raw"));
    patterned_raw(&raw0, 48 << 20);
    patterned_raw(&raw1, 16 << 20);
    make_vmdk(&raw0, &t.path().join("p.vmdk"), "monolithicSparse");
    make_vmdk(&raw1, &t.path().join("p_1.vmdk"), "monolithicSparse");
    let vmx = t.path().join("p.vmx");
    write_data_vmx(&vmx, "progress", &["p.vmdk", "p_1.vmdk"]);
    let convert = |out: &str, extra: &[&str]| {
        let out = t.path().join(out);
        std::fs::create_dir(&out).unwrap();
        let mut args = vec!["convert", "-i", "vmx", vmx.to_str().unwrap(), "-o", "local", "-os", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = ferry(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (out, String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
    };

    let (out, stdout, stderr) = convert("with", &["-p", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is the JSON report");
    assert_eq!(report["disks"].as_array().map(Vec::len), Some(2), "{stdout}");
    // One bar over both disks: it ends at their total, 64 MiB.
    let bars: Vec<&str> = stderr.lines().filter(|l| l.contains("] ") && l.contains("MiB/")).collect();
    assert!(!bars.is_empty(), "no progress on stderr:\n{stderr}");
    assert!(bars.iter().all(|l| l.contains("/64.00 MiB")), "{stderr}");
    assert!(bars.last().unwrap().contains("64.00 MiB/64.00 MiB"), "{stderr}");
    assert_same_content(&raw0, "raw", &out.join("progress-sda"), "qcow2");
    assert_same_content(&raw1, "raw", &out.join("progress-sdb"), "qcow2");

    let (_, stdout, stderr) = convert("without", &["--json"]);
    serde_json::from_str::<serde_json::Value>(&stdout).expect("stdout is the JSON report");
    assert!(!stderr.contains("MiB/"), "a bar without -p and without a terminal:\n{stderr}");
}
