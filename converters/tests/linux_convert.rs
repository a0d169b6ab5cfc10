//! Linux conversion of realistic guest layouts (testdata/linux/*): plan, apply, golden trees,
//! idempotence, and real tools as oracles (findmnt, grub-script-check, python3 yaml).

mod linux_support;

use linux_support::*;

#[test]
fn debian12_vmware() {
    let c = convert_fixture("debian12-vmware");
    assert_eq!(findmnt_sources(&c.path("/etc/fstab")), ["/dev/vda1", "UUID=8c1f6b5e-2d3a-4f0b-9e7c-5a4d3c2b1a09", "UUID=0d2a5f1e-3b6c-4d7e-9f80-1a2b3c4d5e6f", "/dev/sr0"]);
    grub_script_check(&c.path("/boot/grub/grub.cfg"));
}
