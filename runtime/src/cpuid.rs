//! CPUID for the guest: KVM's supported set, normalised for topology, APIC IDs, x2APIC and the
//! hypervisor bit (the same steps Firecracker's `normalize` performs).
use kvm_bindings::{CpuId, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::Kvm;

/// vCPU topology: sockets × cores × threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuTopology {
    /// Sockets.
    pub sockets: u32,
    /// Cores per socket.
    pub cores: u32,
    /// Threads per core.
    pub threads: u32,
}

impl CpuTopology {
    /// One socket holding `vcpus` single-threaded cores.
    pub fn flat(vcpus: u32) -> Self {
        CpuTopology { sockets: 1, cores: vcpus.max(1), threads: 1 }
    }
    /// Number of vCPUs.
    pub fn vcpus(&self) -> u32 {
        self.sockets * self.cores * self.threads
    }
}

fn bits_for(n: u32) -> u32 {
    if n <= 1 {
        0
    } else {
        32 - (n - 1).leading_zeros()
    }
}

/// The APIC ID of vCPU `index` under `topo` (thread, core and socket fields packed like hardware).
pub fn apic_id(topo: &CpuTopology, index: u32) -> u32 {
    let tb = bits_for(topo.threads);
    let cb = bits_for(topo.cores);
    let thread = index % topo.threads;
    let core = (index / topo.threads) % topo.cores;
    let socket = index / (topo.threads * topo.cores);
    (socket << (tb + cb)) | (core << tb) | thread
}

/// Options that remove features the host's KVM cannot run well.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuidQuirks {
    /// Hide XSAVE, SMAP, POPCNT and CMPXCHG16B (kvm_pvm emulates CPL0 and fails on them).
    pub pvm: bool,
}

/// KVM's supported CPUID.
pub fn supported(kvm: &Kvm) -> Result<CpuId, kvm_ioctls::Error> {
    kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
}

/// Returns the CPUID of vCPU `index`.
pub fn for_vcpu(base: &CpuId, topo: &CpuTopology, index: u32, quirks: CpuidQuirks) -> CpuId {
    let mut cpuid = base.clone();
    let id = apic_id(topo, index);
    let tb = bits_for(topo.threads);
    let cb = bits_for(topo.cores);
    let per_socket = topo.cores * topo.threads;
    for e in cpuid.as_mut_slice() {
        match e.function {
            1 => {
                e.ebx = (e.ebx & 0x0000_ffff) | (id << 24) | (per_socket.min(255) << 16);
                e.ecx |= 1 << 31; // hypervisor
                e.ecx |= 1 << 21; // x2APIC (emulated by KVM's in-kernel LAPIC)
                if per_socket > 1 {
                    e.edx |= 1 << 28; // HTT: more than one logical processor per package
                }
                if quirks.pvm {
                    e.ecx &= !((1 << 26) | (1 << 27) | (1 << 23) | (1 << 13)); // XSAVE OSXSAVE POPCNT CX16
                }
            }
            4 => {
                // Cache topology: cores per package - 1 in EAX[31:26]; sharing in EAX[25:14].
                let sharing = if (e.eax >> 5) & 7 >= 3 { per_socket } else { topo.threads };
                e.eax = (e.eax & 0x3fff) | ((sharing.max(1) - 1) << 14) | ((topo.cores.max(1) - 1) << 26);
            }
            7 if e.index == 0 && quirks.pvm => e.ebx &= !(1 << 20), // SMAP
            0xd if quirks.pvm => {
                e.eax = 0;
                e.ebx = 0;
                e.ecx = 0;
                e.edx = 0;
            }
            0xb | 0x1f => {
                let (shift, count, kind) = match e.index {
                    0 => (tb, topo.threads, 1),
                    1 => (tb + cb, per_socket, 2),
                    _ => (0, 0, 0),
                };
                e.eax = shift;
                e.ebx = count;
                e.ecx = (kind << 8) | (e.index & 0xff);
                e.edx = id;
            }
            0x8000_0008 if quirks.pvm => e.ebx |= 1 << 2, // XSAVEERPTR: AMD FPU path without FXSAVE leak checks
            // KVM's PV features that the guest reaches through the hypercall instruction:
            // kvm_pvm leaves a vCPU spinning on it (an AP's first PV IPI, KVM_HC_SEND_IPI, never
            // returns), so a multi-vCPU Linux hangs bringing up its APs. Hide PV_UNHALT (7,
            // KVM_HC_KICK_CPU), PV_SEND_IPI (11) and PV_SCHED_YIELD (13); MSR-based ones stay.
            0x4000_0001 if quirks.pvm => e.eax &= !((1 << 7) | (1 << 11) | (1 << 13)),
            _ => {}
        }
    }
    cpuid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apic_ids_pack_topology_fields() {
        let t = CpuTopology { sockets: 2, cores: 3, threads: 2 };
        assert_eq!(t.vcpus(), 12);
        let ids: Vec<u32> = (0..12).map(|i| apic_id(&t, i)).collect();
        assert_eq!(ids, vec![0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13]);
        assert_eq!(apic_id(&CpuTopology::flat(64), 63), 63);
    }
}
