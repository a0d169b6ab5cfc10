//! `ferry inspect -i vmx|xen|ova FILE`: the disks a VM description names are inspected under
//! the names the guest gives them. Oracles: the committed sample guest's known facts (its
//! ext4 UUID and tree are fixed by testdata/sample/make-sample.sh; the Xen case reads a raw
//! copy made by qemu-img), and the cached real Debian OVA when present.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn inspect(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry")).arg("inspect").args(args).arg("--json").output().unwrap();
    assert!(out.status.success(), "ferry inspect {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check_sample(v: &Value, disk: &str) {
    assert_eq!(v["disks"][0]["name"], format!("/dev/{disk}"));
    let os = &v["operating_systems"][0];
    assert_eq!(os["root"], format!("/dev/{disk}1"));
    assert_eq!(os["distro"], "debian");
    assert_eq!(os["major_version"], 12);
    assert_eq!(os["arch"], "x86_64");
    assert_eq!(v["filesystems"][0]["uuid"], "6f1c3a52-0d3e-4b8e-9a51-3c2f0e8d7a10");
}

#[test]
fn vmx_disks_are_inspected_as_the_guest_names_them() {
    let vmx = repo().join("testdata/sample/sample.vmx");
    check_sample(&inspect(&["-i", "vmx", vmx.to_str().unwrap()]), "sda");
}

#[test]
fn xen_config_disks_are_named_xvd() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("sample.raw");
    let st = Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(repo().join("testdata/sample/sample.vmdk"))
        .arg(&raw)
        .status()
        .unwrap();
    assert!(st.success());
    let cfg = dir.path().join("sample.cfg");
    std::fs::write(
        &cfg,
        format!("name = \"sample\"\nmemory = 512\ndisk = [ 'file:{},xvda,w' ]\n", raw.display()),
    )
    .unwrap();
    check_sample(&inspect(&["-i", "xen", cfg.to_str().unwrap()]), "xvda");
}

#[test]
fn one_description_file_only() {
    let vmx = repo().join("testdata/sample/sample.vmx");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["inspect", "-i", "vmx"])
        .arg(&vmx)
        .arg(&vmx)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("takes exactly one description file, got 2"));
}

#[test]
fn real_debian_ova_when_cached() {
    let cache = PathBuf::from(std::env::var("FERRY_CACHE").unwrap_or_else(|_| "/var/tmp/ferry-cache".into()));
    let ova = std::fs::read_dir(&cache)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("debian-vmware.ova"))
        .find(|p| Path::new(p).exists());
    let Some(ova) = ova else {
        eprintln!("skipped: no cached debian-vmware guest in {} (built by testdata/guests/)", cache.display());
        return;
    };
    let v = inspect(&["-i", "ova", ova.to_str().unwrap()]);
    let os = &v["operating_systems"][0];
    assert_eq!(os["root"], "/dev/sda1");
    assert_eq!(os["distro"], "debian");
    assert_eq!(os["hostname"], "debian-vmware");
}
