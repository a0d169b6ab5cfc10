#!/usr/bin/env bash
# Debian 12 laid out like a RHEL install on VMware: MBR disk (2 GiB), /boot on sda1 as XFS
# v4 (mkfs.xfs -m crc=0; fstab names it by UUID), an LVM PV on sda2 holding VG rhel with the
# root LV on XFS v5 with RHEL 9's (= xfsprogs 6.1's) defaults (fstab /dev/mapper/rhel-root,
# grub `root=/dev/mapper/rhel-root rd.lvm.lv=rhel/root`), lvm2 in the guest, a dracut
# host-only initramfs with the VMware storage drivers + xfs + dm_mod and dracut's lvm module
# (no virtio: checked), NIC ens192 by ifupdown; raw + VMDK + VMX.
# The root XFS is filled by the host kernel through a loop mount (xfs_from_tree); /boot by
# mkfs.xfs itself from a protofile (xfs_from_proto), since kernels built without
# CONFIG_XFS_SUPPORT_V4 (this project's build hosts' among them) refuse to mount v4. LVM is
# made by the host's lvm2 with activation disabled (lvm_on_disk; lvm.env says where the
# root LV is). Prints the cache directory.
NAME=debian-xfslvm DISK=sda NIC=ens192 INITRD=dracut GRUB_CMDLINE="rd.lvm.lv=rhel/root"
GRUB_ROOT=/dev/mapper/rhel-root BOOT_PART=yes GRUB_FS=xfs
STORAGE_MODULES="vmw_pvscsi mptspi mptsas ahci ata_piix sd_mod xfs dm_mod"
source "$(dirname "$0")/debian.sh"
export PATH="$PATH:/usr/sbin:/sbin" LVM_SUPPRESS_FD_WARNINGS=1

DISK_SIZE=$((2048 * 1024 * 1024))
BOOT_SECTORS=$((320 * 2048))          # sda1: /boot, 320 MiB at 1 MiB (mkfs.xfs's minimum is 300)
LVM_START=$((2048 + BOOT_SECTORS))    # sda2: the PV, the rest of the disk
ROOT_LV_MIB=1500
BOOT_UUID=5c1d3e7a-90b2-4f48-8d6e-2a7b41c9e0f3

variant_configure() {
  local root=$1
  guest_apt_install "$root" lvm2
  cat >"$root/etc/fstab" <<F

#
# /etc/fstab
# Created by anaconda
#
# Accessible filesystems, by reference, are maintained under '/dev/disk/'.
# See man pages fstab(5), findfs(8), mount(8) and/or blkid(8) for more info.
#
/dev/mapper/rhel-root   /                       xfs     defaults        0 0
UUID=$BOOT_UUID /boot                   xfs     defaults        0 0
F
  # dracut's host-only detection sees the build host's root, not this LV: ask for lvm.
  mkdir -p "$root/etc/dracut.conf.d"
  echo 'add_dracutmodules+=" lvm "' >"$root/etc/dracut.conf.d/20-lvm.conf"
}

# make_disk ROOT RAW : sda1 = XFS v4 /boot, sda2 = LVM PV, rhel/root = XFS v5 /.
make_disk() {
  local root=$1 raw=$2 w
  w=$(mktemp -d "$FERRY_CACHE/.xfslvm-XXXXXX"); LVM_WORK=$w
  trap lvm_cleanup EXIT
  rm -f "$raw"; truncate -s "$DISK_SIZE" "$raw"
  sfdisk -q "$raw" <<F
label: dos
start=2048, size=$BOOT_SECTORS, type=83, bootable
start=$LVM_START, type=8e
F
  lvm_on_disk "$raw" "$LVM_START" rhel root "$ROOT_LV_MIB"
  xfs_from_proto "$w/boot.xfs" $((BOOT_SECTORS * 512)) "$root/boot" -m crc=0,uuid=$BOOT_UUID
  # The root filesystem without /boot's contents.
  mv "$root/boot" "$w/boot"; mkdir "$root/boot"
  xfs_from_tree "$w/root.xfs" $((ROOT_LV_MIB * 1024 * 1024)) "$root" "${XFS_V5_OPTS[@]}"
  rmdir "$root/boot"; mv "$w/boot" "$root/boot"
  dd if="$w/boot.xfs" of="$raw" bs=1M seek=1 conv=notrunc,sparse status=none
  dd if="$w/root.xfs" of="$raw" bs=1M seek=$((LV_OFFSET / 1048576)) conv=notrunc,sparse status=none
  rm -rf "$w"; LVM_WORK=""
}

variant_wrap() {
  local out=$1 m
  for m in '/xfs\.ko' 'dm-mod\|dm_mod' 'sbin/lvm' '/vmw_pvscsi\.ko'; do
    grep -q "$m" "$out/initrd.list" || { echo "$NAME: initrd has no $m" >&2; exit 1; }
  done
  vmware_wrap "$out" d9
}

build_guest debian-xfslvm.sh
