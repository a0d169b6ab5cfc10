#!/usr/bin/env bash
# Debian 12 configured like a VMware install with its root on LVM: MBR disk, /boot ext4 on
# sda1 (fstab names it /dev/sda1), an LVM PV on sda2 holding VG vg0 with the root LV (ext4,
# fstab /dev/mapper/vg0-root), lvm2 installed in the guest so that its initramfs activates
# the VG; initramfs-tools with VMware storage drivers only (no virtio), raw + VMDK + VMX.
# LVM is made by the host's lvm2 on a loop device with activation disabled (lvm_on_disk),
# and the filesystems are written at the extents it allocated (read back from `lvs`), as
# testdata/inspect/build-fixtures.sh does. Prints the cache dir.
NAME=debian-lvm DISK=sda NIC=ens192 INITRD=initramfs-tools GRUB_CMDLINE=""
GRUB_ROOT=/dev/mapper/vg0-root BOOT_PART=yes
STORAGE_MODULES="vmw_pvscsi mptspi mptsas ahci ata_piix sd_mod ext4"
source "$(dirname "$0")/debian.sh"
export PATH="$PATH:/usr/sbin:/sbin" LVM_SUPPRESS_FD_WARNINGS=1

BOOT_SECTORS=$((256 * 2048))          # sda1: /boot, 256 MiB at 1 MiB
LVM_START=$((2048 + BOOT_SECTORS))    # sda2: the PV, the rest of the disk
ROOT_LV_MIB=1100

variant_configure() {
  local root=$1
  guest_apt_install "$root" lvm2
  cat >"$root/etc/fstab" <<F
# /etc/fstab: static file system information.
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
/dev/mapper/vg0-root /               ext4    errors=remount-ro 0       1
/dev/${DISK}1      /boot           ext4    defaults        0       2
F
}

# make_disk ROOT RAW : sda1 = ext4 /boot, sda2 = LVM PV, vg0/root = ext4 /.
make_disk() {
  local root=$1 raw=$2 w
  w=$(mktemp -d "$FERRY_CACHE/.lvm-XXXXXX"); LVM_WORK=$w
  trap lvm_cleanup EXIT
  rm -f "$raw"; truncate -s "$DISK_SIZE" "$raw"
  sfdisk -q "$raw" <<F
label: dos
start=2048, size=$BOOT_SECTORS, type=83, bootable
start=$LVM_START, type=8e
F
  lvm_on_disk "$raw" "$LVM_START" vg0 root "$ROOT_LV_MIB"
  # The root filesystem without /boot's contents, and /boot on its own.
  mv "$root/boot" "$w/boot"; mkdir "$root/boot"
  mkfs.ext4 -q -F -b 4096 -L root -d "$root" "$w/root.ext4" "${ROOT_LV_MIB}M"
  rmdir "$root/boot"; mv "$w/boot" "$root/boot"
  mkfs.ext4 -q -F -b 4096 -L boot -d "$root/boot" "$w/boot.ext4" $((BOOT_SECTORS / 2))K
  dd if="$w/boot.ext4" of="$raw" bs=1M seek=1 conv=notrunc,sparse status=none
  dd if="$w/root.ext4" of="$raw" bs=1M seek=$((LV_OFFSET / 1048576)) conv=notrunc,sparse status=none
  rm -rf "$w"; LVM_WORK=""
}

variant_wrap() {
  local out=$1
  grep -q 'dm-mod\|dm_mod' "$out/initrd.list" || { echo "$NAME: initrd has no dm-mod" >&2; exit 1; }
  grep -q 'sbin/lvm' "$out/initrd.list" || { echo "$NAME: initrd has no lvm" >&2; exit 1; }
  vmware_wrap "$out" d7 short
}

build_guest debian-lvm.sh
