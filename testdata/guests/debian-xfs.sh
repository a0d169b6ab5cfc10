#!/usr/bin/env bash
# Debian 12 configured like a VMware install with its root filesystem on XFS (the features
# mkfs.xfs of xfsprogs 6.1 enables by default: v5, finobt, sparse inodes, reflink, bigtime,
# inobtcount, no rmapbt): pvscsi disk sda, vmxnet3 NIC ens192, initramfs-tools with
# MODULES=list and VMware storage drivers + xfs only (no virtio); raw + VMDK + VMX.
# The XFS is made by mkfs.xfs on a file and filled by the host kernel through a loop mount
# (in a private mount namespace, so nothing stays mounted), then written at 1 MiB of the
# disk. Prints the cache directory.
NAME=debian-xfs DISK=sda NIC=ens192 INITRD=initramfs-tools GRUB_CMDLINE=""
STORAGE_MODULES="vmw_pvscsi mptspi mptsas ahci ata_piix sd_mod xfs"
source "$(dirname "$0")/debian.sh"
export PATH="$PATH:/usr/sbin:/sbin"

XFS_OPTS=(-m crc=1,finobt=1,reflink=1,rmapbt=0,bigtime=1,inobtcount=1 -i sparse=1,nrext64=0)

variant_configure() {
  local root=$1
  cat >"$root/etc/fstab" <<F
# /etc/fstab: static file system information.
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
/dev/${DISK}1      /               xfs     defaults        0       0
F
  sed -i 's/insmod ext2/insmod xfs/' "$root/boot/grub/grub.cfg"
}

# make_disk ROOT RAW : MBR disk with one Linux partition at 1 MiB holding XFS filled from ROOT.
make_disk() {
  local root=$1 raw=$2 part
  part=$(mktemp "$FERRY_CACHE/.xfs-XXXXXX")
  rm -f "$raw"; truncate -s "$DISK_SIZE" "$raw"
  echo 'label: dos
start=2048, type=83, bootable' | sfdisk -q "$raw"
  truncate -s $((DISK_SIZE - PART_OFFSET)) "$part"
  mkfs.xfs -q -f "${XFS_OPTS[@]}" "$part"
  unshare --mount --propagation private -- bash -euc '
    m=$(mktemp -d); mount -o loop "$1" "$m"; cp -a "$2/." "$m/"; umount "$m"; rmdir "$m"' \
    fill "$part" "$root"
  xfs_repair -n -f "$part" >/dev/null 2>&1 || { echo "$NAME: xfs_repair -n fails" >&2; exit 1; }
  dd if="$part" of="$raw" bs=1M seek=1 conv=notrunc,sparse status=none
  rm -f "$part"
}

variant_wrap() {
  local out=$1
  grep -q '/xfs\.ko' "$out/initrd.list" || { echo "$NAME: initrd has no xfs" >&2; exit 1; }
  qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$out/disk.raw" "$out/$NAME.vmdk"
  cat >"$out/$NAME.vmx" <<F
.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "19"
displayName = "$NAME"
guestOS = "debian12-64"
memSize = "1024"
numvcpus = "1"
firmware = "bios"
uuid.bios = "42 1d 3c 5e 8a 2b 4f 61-9c 0d 7e 2a 11 b3 c4 d8"
scsi0.present = "TRUE"
scsi0.virtualDev = "pvscsi"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "$NAME.vmdk"
scsi0:0.deviceType = "scsi-hardDisk"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.networkName = "VM Network"
ethernet0.addressType = "generated"
ethernet0.generatedAddress = "00:0c:29:b3:c4:d8"
F
}

build_guest debian-xfs.sh
