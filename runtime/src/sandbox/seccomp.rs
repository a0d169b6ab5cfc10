//! The seccomp half: one allow-list per VMM thread class, everything else fails with EPERM.
//! The lists are what each class was traced making (`strace -ff` over the runtime tests),
//! grouped by role; none of them may open files, create sockets, exec or fork.
use super::SandboxError;
use seccompiler::{BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch};
use std::collections::BTreeMap;

/// Which allow-list a thread gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadClass {
    /// vCPU threads: KVM_RUN and the device emulation exits reach (MMIO/PIO handlers,
    /// starting a device's I/O thread, inline disk and tap I/O).
    Vcpu = 0,
    /// Device I/O threads (virtio-blk workers, the tap poller): disk and eventfd I/O, interrupt
    /// injection.
    Io = 1,
    /// The QMP monitor and console-channel socket servers: accept, socket I/O, and hot-plugged
    /// disks (opened under the Landlock rules).
    Monitor = 2,
}

impl ThreadClass {
    /// The class's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            ThreadClass::Vcpu => "vcpu",
            ThreadClass::Io => "io",
            ThreadClass::Monitor => "monitor",
        }
    }
}

/// Calls every thread makes: memory, futexes, signals for vCPU kicks, time, thread exit.
const COMMON: &[i64] = &[
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_close,
    libc::SYS_futex,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_brk,
    libc::SYS_rseq,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_sigaltstack,
    libc::SYS_set_robust_list,
    libc::SYS_gettid,
    libc::SYS_getpid,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_sched_getaffinity,
    libc::SYS_sched_yield,
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_restart_syscall,
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_fcntl,
    libc::SYS_getrandom,
    libc::SYS_eventfd2,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
];

/// Disk I/O on descriptors opened before the sandbox.
const DISK: &[i64] = &[
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_lseek,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_fallocate,
    libc::SYS_ftruncate,
];

/// Starting a thread (a device's I/O worker, a monitor client).
const THREADS: &[i64] = &[libc::SYS_clone3, libc::SYS_clone];

/// The monitor's socket calls (on sockets bound before the sandbox), and opening hot-plugged
/// disks (Landlock decides which).
const MONITOR: &[i64] = &[
    libc::SYS_accept4,
    libc::SYS_recvfrom,
    libc::SYS_recvmsg,
    libc::SYS_sendto,
    libc::SYS_sendmsg,
    libc::SYS_shutdown,
    libc::SYS_setsockopt,
    libc::SYS_getsockopt,
    libc::SYS_openat,
];

fn eq(arg: u8, value: u64) -> Result<SeccompCondition, seccompiler::BackendError> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, value)
}

/// The BPF program for `class` in this process (signals only to its own threads).
fn program(class: ThreadClass) -> Result<BpfProgram, SandboxError> {
    let fail = |e: &dyn std::fmt::Display| SandboxError::Seccomp(class.name(), e.to_string());
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let mut allow = |list: &[i64]| {
        for &n in list {
            rules.insert(n, Vec::new());
        }
    };
    allow(COMMON);
    match class {
        ThreadClass::Vcpu => {
            allow(DISK);
            allow(THREADS);
            allow(&[libc::SYS_ioctl, libc::SYS_sendto, libc::SYS_sendmsg]);
        }
        ThreadClass::Io => allow(DISK),
        ThreadClass::Monitor => {
            allow(DISK);
            allow(THREADS);
            allow(MONITOR);
            allow(&[libc::SYS_ioctl]);
        }
    }
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() } as u64;
    let own = |arg| -> Result<Vec<SeccompRule>, SandboxError> { Ok(vec![SeccompRule::new(vec![eq(arg, pid).map_err(|e| fail(&e))?]).map_err(|e| fail(&e))?]) };
    // vCPU kicks: tgkill(own pid, tid, SIGRTMIN) only.
    rules.insert(libc::SYS_tgkill, own(0)?);
    // Naming a new thread (its first call, made under the creator's filter), and a new
    // thread narrowing its own filter further (no_new_privs, then seccomp itself: a filter can
    // only ever add restrictions).
    let prctl = [libc::PR_SET_NAME, libc::PR_SET_NO_NEW_PRIVS]
        .into_iter()
        .map(|op| SeccompRule::new(vec![eq(0, op as u64).map_err(|e| fail(&e))?]).map_err(|e| fail(&e)))
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_prctl, prctl);
    rules.insert(libc::SYS_seccomp, vec![SeccompRule::new(vec![eq(0, u64::from(libc::SECCOMP_SET_MODE_FILTER)).map_err(|e| fail(&e))?]).map_err(|e| fail(&e))?]);
    if class == ThreadClass::Io {
        // Interrupt injection only: KVM_IRQ_LINE (INTx) and KVM_SIGNAL_MSI.
        let line = SeccompRule::new(vec![eq(1, KVM_IRQ_LINE).map_err(|e| fail(&e))?]).map_err(|e| fail(&e))?;
        let msi = SeccompRule::new(vec![eq(1, KVM_SIGNAL_MSI).map_err(|e| fail(&e))?]).map_err(|e| fail(&e))?;
        rules.insert(libc::SYS_ioctl, vec![line, msi]);
    }
    let filter = SeccompFilter::new(rules, SeccompAction::Errno(libc::EPERM as u32), SeccompAction::Allow, TargetArch::x86_64).map_err(|e| fail(&e))?;
    filter.try_into().map_err(|e: seccompiler::BackendError| fail(&e))
}

/// `_IOW(KVMIO, 0x61, struct kvm_irq_level)`.
const KVM_IRQ_LINE: u64 = 0x4008_ae61;
/// `_IOW(KVMIO, 0xa5, struct kvm_msi)`.
const KVM_SIGNAL_MSI: u64 = 0x4020_aea5;

/// Installs `class`'s filter on the calling thread (and the threads it starts later).
pub(super) fn install(class: ThreadClass) -> Result<(), SandboxError> {
    let prog = program(class)?;
    seccompiler::apply_filter(&prog).map_err(|e| SandboxError::Seccomp(class.name(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_compiles() {
        for c in [ThreadClass::Vcpu, ThreadClass::Io, ThreadClass::Monitor] {
            assert!(!program(c).expect("program").is_empty());
        }
    }

    /// `_IOW(KVMIO, nr, size)` as the kernel's ioctl.h builds it.
    fn iow(nr: u64, size: usize) -> u64 {
        (1 << 30) | ((size as u64) << 16) | (u64::from(kvm_bindings::KVMIO) << 8) | nr
    }

    #[test]
    fn ioctl_numbers_match_kvm_bindings() {
        assert_eq!(KVM_IRQ_LINE, iow(0x61, std::mem::size_of::<kvm_bindings::kvm_irq_level>()));
        assert_eq!(KVM_SIGNAL_MSI, iow(0xa5, std::mem::size_of::<kvm_bindings::kvm_msi>()));
    }
}
