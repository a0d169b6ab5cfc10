//! Initial vCPU state for the two entry protocols, plus boot MSRs, FPU and LAPIC LINT setup.
use crate::boot::Entry;
use crate::layout;
use kvm_bindings::{kvm_fpu, kvm_regs, kvm_segment, Msrs, kvm_msr_entry};
use kvm_ioctls::VcpuFd;

fn seg(selector: u16, type_: u8, long: bool) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_,
        present: 1,
        dpl: 0,
        db: u8::from(!long),
        s: 1,
        l: u8::from(long),
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// Puts the boot vCPU at `entry`.
pub fn setup_boot_vcpu(vcpu: &VcpuFd, entry: Entry) -> Result<(), kvm_ioctls::Error> {
    let mut sregs = vcpu.get_sregs()?;
    sregs.gdt.base = layout::GDT_ADDR;
    sregs.gdt.limit = 31;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    let mut regs = kvm_regs { rflags: 2, ..Default::default() };
    match entry {
        Entry::Pvh(rip) => {
            sregs.cs = seg(0x10, 0xb, false);
            let data = seg(0x18, 0x3, false);
            (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data, data, data, data, data);
            sregs.cr0 = 0x11; // PE | ET
            sregs.cr4 = 0;
            sregs.efer = 0;
            regs.rip = rip;
            regs.rbx = layout::PVH_INFO_ADDR;
        }
        Entry::Linux64(rip) => {
            sregs.cs = seg(0x08, 0xb, true);
            let data = seg(0x18, 0x3, false);
            (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data, data, data, data, data);
            sregs.cr0 = 0x8000_0011; // PG | PE | ET
            sregs.cr3 = layout::PML4_ADDR;
            sregs.cr4 = 0x20; // PAE
            sregs.efer = 0x500; // LME | LMA
            regs.rip = rip;
            regs.rsi = layout::ZERO_PAGE_ADDR;
            regs.rsp = layout::BOOT_STACK;
            regs.rbp = layout::BOOT_STACK;
        }
    }
    vcpu.set_sregs(&sregs)?;
    vcpu.set_regs(&regs)
}

/// FPU defaults, boot MSRs and LAPIC LINT0 = ExtINT / LINT1 = NMI, for every vCPU.
pub fn setup_common(vcpu: &VcpuFd) -> Result<(), kvm_ioctls::Error> {
    let fpu = kvm_fpu { fcw: 0x37f, mxcsr: 0x1f80, ..Default::default() };
    vcpu.set_fpu(&fpu)?;
    let entries = [
        kvm_msr_entry { index: 0x1a0, data: 1, ..Default::default() }, // MISC_ENABLE: fast strings
        kvm_msr_entry { index: 0x2ff, data: 0x806, ..Default::default() }, // MTRRdefType: WB, enabled
    ];
    if let Ok(msrs) = Msrs::from_entries(&entries) {
        // Hosts that refuse an MSR (kvm_pvm refuses some) still boot: the kernel sets them up.
        let _ = vcpu.set_msrs(&msrs);
    }
    if host_is_amd() {
        // HWCR.TscFreqSel (bit 24) reads 1 on every AMD CPU since family 10h; KVM starts it at
        // 0, and Linux then reports "[Firmware Bug]: TSC doesn't count with P0 frequency!"
        // (KVM accepts this bit from user space since Linux 6.7; older hosts refuse: ignored).
        let hwcr = [kvm_msr_entry { index: 0xc001_0015, data: 1 << 24, ..Default::default() }];
        if let Ok(msrs) = Msrs::from_entries(&hwcr) {
            let _ = vcpu.set_msrs(&msrs);
        }
    }
    let mut lapic = vcpu.get_lapic()?;
    let set = |regs: &mut [std::os::raw::c_char; 1024], off: usize, mode: u32| {
        let mut v = [0u8; 4];
        for (i, b) in v.iter_mut().enumerate() {
            *b = regs[off + i] as u8;
        }
        let val = (u32::from_le_bytes(v) & !0x700) | (mode << 8);
        for (i, b) in val.to_le_bytes().iter().enumerate() {
            regs[off + i] = *b as std::os::raw::c_char;
        }
    };
    set(&mut lapic.regs, 0x350, 7); // LINT0: ExtINT
    set(&mut lapic.regs, 0x360, 4); // LINT1: NMI
    vcpu.set_lapic(&lapic)
}

/// Whether the host CPU is AMD's (its CPUID vendor string; KVM passes its family through).
fn host_is_amd() -> bool {
    let id = std::arch::x86_64::__cpuid(0);
    [id.ebx, id.edx, id.ecx].iter().flat_map(|r| r.to_le_bytes()).eq(*b"AuthenticAMD")
}
