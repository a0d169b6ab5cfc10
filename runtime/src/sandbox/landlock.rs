//! The Landlock half: the files a VMM may touch after setup.
use super::SandboxError;
use ::landlock::{
    path_beneath_rules, Access, AccessFs, AccessNet, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};
use std::path::PathBuf;

/// What the VMM may open once restricted.
#[derive(Clone, Debug, Default)]
pub struct FilePolicy {
    /// Opened for reading and writing (writable disks, the console file, `/dev/kvm`,
    /// `/dev/net/tun`, host paths allowed for hotplug).
    pub read_write: Vec<PathBuf>,
    /// Opened read-only (read-only disks, kernel, initrd, firmware).
    pub read_only: Vec<PathBuf>,
    /// Directories where the VMM binds (and at exit removes) its unix sockets.
    pub socket_dirs: Vec<PathBuf>,
}

/// How far the running kernel enforced the ruleset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LandlockOutcome {
    /// Every requested restriction is in force.
    Full,
    /// This kernel's Landlock ABI lacks some of them (older kernel).
    Partial,
    /// No Landlock in this kernel: nothing is restricted.
    None,
}

/// Restricts the calling thread and every thread it starts afterwards to `policy`: no other
/// file may be opened, created, removed or executed, no TCP port bound or connected, no
/// signal sent and no abstract unix socket reached outside this process's domain.
pub fn restrict_files(policy: &FilePolicy) -> Result<LandlockOutcome, SandboxError> {
    let abi = ABI::V6;
    let err = |e: ::landlock::RulesetError| SandboxError::Landlock(e.to_string());
    let rw = AccessFs::from_read(abi) | AccessFs::from_write(abi);
    let ro = AccessFs::from_read(abi);
    let sock = AccessFs::MakeSock | AccessFs::RemoveFile;
    let status = ::landlock::Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .map_err(err)?
        .handle_access(AccessNet::from_all(abi))
        .map_err(err)?
        .scope(Scope::from_all(abi))
        .map_err(err)?
        .create()
        .map_err(err)?
        .add_rules(path_beneath_rules(&policy.read_write, rw))
        .map_err(err)?
        .add_rules(path_beneath_rules(&policy.read_only, ro))
        .map_err(err)?
        .add_rules(path_beneath_rules(&policy.socket_dirs, sock))
        .map_err(err)?
        .restrict_self()
        .map_err(err)?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => LandlockOutcome::Full,
        RulesetStatus::PartiallyEnforced => LandlockOutcome::Partial,
        RulesetStatus::NotEnforced => LandlockOutcome::None,
    })
}
