#!/usr/bin/env bash
# Debian 12 configured like a VMware install but with dracut instead of initramfs-tools
# (host-only image, VMware storage drivers only, no virtio), as raw + VMDK + VMX.
# Prints the cache directory.
NAME=debian-dracut DISK=sda NIC=ens192 INITRD=dracut GRUB_CMDLINE=""
STORAGE_MODULES="vmw_pvscsi mptspi mptsas ahci ata_piix sd_mod ext4"
source "$(dirname "$0")/debian.sh"

variant_configure() { :; }

variant_wrap() {
  local out=$1
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
uuid.bios = "42 1d 3c 5e 8a 2b 4f 61-9c 0d 7e 2a 11 b3 c4 d6"
scsi0.present = "TRUE"
scsi0.virtualDev = "pvscsi"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "$NAME.vmdk"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.addressType = "generated"
ethernet0.generatedAddress = "00:0c:29:b3:c4:d6"
F
}

build_guest debian-dracut.sh
