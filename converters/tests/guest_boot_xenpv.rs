//! Issue 5's boot proof for the Xen PV Debian guest (xvda, hvc0, initrd with xen-blkfront
//! only): on KVM's virtio-blk the unconverted initrd never finds its root; with virtio
//! injected it mounts vda1 and reaches a login prompt on ttyS0.

mod guest_support;

use ferry_converters::initramfs::Flavor;
use guest_support::*;

const APPEND: &str = "root=/dev/vda1 ro console=ttyS0";

#[test]
fn unconverted_xenpv_guest_does_not_reach_userspace_on_virtio_blk() {
    unconverted_guest_case("debian-xenpv", APPEND, Some("ALERT!  /dev/vda1 does not exist"));
}

#[test]
fn xenpv_guest_with_virtio_injected_boots_to_login() {
    injected_guest_case("debian-xenpv", APPEND, Flavor::InitramfsTools);
}
