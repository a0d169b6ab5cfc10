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
    if !(16..=1 << 20).contains(&mib) {
        return Err(MemoryError::Size(mib));
    }
    let ranges: Vec<(GuestAddress, usize)> = layout::ram_ranges(mib << 20)
        .into_iter()
        .map(|(s, l)| (GuestAddress(s), l as usize))
        .collect();
    let mem = Memory::from_ranges(&ranges).map_err(|e| MemoryError::Map(e.to_string()))?;
    for (slot, region) in mem.iter().enumerate() {
        let host = region.as_ptr();
        let len = region.len() as usize;
        for advice in [libc::MADV_HUGEPAGE, libc::MADV_MERGEABLE] {
            // SAFETY: host..host+len is a live private anonymous mapping owned by `mem`;
            // madvise only changes paging hints. Failure (e.g. no THP/KSM) is harmless.
            unsafe { libc::madvise(host.cast(), len, advice) };
        }
        let desc = kvm_userspace_memory_region {
            slot: slot as u32,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: host as u64,
        };
        // SAFETY: the region stays mapped as long as `mem` lives, and the VMM keeps `mem`
        // alive for the whole life of `vm` (both are owned by the same `Vm`).
        unsafe { vm.set_user_memory_region(desc) }.map_err(MemoryError::Kvm)?;
    }
    Ok(mem)
}
