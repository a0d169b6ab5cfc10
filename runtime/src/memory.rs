//! Guest RAM: anonymous mappings registered with KVM, advised for THP and KSM.
use crate::layout;
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

/// Guest memory as the runtime uses it.
pub type Memory = GuestMemoryMmap<()>;

/// Errors while setting up guest memory.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The size is unusable.
    #[error("invalid memory size {0} MiB: must be 16..=1048576")]
    Size(u64),
    /// mmap failed.
    #[error("cannot map guest memory: {0}")]
    Map(String),
    /// KVM refused the slot.
    #[error("KVM_SET_USER_MEMORY_REGION failed: {0}")]
    Kvm(kvm_ioctls::Error),
}

/// Maps `mib` MiB of guest RAM (split around the PCI hole) and registers it with `vm`.
pub fn create(vm: &VmFd, mib: u64) -> Result<Memory, MemoryError> {
    create_with_hole(vm, mib, None)
}

/// Like [`create`], leaving `hole` (start, end) of RAM out of KVM's slots: the firmware's
/// PAM segments map it themselves (the RAM behind them stays in the returned memory).
pub fn create_with_hole(vm: &VmFd, mib: u64, hole: Option<(u64, u64)>) -> Result<Memory, MemoryError> {
    if !(16..=1 << 20).contains(&mib) {
        return Err(MemoryError::Size(mib));
    }
    let ranges: Vec<(GuestAddress, usize)> = layout::ram_ranges(mib << 20)
        .into_iter()
        .map(|(s, l)| (GuestAddress(s), l as usize))
        .collect();
    let mem = Memory::from_ranges(&ranges).map_err(|e| MemoryError::Map(e.to_string()))?;
    let mut slot = 0u32;
    for region in mem.iter() {
        let host = region.as_ptr();
        let len = region.len() as usize;
        for advice in [libc::MADV_HUGEPAGE, libc::MADV_MERGEABLE] {
            // SAFETY: host..host+len is a live private anonymous mapping owned by `mem`;
            // madvise only changes paging hints. Failure (e.g. no THP/KSM) is harmless.
            unsafe { libc::madvise(host.cast(), len, advice) };
        }
        let start = region.start_addr().0;
        let end = start + region.len();
        let pieces = match hole {
            Some((hs, he)) if hs >= start && he <= end && hs < he => vec![(start, hs), (he, end)],
            _ => vec![(start, end)],
        };
        for (s, e) in pieces.into_iter().filter(|(s, e)| s < e) {
            let desc = kvm_userspace_memory_region {
                slot,
                flags: 0,
                guest_phys_addr: s,
                memory_size: e - s,
                userspace_addr: host as u64 + (s - start),
            };
            // SAFETY: the piece lies inside the region, which stays mapped as long as `mem`
            // lives, and the VMM keeps `mem` alive for the whole life of `vm` (both are owned
            // by the same `Vm`).
            unsafe { vm.set_user_memory_region(desc) }.map_err(MemoryError::Kvm)?;
            slot += 1;
        }
    }
    Ok(mem)
}
