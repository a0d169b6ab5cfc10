//! Shared helpers of the `inspect_*` tests: the cached fixture disks built by
//! `testdata/inspect/build-fixtures.sh`, and running the `ferry` binary.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sha256_of(files: &[PathBuf]) -> String {
    let out = Command::new("sha256sum").args(files).output().expect("sha256sum");
    assert!(out.status.success());
    let all = String::from_utf8_lossy(&out.stdout);
    let joined: String = all.lines().map(|l| l.split_whitespace().next().unwrap_or_default()).collect();
    let out = Command::new("sh").arg("-c").arg(format!("printf %s {joined} | sha256sum")).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

/// Why the fixtures cannot be built on this machine, if they cannot.
fn missing_capability() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        return Some("not root: loop devices (LVM) and FUSE (ntfs-3g) need root".into());
    }
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse for ntfs-3g".into());
    }
    let ok = Command::new("losetup").arg("-f").output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        return Some("no free loop device (losetup -f failed)".into());
    }
    None
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// The fixture directory, built on first use and cached in
/// `$FERRY_CACHE/inspect-<sha256 of the scripts>`. `None` (with the reason printed) when
/// this machine lacks root, loop devices or FUSE.
pub fn fixtures() -> Option<PathBuf> {
    let dir = repo().join("testdata/inspect");
    let scripts = [dir.join("build-fixtures.sh"), dir.join("minimal-hive.pl")];
    let cache = PathBuf::from(std::env::var("FERRY_CACHE").unwrap_or_else(|_| "/var/tmp/ferry-cache".into()));
    let out = cache.join(format!("inspect-{}", &sha256_of(&scripts)[..16]));
    if out.join("manifest.env").exists() {
        return Some(out);
    }
    if let Some(why) = missing_capability() {
        eprintln!("skipping: cannot build inspection fixtures: {why}");
        return None;
    }
    std::fs::create_dir_all(&cache).unwrap();
    // One builder at a time across test binaries: flock on a lock file.
    let lock = cache.join(format!("{}.lock", out.file_name().unwrap().to_string_lossy()));
    let tmp = out.with_extension("tmp");
    let script = format!(
        "set -e; if [ ! -e '{o}/manifest.env' ]; then rm -rf '{t}'; bash '{s}' '{t}'; rm -rf '{o}'; mv '{t}' '{o}'; fi",
        o = out.display(),
        t = tmp.display(),
        s = scripts[0].display()
    );
    let st = Command::new("flock").arg(&lock).arg("sh").arg("-c").arg(&script).status().expect("flock");
    assert!(st.success(), "testdata/inspect/build-fixtures.sh failed");
    Some(out)
}

/// KEY=VALUE lines of the fixture manifest.
pub fn manifest(dir: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(dir.join("manifest.env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

/// Runs `ferry ARGS...`, asserting success; returns stdout.
pub fn ferry(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry")).args(args).output().unwrap();
    assert!(out.status.success(), "ferry {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `ferry inspect --json DISKS...` parsed.
pub fn inspect_json(disks: &[PathBuf]) -> serde_json::Value {
    let mut args = vec!["inspect", "--json"];
    let paths: Vec<String> = disks.iter().map(|p| p.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    serde_json::from_str(&ferry(&args)).unwrap()
}

/// A command's stdout, asserting success.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `blkid -p` of the filesystem at byte `offset` of `img`, as KEY -> VALUE.
pub fn blkid(img: &Path, offset: u64) -> HashMap<String, String> {
    let out = Command::new("blkid")
        .args(["-p", "-o", "export", "-O", &offset.to_string()])
        .arg(img)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.replace("\\ ", " "))))
        .collect()
}

/// `sfdisk --json IMG` partitions: (node number, start sector, size sectors, type).
pub fn sfdisk(img: &Path) -> Vec<(u32, u64, u64, String)> {
    let j: serde_json::Value = serde_json::from_str(&run("sfdisk", &["--json", &img.display().to_string()])).unwrap();
    j["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let node = p["node"].as_str().unwrap();
            let num: u32 = node.rsplit(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
            (num, p["start"].as_u64().unwrap(), p["size"].as_u64().unwrap(), p["type"].as_str().unwrap().to_string())
        })
        .collect()
}

/// The OS entry of a report whose root is `root`.
pub fn os<'a>(report: &'a serde_json::Value, root: &str) -> &'a serde_json::Value {
    report["operating_systems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["root"] == root)
        .unwrap_or_else(|| panic!("no OS with root {root} in {report:#}"))
}

/// The filesystem entry for `device`.
pub fn fs<'a>(report: &'a serde_json::Value, device: &str) -> &'a serde_json::Value {
    report["filesystems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["device"] == device)
        .unwrap_or_else(|| panic!("no filesystem {device} in {report:#}"))
}

/// `sfdisk --json IMG` partition objects (start/size in sectors, type, uuid, name).
pub fn sfdisk_json(img: &Path) -> Vec<serde_json::Value> {
    let j: serde_json::Value = serde_json::from_str(&run("sfdisk", &["--json", &img.display().to_string()])).unwrap();
    j["partitiontable"]["partitions"].as_array().unwrap().clone()
}
