#!/usr/bin/env bash
# Debian 12 configured as a Xen PV guest (xvda, console hvc0 with a getty, initramfs-tools with
# MODULES=list and xen-blkfront only), as raw + an xl config. Prints the cache directory.
NAME=debian-xenpv DISK=xvda NIC=eth0 INITRD=initramfs-tools GRUB_CMDLINE="console=hvc0"
STORAGE_MODULES="xen-blkfront ext4"
source "$(dirname "$0")/debian.sh"

variant_configure() {
  local root=$1
  ln -sf /lib/systemd/system/serial-getty@.service \
    "$root/etc/systemd/system/getty.target.wants/serial-getty@hvc0.service"
}

variant_wrap() {
  local out=$1
  cat >"$out/$NAME.cfg" <<F
# xl config for the Xen PV test guest
name = "$NAME"
type = "pv"
bootloader = "pygrub"
memory = 1024
vcpus = 1
uuid = "6e2a9b1c-3d4f-4a5b-8c7d-9e0f1a2b3c4d"
disk = [ 'format=raw, vdev=xvda, access=rw, target=$out/disk.raw' ]
vif = [ 'mac=00:16:3e:2a:9b:1c, bridge=xenbr0' ]
on_poweroff = "destroy"
on_reboot = "restart"
on_crash = "restart"
F
}

build_guest debian-xenpv.sh
