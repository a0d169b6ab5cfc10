//! Issue 5's boot proof for the VMware-style Debian guest (initramfs-tools, `MODULES=list`,
//! no virtio in its initrd): booted under QEMU TCG on virtio-blk, the unconverted initrd never
//! finds its root; the initrd with virtio injected by `initramfs::add_modules` (modules read
//! from the guest's own tree) mounts the root from vda1 and reaches a login prompt.

mod guest_support;

use ferry_converters::initramfs::Flavor;
use guest_support::*;

const APPEND: &str = "root=/dev/vda1 ro console=ttyS0";

#[test]
fn unconverted_vmware_guest_does_not_reach_userspace_on_virtio_blk() {
    unconverted_guest_case("debian-vmware", APPEND, Some("ALERT!  /dev/vda1 does not exist"));
}

#[test]
fn vmware_guest_with_virtio_injected_boots_to_login() {
    injected_guest_case("debian-vmware", APPEND, Flavor::InitramfsTools);
}
