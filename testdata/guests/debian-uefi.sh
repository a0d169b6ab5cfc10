#!/usr/bin/env bash
# Debian 12 configured like a VMware UEFI install (`firmware = "efi"`): GPT disk, the EFI
# system partition on sda1 (FAT32, `UUID=… /boot/efi vfat umask=0077` in fstab), the root ext4
# on sda2 (`/dev/sda2` in fstab and grub.cfg), `ens192`, initramfs-tools with MODULES=list and
# VMware storage drivers only (no virtio). The ESP holds what Debian 12's `grub-install` (with
# secure boot support, its default) leaves: `\EFI\debian\` with the signed shimx64.efi,
# grubx64.efi, mmx64.efi, fbx64.efi, BOOTX64.CSV and the grub.cfg stub that finds /boot/grub
# by the root's UUID; and no `\EFI\BOOT\` fallback: the loader is registered in the VMware
# VM's NVRAM only, which does not travel. shim-signed and grub-efi-amd64-signed come from the
# mirror (installed in the guest), GRUB's x86_64-efi modules in /boot/grub as grub-install
# copies them; no GRUB i386-pc. raw + VMDK + VMX. Prints the cache directory.
NAME=debian-uefi DISK=sda NIC=ens192 INITRD=initramfs-tools GRUB_CMDLINE=""
GRUB_ROOT=/dev/sda2
STORAGE_MODULES="vmw_pvscsi mptspi mptsas ahci ata_piix sd_mod ext4"
source "$(dirname "$0")/debian.sh"
export PATH="$PATH:/usr/sbin:/sbin"

ESP_SECTORS=$((64 * 2048))              # sda1: the ESP, 64 MiB at 1 MiB
ROOT_START=$((2048 + ESP_SECTORS))      # sda2: the root, up to the backup GPT
ROOT_UUID=3b1f8c2a-6d4e-4f7a-9b2c-5e8d7a6c4b3e
ESP_ID=1A2B3C4D                         # the FAT volume id: UUID=1A2B-3C4D

# No GRUB i386-pc: this guest boots through UEFI only.
grub_pc_files() { :; }
install_grub_pc() { :; }

variant_configure() {
  local root=$1
  guest_apt_install "$root" shim-signed grub-efi-amd64-signed grub-efi-amd64-bin
  cat >>"$root/etc/fstab" <<F
/dev/${DISK}2      /               ext4    errors=remount-ro 0       1
UUID=${ESP_ID:0:4}-${ESP_ID:4:4}  /boot/efi       vfat    umask=0077      0       1
F
  sed -i "\|^/dev/${DISK}1 |d" "$root/etc/fstab"
  # update-grub's layout for a GPT disk: part_gpt, hd0,gpt2, and the search by UUID.
  sed -i -e 's/part_msdos/part_gpt/' -e 's/hd0,msdos1/hd0,gpt2/' \
    -e "s|^\(\t*\)set root='hd0,gpt2'|&\n\1search --no-floppy --fs-uuid --set=root $ROOT_UUID|" \
    "$root/boot/grub/grub.cfg"
  # What grub-install --target=x86_64-efi --uefi-secure-boot leaves on the ESP and in /boot.
  local e="$root/boot/efi/EFI/debian"
  mkdir -p "$e" "$root/boot/grub/x86_64-efi"
  cp "$root/usr/lib/shim/shimx64.efi.signed" "$e/shimx64.efi"
  cp "$root/usr/lib/shim/mmx64.efi.signed" "$e/mmx64.efi"
  cp "$root/usr/lib/shim/fbx64.efi.signed" "$e/fbx64.efi"
  cp "$root/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed" "$e/grubx64.efi"
  printf '\xff\xfe' >"$e/BOOTX64.CSV"
  printf 'shimx64.efi,debian,,This is the boot entry for debian\n' | iconv -f UTF-8 -t UTF-16LE >>"$e/BOOTX64.CSV"
  printf "search.fs_uuid %s root hd0,gpt2 \nset prefix=(\$root)'/boot/grub'\nconfigfile \$prefix/grub.cfg\n" "$ROOT_UUID" >"$e/grub.cfg"
  cp "$root"/usr/lib/grub/x86_64-efi/*.mod "$root"/usr/lib/grub/x86_64-efi/*.lst "$root/boot/grub/x86_64-efi/"
}

# make_disk ROOT RAW : GPT; sda1 = the ESP (FAT32 from ROOT/boot/efi), sda2 = ext4 from ROOT
# with /boot/efi an empty mount point.
make_disk() {
  local root=$1 raw=$2 w
  w=$(mktemp -d "$FERRY_CACHE/.uefi-XXXXXX")
  rm -f "$raw"; truncate -s "$DISK_SIZE" "$raw"
  sfdisk -q "$raw" <<F
label: gpt
start=2048, size=$ESP_SECTORS, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI System Partition"
start=$ROOT_START, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4
F
  mkfs.vfat -F 32 -i "$ESP_ID" -C "$w/esp.img" $((ESP_SECTORS / 2)) >/dev/null
  MTOOLS_SKIP_CHECK=1 mcopy -s -i "$w/esp.img" "$root/boot/efi/EFI" ::/
  fsck.fat -n "$w/esp.img" >/dev/null || { echo "$NAME: fsck.fat fails on the ESP" >&2; exit 1; }
  mv "$root/boot/efi" "$w/efi"; mkdir -m 755 "$root/boot/efi"
  # The root ends 1 MiB before the disk's end (the backup GPT's 33 sectors fit there).
  local blocks=$(((DISK_SIZE - ROOT_START * 512 - 1024 * 1024) / 4096))
  mkfs.ext4 -q -F -b 4096 -L "" -U "$ROOT_UUID" -E offset=$((ROOT_START * 512)) -d "$root" "$raw" "$blocks"
  rmdir "$root/boot/efi"; mv "$w/efi" "$root/boot/efi"
  dd if="$w/esp.img" of="$raw" bs=1M seek=1 conv=notrunc status=none
  sfdisk -q --verify "$raw" >/dev/null || { echo "$NAME: the GPT does not verify" >&2; exit 1; }
  rm -rf "$w"
}

variant_wrap() {
  local out=$1
  vmware_wrap "$out" ef
  sed -i 's/^firmware = "bios"$/firmware = "efi"/' "$out/$NAME.vmx"
  grep -q '^firmware = "efi"$' "$out/$NAME.vmx" || { echo "$NAME: the VMX is not UEFI" >&2; exit 1; }
}

build_guest debian-uefi.sh
