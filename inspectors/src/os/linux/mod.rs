//! Linux roots: everything `OsInfo` holds, read through the guest view.

mod boot;
pub mod fstab;
mod kernels;
mod net;
pub mod release;
mod tools;
pub mod virtio;

use super::{arch::elf_arch, GuestFs, KnownDevice, OsInfo};

/// Files whose ELF header gives the arch, libguestfs's list.
const ARCH_BINARIES: [&str; 5] = ["/bin/bash", "/bin/ls", "/bin/echo", "/bin/rm", "/bin/sh"];

/// Reads the facts that need only the root filesystem (before other mounts): fstab.
pub fn fstab(g: &GuestFs, known: &[KnownDevice]) -> Vec<super::FstabEntry> {
    g.text("/etc/fstab").map(|t| fstab::parse(&t, known)).unwrap_or_default()
}

/// Fills `os` from a guest view with fstab mounts applied. `uefi` tells where to look
/// for the bootloader.
pub fn inspect(g: &GuestFs, os: &mut OsInfo, uefi: bool) {
    os.os_type = "linux".into();
    release::detect(g, os);
    os.hostname = release::hostname(g);
    os.arch = ARCH_BINARIES
        .iter()
        .find_map(|b| g.head(b, 64).and_then(|h| elf_arch(&h)))
        .unwrap_or("unknown")
        .to_string();
    tools::packages(g, os);
    let (kernels, orphans) = kernels::detect(g);
    os.kernels = kernels;
    os.kernels_without_modules = orphans;
    if let Some((kind, cfg)) = boot::bootloader(g, uefi) {
        os.bootloader = Some(kind);
        os.bootloader_config = Some(cfg);
    }
    os.initramfs_generator = boot::initramfs_generator(g);
    os.network = net::detect(g);
    let debs = tools::dpkg_installed(g);
    os.hypervisor_tools = tools::hypervisor_tools(g, &debs);
    os.selinux = tools::selinux(g);
}
