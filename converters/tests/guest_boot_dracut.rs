//! Issue 5's boot proof for the dracut variant of the VMware-style guest (host-only dracut
//! image with VMware storage drivers, virtio omitted): unconverted, it never finds its root
//! on virtio-blk; with virtio injected it mounts vda1 and reaches a login prompt.
//! `rd.timeout`/`rd.retry` only shorten how long dracut waits for the root before giving up.

mod guest_support;

use ferry_converters::initramfs::Flavor;
use guest_support::*;

const APPEND: &str = "root=/dev/vda1 ro console=ttyS0 rd.retry=10 rd.timeout=40";

#[test]
fn unconverted_dracut_guest_does_not_reach_userspace_on_virtio_blk() {
    unconverted_guest_case("debian-dracut", APPEND, None);
}

#[test]
fn dracut_guest_with_virtio_injected_boots_to_login() {
    injected_guest_case("debian-dracut", APPEND, Flavor::Dracut);
}
