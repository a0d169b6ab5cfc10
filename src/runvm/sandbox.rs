//! `ferry run`'s sandbox policy: the files a spec's VMM may touch, taken from the spec and
//! the command line, handed to the runtime's Landlock + seccomp sandbox before any VMM thread
//! starts.
use super::RunArgs;
use anyhow::Context;
use ferry_formats::layout::{DeviceKind, MachineSpec, NetBackend};
use ferry_runtime::sandbox::{self, FilePolicy, LandlockOutcome};
use ferry_runtime::{ConsoleSink, VmConfig};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The policy for `spec` run as `cfg` with `args`: its disks (a qcow2/VMDK disk's whole
/// backing chain read-only), the console file (created here), `/dev/kvm`, `/dev/net/tun` for
/// tap NICs, the sockets' directories and every `--sandbox-allow` path. Host kernel, initrd and
/// firmware files are not in it: they were read before (`runtime_config`), once for all boots.
pub fn policy(spec: &MachineSpec, cfg: &VmConfig, args: &RunArgs) -> anyhow::Result<FilePolicy> {
    let mut p = FilePolicy { read_write: vec![PathBuf::from("/dev/kvm")], ..Default::default() };
    for disk in spec.disks() {
        if disk.format != "raw" {
            // Records the chain's files (see `opened_sources` below); errors are the
            // runtime's to report when it opens the disk.
            let _ = ferry_formats::disk::open_image(disk.file, None);
        }
        if disk.readonly { p.read_only.push(disk.file.clone()) } else { p.read_write.push(disk.file.clone()) }
    }
    for d in &spec.devices {
        if let DeviceKind::VirtioNet { backend: NetBackend::Tap { .. }, .. } = &d.kind {
            p.read_write.push(PathBuf::from("/dev/net/tun"));
        }
    }
    p.read_only.extend(ferry_formats::disk::opened_sources());
    if cfg.memory.backing == ferry_runtime::memory::Backing::Hugetlb {
        // The free huge pages are checked when guest RAM is mapped.
        p.read_only.push(PathBuf::from("/proc/meminfo"));
    }
    // The sandbox allows existing files only: create the console file and the firmware's
    // debug-console log now, as the runtime would (appending).
    let console = match &cfg.console {
        ConsoleSink::File(f) => Some(f),
        _ => None,
    };
    let debugcon = cfg.firmware.as_ref().and_then(|f| f.debugcon.as_ref());
    for f in console.into_iter().chain(debugcon) {
        std::fs::OpenOptions::new().create(true).append(true).custom_flags(libc::O_NOFOLLOW).open(f).with_context(|| format!("{}: cannot open for appending", f.display()))?;
        p.read_write.push(f.clone());
    }
    for s in args.qmp.iter().chain(args.console_socket.iter()) {
        p.socket_dirs.push(parent(s));
    }
    p.read_write.extend(args.sandbox_allow.iter().cloned());
    Ok(p)
}

fn parent(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Enters the sandbox (Landlock now, seccomp in each VMM thread as it starts) and runs the
/// test hook `FERRY_SANDBOX_PROBE=open:PATH` (an open after the restriction, reported on
/// stderr).
pub fn enter(policy: &FilePolicy) -> anyhow::Result<LandlockOutcome> {
    let outcome = sandbox::restrict_files(policy).context("cannot enter the sandbox (use --no-sandbox to run without it)")?;
    sandbox::enable_seccomp();
    if let Some(probe) = std::env::var_os("FERRY_SANDBOX_PROBE") {
        for item in probe.to_string_lossy().split(',') {
            if let Some(path) = item.strip_prefix("open:") {
                let r = std::fs::File::open(path).map(|_| "ok".to_string()).unwrap_or_else(|e| e.to_string());
                eprintln!("ferry run: sandbox probe: main thread: open {path}: {r}");
            }
        }
        eprintln!("ferry run: sandbox probe: landlock {outcome:?}");
    }
    Ok(outcome)
}
