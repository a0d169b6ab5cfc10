//! Issue 16's opt-in proof on a real Windows guest: `FERRY_WINDOWS_IMAGE` (a VMX, OVA or
//! disk image the user gives) is converted with `VIRTIO_WIN`'s drivers into a QEMU script,
//! which boots it (KVM when the host has it, else TCG; `FERRY_WINDOWS_TIMEOUT` seconds,
//! default 3600) until the first-boot service writes "Ferry first boot finished" to COM1.
//! Skips with one line when `FERRY_WINDOWS_IMAGE` is unset.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn real_windows_guest_converts_and_finishes_its_first_boot() {
    let Some(image) = std::env::var_os("FERRY_WINDOWS_IMAGE").map(PathBuf::from) else {
        eprintln!("skipped: set FERRY_WINDOWS_IMAGE to a Windows VMX, OVA or disk image (and VIRTIO_WIN) to run it");
        return;
    };
    let vw = std::env::var_os("VIRTIO_WIN").expect("FERRY_WINDOWS_IMAGE is set: VIRTIO_WIN must name the virtio-win ISO or directory");
    let timeout: u64 = std::env::var("FERRY_WINDOWS_TIMEOUT").ok().and_then(|t| t.parse().ok()).unwrap_or(3600);
    let mode = match image.extension().and_then(|e| e.to_str()) {
        Some("vmx") => "vmx",
        Some("ova") => "ova",
        _ => "disk",
    };
    let t = tempfile::Builder::new().prefix("ferry-win-").tempdir_in("/var/tmp").unwrap();
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["convert", "-i", mode])
        .arg(&image)
        .args(["-o", "qemu", "-os"])
        .arg(&out)
        .args(["-on", "win"])
        .env("VIRTIO_WIN", &vw)
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&o.stdout));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = t.path().join("serial.log");
    let mut qemu = Command::new("sh")
        .arg(out.join("win.sh"))
        // The script's -serial stdio is COM1.
        .args(["-display", "none"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let text = loop {
        std::thread::sleep(Duration::from_secs(2));
        let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
        let exited = qemu.try_wait().ok().flatten().is_some();
        if text.contains("Ferry first boot finished") || exited || start.elapsed() > Duration::from_secs(timeout) {
            break text;
        }
    };
    let _ = qemu.kill();
    let _ = qemu.wait();
    eprintln!("serial log after {:.0?}:\n{text}", start.elapsed());
    assert!(text.contains("Ferry first boot finished"), "no first-boot milestone on COM1 (see {})", Path::new(&log).display());
}
