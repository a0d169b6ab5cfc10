//! Guest RAM: anonymous (default), memfd or hugetlbfs-backed mappings registered with KVM,
//! advised for transparent huge pages and KSM unless the caller opts out.
use crate::layout;
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use std::os::fd::FromRawFd;
use vm_memory::{FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

/// Guest memory as the runtime uses it.
pub type Memory = GuestMemoryMmap<()>;

/// What backs guest RAM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backing {
    /// Private anonymous memory (QEMU's default `memory-backend-ram`).
    #[default]
    Anonymous,
    /// A shared memfd (`memory-backend-memfd`): shareable with another process.
    Memfd,
    /// A memfd on hugetlbfs (`memory-backend-memfd,hugetlb=on`): 2 MiB pages reserved by the
    /// host (`vm.nr_hugepages`).
    Hugetlb,
}

/// How guest RAM is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryOptions {
    /// Advise transparent huge pages (`MADV_HUGEPAGE`).
    pub thp: bool,
    /// Advise KSM merging (`MADV_MERGEABLE`; anonymous memory only, as KSM merges no other).
    pub ksm: bool,
    /// The backing.
    pub backing: Backing,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        MemoryOptions { thp: true, ksm: true, backing: Backing::Anonymous }
    }
}

/// Errors while setting up guest memory.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The size is unusable.
    #[error("invalid memory size {0} MiB: must be 16..=1048576")]
    Size(u64),
    /// hugetlbfs pages are 2 MiB.
    #[error("invalid memory size {0} MiB for hugetlb backing: must be a multiple of 2 MiB")]
    HugeSize(u64),
    /// Too few huge pages are free: faulting one in later would kill the VMM with SIGBUS.
    #[error("hugetlb backing needs {need} free huge pages of {size_kib} KiB, the host has {free} (raise vm.nr_hugepages)")]
    HugePages { need: u64, free: u64, size_kib: u64 },
    /// The memfd could not be made.
    #[error("cannot create the {0} guest-memory file: {1}")]
    Backing(&'static str, std::io::Error),
    /// mmap failed.
    #[error("cannot map guest memory: {0}")]
    Map(String),
    /// KVM refused the slot.
    #[error("KVM_SET_USER_MEMORY_REGION failed: {0}")]
    Kvm(kvm_ioctls::Error),
}

/// Maps `mib` MiB of guest RAM (split around the PCI hole) as `opts` asks and registers it
/// with `vm`, leaving `hole` (start, end) of RAM out of KVM's slots: the firmware's PAM
/// segments map it themselves (the RAM behind them stays in the returned memory).
pub fn create_with_hole(vm: &VmFd, mib: u64, opts: &MemoryOptions, hole: Option<(u64, u64)>) -> Result<Memory, MemoryError> {
    if !(16..=1 << 20).contains(&mib) {
        return Err(MemoryError::Size(mib));
    }
    let ranges = layout::ram_ranges(mib << 20);
    let mem = match opts.backing {
        Backing::Anonymous => {
            let r: Vec<(GuestAddress, usize)> = ranges.iter().map(|&(s, l)| (GuestAddress(s), l as usize)).collect();
            Memory::from_ranges(&r)
        }
        Backing::Memfd | Backing::Hugetlb => {
            let huge = opts.backing == Backing::Hugetlb;
            if huge && !mib.is_multiple_of(2) {
                return Err(MemoryError::HugeSize(mib));
            }
            let file = memfd(huge, mib << 20)?;
            let mut offset = 0u64;
            let mut r = Vec::new();
            for &(s, l) in &ranges {
                let f = file.try_clone().map_err(|e| MemoryError::Backing(backing_name(huge), e))?;
                r.push((GuestAddress(s), l as usize, Some(FileOffset::new(f, offset))));
                offset += l;
            }
            Memory::from_ranges_with_files(r.iter().map(|(a, l, f)| (*a, *l, f.clone())))
        }
    }
    .map_err(|e| MemoryError::Map(e.to_string()))?;
    let mut slot = 0u32;
    for region in mem.iter() {
        let host = region.as_ptr();
        let len = region.len() as usize;
        for (wanted, advice) in [(opts.thp && opts.backing != Backing::Hugetlb, libc::MADV_HUGEPAGE), (opts.ksm && opts.backing == Backing::Anonymous, libc::MADV_MERGEABLE)] {
            if wanted {
                // SAFETY: host..host+len is a live mapping owned by `mem`; madvise only
                // changes paging hints. Failure (e.g. no THP/KSM in this kernel) is harmless.
                unsafe { libc::madvise(host.cast(), len, advice) };
            }
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

fn backing_name(huge: bool) -> &'static str {
    if huge {
        "hugetlb"
    } else {
        "memfd"
    }
}

/// A sealed-size anonymous file of `len` bytes (hugetlbfs when `huge`).
fn memfd(huge: bool, len: u64) -> Result<std::fs::File, MemoryError> {
    if huge {
        let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let field = |name: &str| {
            info.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        };
        let (free, size_kib) = (field("HugePages_Free:"), field("Hugepagesize:").max(1));
        let need = len.div_ceil(size_kib << 10);
        if free < need {
            return Err(MemoryError::HugePages { need, free, size_kib });
        }
    }
    let flags = libc::MFD_CLOEXEC | if huge { libc::MFD_HUGETLB } else { 0 };
    // SAFETY: the name is a NUL-terminated static string; memfd_create only returns a new fd.
    let fd = unsafe { libc::memfd_create(c"ferry-guest-ram".as_ptr(), flags) };
    if fd < 0 {
        return Err(MemoryError::Backing(backing_name(huge), std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.set_len(len).map_err(|e| MemoryError::Backing(backing_name(huge), e))?;
    Ok(file)
}

/// Gives the host pages behind one guest page back (the balloon's inflate): `MADV_DONTNEED`
/// for anonymous memory, a punched hole for a memfd. False when `addr..addr+len` is not
/// inside one RAM region.
pub fn discard(mem: &Memory, addr: GuestAddress, len: usize) -> bool {
    let Some(region) = mem.find_region(addr) else { return false };
    let Ok(slice) = mem.get_slice(addr, len) else { return false };
    if let Some(fo) = region.file_offset() {
        use std::os::fd::AsRawFd;
        let Some(at) = addr.0.checked_sub(region.start_addr().0).and_then(|o| o.checked_add(fo.start())) else { return false };
        // SAFETY: punching a hole in the memfd backing this region only zeroes those file
        // pages, which the guest gave up; the mapping stays valid.
        let r = unsafe {
            libc::fallocate(fo.file().as_raw_fd(), libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, at as libc::off_t, len as libc::off_t)
        };
        return r == 0;
    }
    let guard = slice.ptr_guard_mut();
    // SAFETY: the range lies inside a private anonymous guest-RAM mapping (get_slice checked
    // it lies in a region); MADV_DONTNEED only drops its contents, which the guest gave up by
    // inflating the page, and the mapping stays valid.
    let r = unsafe { libc::madvise(guard.as_ptr().cast(), len, libc::MADV_DONTNEED) };
    r == 0
}
