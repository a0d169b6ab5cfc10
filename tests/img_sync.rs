//! `ferry img sync`: warm-migration rounds. A base VMDK plus deltas written with `qemu-io`
//! (delta VMDKs, a qcow2 overlay, a changed-block list); after `ferry img convert` of the
//! base and one sync per round, the target equals the source chain (`qemu-img compare`) and
//! passes `qemu-img check`. A sync killed with SIGKILL leaves a target that `qemu-img check`
//! accepts; another round is refused until the rerun of the interrupted one finishes it.
//! At cutover `ferry convert --in-place` gives what converting the whole chain gives.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn have(tool: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success())
}

fn sh(dir: &Path, cmd: &str) {
    let o = Command::new("sh").arg("-c").arg(cmd).current_dir(dir).output().unwrap();
    assert!(o.status.success(), "{cmd}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

fn ferry(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferry")).args(args).current_dir(dir).output().unwrap()
}

fn ferry_ok(dir: &Path, args: &[&str]) -> String {
    let o = ferry(dir, args);
    assert!(o.status.success(), "ferry {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn compare(dir: &Path, a: &str, b: &str) {
    sh(dir, &format!("qemu-img compare {a} {b}"));
}

#[test]
fn base_copy_plus_rounds_equals_the_chain() {
    if !have("qemu-io") {
        eprintln!("qemu-io not installed: skipped");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    sh(d, "qemu-img create -q -f vmdk -o subformat=monolithicSparse base.vmdk 64M");
    sh(d, "qemu-io -f vmdk -c 'write -P 0xaa 0 8M' -c 'write -P 0xbb 20M 1M' -c 'write -P 0xcc 60M 4M' base.vmdk");
    // Snapshot 1: the base freezes, writes go to the delta.
    sh(d, "qemu-img create -q -f vmdk -b base.vmdk -F vmdk base-000001.vmdk");
    sh(d, "qemu-io -f vmdk -c 'write -P 0x11 1M 64k' -c 'write -z 20M 512k' -c 'write -P 0x12 40M 3M' -c 'write -P 0x13 63M 8k' base-000001.vmdk");
    ferry_ok(d, &["img", "convert", "-O", "qcow2", "base.vmdk", "target.qcow2"]);
    compare(d, "target.qcow2", "base.vmdk");
    let j: serde_json::Value = serde_json::from_str(&ferry_ok(d, &["img", "sync", "--json", "target.qcow2", "base-000001.vmdk"])).unwrap();
    // Only the delta's grains were applied, not the disk.
    let applied = j["bytes-applied"].as_u64().unwrap();
    assert!(((3 << 20) + (64 << 10)..8 << 20).contains(&applied), "{j}");
    compare(d, "target.qcow2", "base-000001.vmdk");
    // Snapshot 2 on top of 1.
    sh(d, "qemu-img create -q -f vmdk -b base-000001.vmdk -F vmdk base-000002.vmdk");
    sh(d, "qemu-io -f vmdk -c 'write -P 0x21 1M 4k' -c 'write -P 0x22 62M 1M' base-000002.vmdk");
    ferry_ok(d, &["img", "sync", "target.qcow2", "base-000002.vmdk"]);
    compare(d, "target.qcow2", "base-000002.vmdk");
    // A qcow2 overlay round.
    sh(d, "qemu-img create -q -f qcow2 -b base-000002.vmdk -F vmdk top.qcow2");
    sh(d, "qemu-io -c 'write -P 0x33 5M 2M' top.qcow2");
    ferry_ok(d, &["img", "sync", "target.qcow2", "top.qcow2"]);
    compare(d, "target.qcow2", "top.qcow2");
    // A changed-block list (as CBT reports it): only the listed range is read.
    sh(d, "qemu-io -c 'write -P 0x44 0x3000000 0x100000' top.qcow2");
    std::fs::write(d.join("cbt.txt"), "# offset length\n0x3000000 0x100000\n").unwrap();
    ferry_ok(d, &["img", "sync", "--changed-blocks", "cbt.txt", "target.qcow2", "top.qcow2"]);
    compare(d, "target.qcow2", "top.qcow2");
    sh(d, "qemu-img check -q target.qcow2");
    // A raw target works the same way.
    ferry_ok(d, &["img", "convert", "-O", "raw", "base.vmdk", "target.raw"]);
    for delta in ["base-000001.vmdk", "base-000002.vmdk"] {
        ferry_ok(d, &["img", "sync", "target.raw", delta]);
    }
    compare(d, "target.raw", "base-000002.vmdk");
    // Errors: one line naming the file, the line and the value.
    std::fs::write(d.join("bad.txt"), "0x3000000 0x10000000000\n").unwrap();
    let o = ferry(d, &["img", "sync", "--changed-blocks", "bad.txt", "target.qcow2", "top.qcow2"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("bad.txt:1: range \"0x3000000 0x10000000000\": past the end"), "{e}");
    let o = ferry(d, &["img", "sync", "target.qcow2", "target.raw"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("give --changed-blocks"));
}

#[test]
fn a_killed_sync_leaves_a_usable_target_and_the_rerun_finishes() {
    if !have("qemu-io") {
        eprintln!("qemu-io not installed: skipped");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    sh(d, "qemu-img create -q -f vmdk -o subformat=monolithicSparse base.vmdk 256M");
    sh(d, "qemu-io -f vmdk -c 'write -P 0xaa 0 16M' base.vmdk");
    sh(d, "qemu-img create -q -f vmdk -b base.vmdk -F vmdk d1.vmdk");
    sh(d, "qemu-io -f vmdk -c 'write -P 0x11 8M 96M' -c 'write -P 0x12 200M 40M' d1.vmdk");
    sh(d, "qemu-img create -q -f vmdk -b d1.vmdk -F vmdk d2.vmdk");
    sh(d, "qemu-io -f vmdk -c 'write -P 0x21 0 1M' d2.vmdk");
    for delay_ms in [40u64, 120, 300] {
        let _ = std::fs::remove_file(d.join("t.qcow2"));
        let _ = std::fs::remove_file(d.join(".t.qcow2.ferry-sync.json"));
        ferry_ok(d, &["img", "convert", "-O", "qcow2", "base.vmdk", "t.qcow2"]);
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["img", "sync", "t.qcow2", "d1.vmdk"])
            .current_dir(d)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        // Usable: qemu-img check finds no corruption (leaked clusters, exit 3, are allowed).
        let o = Command::new("qemu-img").args(["check", "t.qcow2"]).current_dir(d).output().unwrap();
        assert!(matches!(o.status.code(), Some(0) | Some(3)), "after kill at {delay_ms} ms: {}", String::from_utf8_lossy(&o.stdout));
        if !status.success() {
            // Interrupted: the next round is refused until this one is finished.
            let o = ferry(d, &["img", "sync", "t.qcow2", "d2.vmdk"]);
            let e = String::from_utf8_lossy(&o.stderr);
            assert!(!o.status.success() && e.contains("interrupted sync from"), "{e}");
        }
        ferry_ok(d, &["img", "sync", "t.qcow2", "d1.vmdk"]);
        compare(d, "t.qcow2", "d1.vmdk");
        ferry_ok(d, &["img", "sync", "t.qcow2", "d2.vmdk"]);
        compare(d, "t.qcow2", "d2.vmdk");
    }
}

/// The cutover: base copy + two sync rounds + `ferry convert --in-place` gives the image a
/// one-shot `ferry convert` of the whole chain gives (same SOURCE_DATE_EPOCH), and it really
/// was converted (it differs from the unconverted chain). The bundled sample guest is the
/// base (a monolithicSparse VMDK), the deltas written with qemu-io outside its files.
#[test]
fn cutover_in_place_equals_converting_the_whole_chain() {
    if !have("qemu-io") {
        eprintln!("qemu-io not installed: skipped");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sample/sample.vmdk");
    sh(d, &format!("qemu-img convert -O vmdk -o subformat=monolithicSparse {} base.vmdk", sample.display()));
    sh(d, "qemu-img create -q -f vmdk -b base.vmdk -F vmdk base-000001.vmdk");
    sh(d, "qemu-io -f vmdk -c 'write -P 0x5a 512k 64k' -c 'write -P 0x5b 30M 256k' base-000001.vmdk");
    sh(d, "qemu-img create -q -f vmdk -b base-000001.vmdk -F vmdk base-000002.vmdk");
    sh(d, "qemu-io -f vmdk -c 'write -P 0x6a 600k 8k' base-000002.vmdk");
    std::fs::create_dir_all(d.join("whole")).unwrap();
    std::fs::create_dir_all(d.join("warm")).unwrap();
    let convert = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_ferry")).args(args).current_dir(d).env("SOURCE_DATE_EPOCH", "1700000000").output().unwrap();
        assert!(o.status.success(), "ferry {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    convert(&["convert", "-i", "disk", "base-000002.vmdk", "-o", "local", "-os", "whole", "-on", "g"]);
    ferry_ok(d, &["img", "convert", "-O", "qcow2", "base.vmdk", "warm/g.qcow2"]);
    ferry_ok(d, &["img", "sync", "warm/g.qcow2", "base-000001.vmdk"]);
    ferry_ok(d, &["img", "sync", "warm/g.qcow2", "base-000002.vmdk"]);
    let report: serde_json::Value =
        serde_json::from_str(&convert(&["convert", "-i", "disk", "warm/g.qcow2", "--in-place", "-o", "local", "-os", "warm", "-on", "g", "--json"])).unwrap();
    let written = report["disks"][0]["written-bytes"].as_u64().unwrap();
    assert!(written > 0 && written < 4 << 20, "{report}");
    compare(d, "whole/g-sda", "warm/g.qcow2");
    let o = Command::new("qemu-img").args(["compare", "-q", "warm/g.qcow2", "base-000002.vmdk"]).current_dir(d).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "the in-place conversion changed nothing");
    sh(d, "qemu-img check -q warm/g.qcow2");
    // The descriptions name the image itself, and no copy was written.
    let xml = std::fs::read_to_string(d.join("warm/g.xml")).unwrap();
    assert!(xml.contains("g.qcow2") && xml.contains("type='qcow2'"), "{xml}");
    assert!(!d.join("warm/g-sda").exists());
    // The same with `ferry convert --copy-only` making the base copy.
    std::fs::create_dir_all(d.join("warm2")).unwrap();
    convert(&["convert", "-i", "disk", "base.vmdk", "--copy-only", "-o", "local", "-os", "warm2", "-on", "g"]);
    compare(d, "warm2/g-sda", "base.vmdk");
    ferry_ok(d, &["img", "sync", "warm2/g-sda", "base-000001.vmdk"]);
    ferry_ok(d, &["img", "sync", "warm2/g-sda", "base-000002.vmdk"]);
    // The base copy's descriptions are in warm2: the cutover replaces them (--overwrite).
    convert(&["convert", "-i", "disk", "warm2/g-sda", "--in-place", "-o", "local", "-os", "warm2", "-on", "g", "--overwrite"]);
    compare(d, "whole/g-sda", "warm2/g-sda");
    // A VMDK cannot be converted in place.
    let o = ferry(d, &["convert", "-i", "disk", "base.vmdk", "--in-place", "-o", "local", "-os", "warm"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--in-place needs a qcow2 or raw image"));
}
