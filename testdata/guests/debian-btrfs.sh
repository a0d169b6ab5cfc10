#!/usr/bin/env bash
# Debian 12 configured like a VMware install with its root on a btrfs subvolume, laid out as
# Debian's and Ubuntu's installers do: MBR disk, /boot ext4 on sda1 (`/dev/sda1` in fstab),
# btrfs on sda2 with the subvolumes `@` (the root, also the default subvolume) and `@home`,
# fstab `UUID=… / btrfs defaults,subvol=@` and `UUID=… /home btrfs defaults,subvol=@home`,
# grub.cfg `root=/dev/sda2 ro rootflags=subvol=@` (what update-grub's 10_linux adds for a
# root on a subvolume); btrfs-progs in the guest (its initramfs hook), initramfs-tools with
# MODULES=list and VMware storage drivers + btrfs only (no virtio; btrfs's dependencies
# come with it, checked). The btrfs is made by `mkfs.btrfs --rootdir --subvol` (btrfs-progs
# 6.11+; no loop device, no host kernel btrfs) and checked by `btrfs check --readonly`;
# raw + VMDK + VMX. Prints the cache directory.
NAME=debian-btrfs DISK=sda NIC=ens192 INITRD=initramfs-tools GRUB_CMDLINE="rootflags=subvol=@"
GRUB_ROOT=/dev/sda2 BOOT_PART=yes
STORAGE_MODULES="vmw_pvscsi mptspi mptsas ahci ata_piix sd_mod ext4 btrfs"
source "$(dirname "$0")/debian.sh"
export PATH="$PATH:/usr/sbin:/sbin"

# 2 GiB, not debian.sh's 1.5: mkfs.btrfs --rootdir wants about 1.4 GiB for this tree (its
# estimate of the chunks it needs, DUP metadata) and would grow a smaller image file.
DISK_SIZE=$((2048 * 1024 * 1024))
BOOT_SECTORS=$((256 * 2048))            # sda1: /boot, 256 MiB at 1 MiB
BTRFS_START=$((2048 + BOOT_SECTORS))    # sda2: the btrfs, the rest of the disk
BTRFS_UUID=6f1c2d3e-4b5a-4c69-8d7e-0f1a2b3c4d5e

variant_configure() {
  local root=$1
  guest_apt_install "$root" btrfs-progs
  # update-grub puts rootflags=subvol=@ on the linux line itself: /etc/default/grub has none.
  sed -i 's/^GRUB_CMDLINE_LINUX=.*/GRUB_CMDLINE_LINUX=""/' "$root/etc/default/grub"
  cat >"$root/etc/fstab" <<F
# /etc/fstab: static file system information.
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
UUID=$BTRFS_UUID /               btrfs   defaults,subvol=@ 0       0
/dev/${DISK}1      /boot           ext4    defaults        0       2
UUID=$BTRFS_UUID /home           btrfs   defaults,subvol=@home 0       0
F
  echo "This file lives in the @home subvolume." >"$root/home/README"
}

# make_disk ROOT RAW : sda1 = ext4 /boot, sda2 = btrfs with @ (/, default) and @home (/home).
make_disk() {
  local root=$1 raw=$2 w
  w=$(mktemp -d "$FERRY_CACHE/.btrfs-XXXXXX")
  rm -f "$raw"; truncate -s "$DISK_SIZE" "$raw"
  sfdisk -q "$raw" <<F
label: dos
start=2048, size=$BOOT_SECTORS, type=83, bootable
start=$BTRFS_START, type=83
F
  mkfs.ext4 -q -F -b 4096 -L boot -d "$root/boot" "$w/boot.ext4" $((BOOT_SECTORS / 2))K
  # The tree mkfs.btrfs copies: @ = the root without /boot's and /home's contents (their
  # mount points stay, empty), @home = /home's. Moved, not copied, and moved back after.
  mkdir "$w/tree"
  mv "$root" "$w/tree/@"
  mv "$w/tree/@/boot" "$w/boot"; mkdir -m 755 "$w/tree/@/boot"
  mv "$w/tree/@/home" "$w/tree/@home"; mkdir -m 755 "$w/tree/@/home"
  local bytes=$((DISK_SIZE - BTRFS_START * 512))
  truncate -s $bytes "$w/root.btrfs"
  mkfs.btrfs -q -f -U "$BTRFS_UUID" --rootdir "$w/tree" --subvol default:@ --subvol rw:@home "$w/root.btrfs" >&2
  [ "$(stat -c %s "$w/root.btrfs")" = $bytes ] || { echo "$NAME: mkfs.btrfs grew the filesystem past sda2" >&2; exit 1; }
  rmdir "$w/tree/@/boot" "$w/tree/@/home"
  mv "$w/tree/@home" "$w/tree/@/home"; mv "$w/boot" "$w/tree/@/boot"
  mv "$w/tree/@" "$root"
  btrfs check --readonly "$w/root.btrfs" >/dev/null 2>&1 || { echo "$NAME: btrfs check fails" >&2; exit 1; }
  dd if="$w/boot.ext4" of="$raw" bs=1M seek=1 conv=notrunc,sparse status=none
  dd if="$w/root.btrfs" of="$raw" bs=512 seek=$BTRFS_START conv=notrunc,sparse status=none
  rm -rf "$w"
}

variant_wrap() {
  local out=$1 kver dep
  kver=$(cat "$out/kernel-version")
  # btrfs.ko and every module it depends on (modules.dep: xor, raid6_pq, zstd_compress,
  # libcrc32c on Debian 12's 6.1).
  for dep in $(sed -n 's|^kernel/fs/btrfs/btrfs\.ko:||p' "$out/root/lib/modules/$kver/modules.dep") kernel/fs/btrfs/btrfs.ko; do
    grep -q "/${dep##*/}" "$out/initrd.list" || { echo "$NAME: initrd has no ${dep##*/}" >&2; exit 1; }
  done
  grep -q 'bin/btrfs$' "$out/initrd.list" || { echo "$NAME: initrd has no btrfs tool" >&2; exit 1; }
  vmware_wrap "$out" da
}

build_guest debian-btrfs.sh
