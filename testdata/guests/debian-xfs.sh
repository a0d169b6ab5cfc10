#!/usr/bin/env bash
# Debian 12 configured like a VMware install with its root filesystem on XFS (the features
# mkfs.xfs of xfsprogs 6.1 enables by default: v5, finobt, sparse inodes, reflink, bigtime,
# inobtcount, no rmapbt): pvscsi disk sda, vmxnet3 NIC ens192, initramfs-tools with
# MODULES=list and VMware storage drivers + xfs only (no virtio); raw + VMDK + VMX.
# The XFS is made by mkfs.xfs on a file and filled by the host kernel through a loop mount
# (xfs_from_tree), then written at 1 MiB of the disk. Prints the cache directory.
NAME=debian-xfs DISK=sda NIC=ens192 INITRD=initramfs-tools GRUB_CMDLINE="" GRUB_FS=xfs
STORAGE_MODULES="vmw_pvscsi mptspi mptsas ahci ata_piix sd_mod xfs"
source "$(dirname "$0")/debian.sh"
export PATH="$PATH:/usr/sbin:/sbin"

variant_configure() {
  local root=$1
  cat >"$root/etc/fstab" <<F
# /etc/fstab: static file system information.
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
/dev/${DISK}1      /               xfs     defaults        0       0
F
}

# make_disk ROOT RAW : MBR disk with one Linux partition at 1 MiB holding XFS filled from ROOT.
make_disk() {
  local root=$1 raw=$2 part
  part=$(mktemp "$FERRY_CACHE/.xfs-XXXXXX")
  rm -f "$raw"; truncate -s "$DISK_SIZE" "$raw"
  echo 'label: dos
start=2048, type=83, bootable' | sfdisk -q "$raw"
  xfs_from_tree "$part" $((DISK_SIZE - PART_OFFSET)) "$root" "${XFS_V5_OPTS[@]}"
  dd if="$part" of="$raw" bs=1M seek=1 conv=notrunc,sparse status=none
  rm -f "$part"
}

variant_wrap() {
  local out=$1
  grep -q '/xfs\.ko' "$out/initrd.list" || { echo "$NAME: initrd has no xfs" >&2; exit 1; }
  vmware_wrap "$out" d8
}

build_guest debian-xfs.sh
