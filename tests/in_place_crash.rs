//! `ferry convert --in-place` is crash-safe (a redo journal, `.IMAGE.ferry-in-place`): the
//! process is killed with SIGKILL at fixed points (`FERRY_CRASH_AT`: everything journaled
//! but not committed; committed but nothing applied; half applied) and at timed moments of a
//! real conversion; after each, the image is untouched (byte-identical) or a committed
//! journal is there, and the rerun (or, for a committed journal, a later `ferry img sync`)
//! leaves an image that `qemu-img check` finds clean and `qemu-img compare` finds identical
//! to an uninterrupted run's, with identical descriptions and no journal left. Guests: the
//! bundled sample (always) and the cached Debian 12 VMware guest (a real initramfs rebuild,
//! with qcow2 cluster allocations) when it is built.

mod convert_linux_support;

use convert_linux_support::{cached_guest, have, sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EPOCH: &str = "1700000000";

fn sh(dir: &Path, cmd: &str) {
    let o = Command::new("sh").arg("-c").arg(cmd).current_dir(dir).output().unwrap();
    assert!(o.status.success(), "{cmd}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

fn in_place_cmd(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
    c.args(["convert", "-i", "disk", "g.qcow2", "--in-place", "-o", "local", "-os", ".", "-on", "g"])
        .current_dir(dir)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env_remove("FERRY_CRASH_AT")
        .stdout(Stdio::null());
    c
}

fn run_ok(mut c: Command) {
    let o = c.stderr(Stdio::piped()).output().unwrap();
    assert!(o.status.success(), "{c:?}: {}", String::from_utf8_lossy(&o.stderr));
}

fn check_clean(dir: &Path) {
    let o = Command::new("qemu-img").args(["check", "g.qcow2"]).current_dir(dir).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "qemu-img check: {}", String::from_utf8_lossy(&o.stdout));
}

fn journal(dir: &Path) -> PathBuf {
    dir.join(".g.qcow2.ferry-in-place")
}

fn descriptions(dir: &Path) -> Vec<(String, String)> {
    ["g.xml", "g.sh", "g.ferry.json"]
        .iter()
        .map(|n| (n.to_string(), std::fs::read_to_string(dir.join(n)).unwrap_or_else(|e| panic!("{n}: {e}"))))
        .collect()
}

/// Everything after a crash: the rerun's image equals the uninterrupted one, clean, with
/// the same descriptions and no journal or temporary left.
fn assert_finished(dir: &Path, reference: &Path, what: &str) {
    assert!(!journal(dir).exists(), "{what}: journal left");
    check_clean(dir);
    let o = Command::new("qemu-img").args(["compare", "-q"]).arg(dir.join("g.qcow2")).arg(reference.join("g.qcow2")).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{what}: the image differs from the uninterrupted run's");
    assert_eq!(descriptions(dir), descriptions(reference), "{what}: descriptions differ");
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && !n.ends_with(".ferry-sync.json"))
        .collect();
    assert!(left.is_empty(), "{what}: left {left:?}");
}

/// `synced` holds the synced, unconverted `g.qcow2` (and its sync state file).
fn crash_everywhere(work: &Path, synced: &Path, timed_ms: &[u64]) {
    let fresh = |name: &str| -> PathBuf {
        let d = work.join(name);
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).unwrap();
        sh(work, &format!("cp --sparse=always {}/g.qcow2 {name}/g.qcow2", synced.display()));
        d
    };
    let original = sha256(&synced.join("g.qcow2"));
    let reference = fresh("reference");
    let t = Instant::now();
    run_ok(in_place_cmd(&reference));
    eprintln!("uninterrupted --in-place: {:.2?}", t.elapsed());
    assert_ne!(sha256(&reference.join("g.qcow2")), original, "the conversion changed nothing");
    check_clean(&reference);

    for point in ["journaled", "committed", "applying"] {
        let d = fresh(point);
        let status = in_place_cmd(&d).env("FERRY_CRASH_AT", point).stderr(Stdio::null()).status().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{point}: not killed: {status}");
        assert!(journal(&d).exists(), "{point}: no journal");
        if point != "applying" {
            // Before the commit point's apply: not one byte of the image changed.
            assert_eq!(sha256(&d.join("g.qcow2")), original, "{point}: the image changed");
            check_clean(&d);
        }
        if point == "committed" {
            // Any later ferry command on the image finishes the conversion: here a sync
            // round with nothing to apply.
            std::fs::write(d.join("none.txt"), "").unwrap();
            let o = Command::new(env!("CARGO_BIN_EXE_ferry"))
                .args(["img", "sync", "--changed-blocks", "none.txt", "g.qcow2", "g.qcow2"])
                .current_dir(&d)
                .output()
                .unwrap();
            let e = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success() && e.contains("finishing the interrupted in-place conversion"), "{e}");
            std::fs::remove_file(d.join("none.txt")).unwrap();
            assert_finished(&d, &reference, point);
            std::fs::remove_dir_all(&d).unwrap();
            continue;
        }
        let o = in_place_cmd(&d).stderr(Stdio::piped()).output().unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{point}: rerun: {e}");
        let said = if point == "journaled" { "discarded the uncommitted in-place journal" } else { "finishing the interrupted" };
        assert!(e.contains(said), "{point}: {e}");
        assert_finished(&d, &reference, point);
        std::fs::remove_dir_all(&d).unwrap();
    }

    // Timed kills anywhere in the run.
    let mut phases = Vec::new();
    for &ms in timed_ms {
        let d = fresh(&format!("kill-{ms}"));
        let mut child = in_place_cmd(&d).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill();
        let status = child.wait().unwrap();
        let image_changed = sha256(&d.join("g.qcow2")) != original;
        let phase = match (status.success(), journal(&d).exists(), image_changed) {
            (true, _, _) => "finished",
            (false, true, _) => "journal left",
            (false, false, false) => "untouched",
            (false, false, true) => "applied, journal removed",
        };
        phases.push(format!("{ms} ms: {phase}"));
        if !image_changed {
            check_clean(&d);
        }
        if !status.success() {
            let o = in_place_cmd(&d).stderr(Stdio::piped()).output().unwrap();
            assert!(o.status.success(), "kill at {ms} ms: rerun: {}", String::from_utf8_lossy(&o.stderr));
        }
        assert_finished(&d, &reference, &format!("kill at {ms} ms"));
        std::fs::remove_dir_all(&d).unwrap();
    }
    eprintln!("timed kills: {phases:?}");
}

/// The bundled sample guest: base copy + one sync round, then the crashes.
#[test]
fn sample_guest_in_place_survives_sigkill() {
    if !have("qemu-io") {
        eprintln!("qemu-io not installed: skipped");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sample/sample.vmdk");
    sh(d, &format!("qemu-img convert -O vmdk -o subformat=monolithicSparse {} base.vmdk", sample.display()));
    sh(d, "qemu-img create -q -f vmdk -b base.vmdk -F vmdk base-000001.vmdk");
    // Fresh clusters far from the data: the sync allocates, and so does the conversion.
    sh(d, "qemu-io -f vmdk -c 'write -P 0x5a 512k 64k' -c 'write -P 0x5b 30M 256k' base-000001.vmdk");
    std::fs::create_dir(d.join("synced")).unwrap();
    run_ok({
        let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
        c.args(["img", "convert", "-O", "qcow2", "base.vmdk", "synced/g.qcow2"]).current_dir(d);
        c
    });
    run_ok({
        let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
        c.args(["img", "sync", "synced/g.qcow2", "base-000001.vmdk"]).current_dir(d);
        c
    });
    crash_everywhere(d, &d.join("synced"), &[5, 30, 60]);
    // Another image's journal that cannot be read does not block this one; its own does.
    let r = d.join("reference");
    let mut foreign = b"FERRYIPJ".to_vec();
    foreign.extend_from_slice(&99u32.to_le_bytes());
    foreign.resize(4096, 0);
    std::fs::write(r.join(".other.qcow2.ferry-in-place"), &foreign).unwrap();
    std::fs::write(r.join("none.txt"), "").unwrap();
    let sync = || Command::new(env!("CARGO_BIN_EXE_ferry")).args(["img", "sync", "--changed-blocks", "none.txt", "g.qcow2", "g.qcow2"]).current_dir(&r).output().unwrap();
    let o = sync();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::rename(r.join(".other.qcow2.ferry-in-place"), journal(&r)).unwrap();
    let o = sync();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains(".g.qcow2.ferry-in-place: in-place journal version 99 is not supported") && e.lines().count() == 1, "{e}");
}

/// The Debian 12 VMware test guest (1.5 GiB; the conversion rebuilds its initramfs and
/// allocates ~7 MiB of new qcow2 clusters): base copy, a sync round whose delta (written
/// with qemu-io) rewrites /etc/motd's block, then crashes at the fixed points and at
/// timed moments spread over the conversion.
#[test]
fn debian_guest_in_place_survives_sigkill() {
    let Some(guest) = cached_guest("debian-vmware") else {
        eprintln!("debian-vmware test guest not built in $FERRY_CACHE: skipped");
        return;
    };
    if !have("qemu-io") {
        eprintln!("qemu-io not installed: skipped");
        return;
    }
    let t = tempfile::Builder::new().prefix("ferry-inplace-").tempdir_in("/var/tmp").unwrap();
    let d = t.path();
    let (synced, _) = debian_synced(&guest, d);
    crash_everywhere(d, &synced, &[150, 400, 700, 1000, 1400]);
}

/// Base copy of the Debian guest's VMDK + one sync round of a delta that fills /etc/motd's
/// block with 0x5a: returns the directory holding `g.qcow2` and the block's disk offset.
pub fn debian_synced(guest: &Path, work: &Path) -> (PathBuf, u64) {
    let vmdk = guest.join("debian-vmware.vmdk");
    let raw = guest.join("disk.raw");
    // The partition starts at 1 MiB; debugfs says which 4 KiB block holds /etc/motd.
    let o = Command::new("debugfs").arg("-R").arg("blocks /etc/motd").arg(format!("{}?offset=1048576", raw.display())).output().unwrap();
    let block: u64 = String::from_utf8_lossy(&o.stdout).split_whitespace().next().and_then(|s| s.parse().ok()).expect("motd block");
    let offset = (1 << 20) + block * 4096;
    sh(work, &format!("qemu-img create -q -f vmdk -b {} -F vmdk delta.vmdk", vmdk.display()));
    sh(work, &format!("qemu-io -f vmdk -c 'write -P 0x5a {offset} 4k' delta.vmdk"));
    let synced = work.join("synced");
    std::fs::create_dir(&synced).unwrap();
    let ferry = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_ferry")).args(args).current_dir(work).output().unwrap();
        assert!(o.status.success(), "ferry {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    ferry(&["img", "convert", "-O", "qcow2", &vmdk.to_string_lossy(), "synced/g.qcow2"]);
    ferry(&["img", "sync", "synced/g.qcow2", "delta.vmdk"]);
    assert_pattern(&synced.join("g.qcow2"), offset);
    (synced, offset)
}

/// The 4 KiB at `offset` of `image` are all 0x5a (qemu-io's pattern check).
pub fn assert_pattern(image: &Path, offset: u64) {
    let o = Command::new("qemu-io").arg("-c").arg(format!("read -P 0x5a {offset} 4k")).arg(image).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && out.contains("read 4096/4096") && !out.contains("failed"), "{}: {out}", image.display());
}
