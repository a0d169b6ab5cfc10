//! Guest RAM backing and advice, read back from the running VMM's `/proc/PID/smaps`: THP
//! (`hg`) and KSM (`mg`) by default, `--no-thp`/`--no-ksm` drop them, `--memory-backing
//! memfd` maps a shared memfd, `hugetlb` is refused in one line when the host reserved too few
//! huge pages; a micro-guest still runs to its exit code on a memfd.
mod runtime_support;
use runtime_support::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The spec's 128 MiB of RAM is one mapping of this size.
const RAM_KIB: u64 = 128 << 10;

/// Starts `ferry run -S` (vCPUs stopped, memory mapped) with `flags`, returns the header line
/// and `VmFlags` of the guest-RAM mapping, then kills it.
fn ram_mapping(spec: &std::path::Path, flags: &[&str]) -> (String, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "-S", "--console", "/dev/null"])
        .args(flags)
        .arg(spec)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferry run");
    let smaps = format!("/proc/{}/smaps", child.id());
    let start = Instant::now();
    let found = loop {
        if let Some(m) = std::fs::read_to_string(&smaps).ok().and_then(|s| find_ram(&s)) {
            break Some(m);
        }
        if start.elapsed() > Duration::from_secs(60) || child.try_wait().ok().flatten().is_some() {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let out = child.wait_with_output().expect("wait");
    found.unwrap_or_else(|| panic!("no {RAM_KIB} KiB mapping in {smaps}: {}", String::from_utf8_lossy(&out.stderr)))
}

/// The header line and VmFlags of the first mapping of exactly `RAM_KIB`.
fn find_ram(smaps: &str) -> Option<(String, Vec<String>)> {
    let mut header = None;
    let mut size_ok = false;
    for line in smaps.lines() {
        if let Some(kib) = line.strip_prefix("Size:") {
            size_ok = kib.trim().trim_end_matches("kB").trim().parse::<u64>() == Ok(RAM_KIB);
        } else if let Some(flags) = line.strip_prefix("VmFlags:") {
            if size_ok {
                return Some((header.clone().unwrap_or_default(), flags.split_whitespace().map(String::from).collect()));
            }
        } else if line.split_whitespace().next().is_some_and(|f| f.contains('-') && f.chars().all(|c| c.is_ascii_hexdigit() || c == '-')) {
            header = Some(line.to_string());
            size_ok = false;
        }
    }
    None
}

#[test]
fn guest_ram_is_advised_for_thp_and_ksm_unless_opted_out() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = write_spec(dir.path(), "hello");
    let (_, flags) = ram_mapping(&spec, &[]);
    assert!(flags.contains(&"hg".into()) && flags.contains(&"mg".into()), "{flags:?}");
    let (_, flags) = ram_mapping(&spec, &["--no-ksm"]);
    assert!(flags.contains(&"hg".into()) && !flags.contains(&"mg".into()), "{flags:?}");
    let (_, flags) = ram_mapping(&spec, &["--no-thp", "--no-ksm"]);
    assert!(!flags.contains(&"hg".into()) && !flags.contains(&"mg".into()), "{flags:?}");
}

#[test]
fn memfd_backing_is_a_shared_memfd_and_the_guest_runs_on_it() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = write_spec(dir.path(), "hello");
    let (header, flags) = ram_mapping(&spec, &["--memory-backing", "memfd"]);
    assert!(header.contains("/memfd:ferry-guest-ram"), "{header}");
    assert!(flags.contains(&"sh".into()) && flags.contains(&"hg".into()) && !flags.contains(&"mg".into()), "{flags:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "--no-reboot", "--timeout", "60", "--memory-backing", "memfd"])
        .arg(&spec)
        .output()
        .expect("ferry run");
    assert_eq!(out.status.code(), Some(0x31), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ferry micro-guest: hello"));
}

#[test]
fn hugetlb_backing_needs_reserved_pages() {
    if !kvm_available() {
        return;
    }
    let info = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
    let free: u64 = info.lines().find_map(|l| l.strip_prefix("HugePages_Free:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = write_spec(dir.path(), "hello");
    if free >= 64 {
        let (header, _) = ram_mapping(&spec, &["--memory-backing", "hugetlb"]);
        assert!(header.contains("/memfd:ferry-guest-ram"), "{header}");
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ferry")).args(["run", "--memory-backing", "hugetlb"]).arg(&spec).output().expect("ferry run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("hugetlb backing needs 64 free huge pages of 2048 KiB, the host has"), "{err}");
}
