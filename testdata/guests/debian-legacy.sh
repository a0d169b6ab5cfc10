#!/usr/bin/env bash
# The VMware install (pvscsi disk sda, vmxnet3 NIC ens192, initramfs-tools with VMware storage
# drivers only) whose kernel speaks only legacy virtio: `virtio_pci.force_legacy=1` on its
# command line (grub.cfg and /etc/default/grub), as a pre-4.0 kernel would behave. raw + VMDK + VMX.
# Prints the cache directory.
NAME=debian-legacy DISK=sda NIC=ens192 INITRD=initramfs-tools GRUB_CMDLINE="virtio_pci.force_legacy=1"
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
uuid.bios = "42 1d 3c 5e 8a 2b 4f 61-9c 0d 7e 2a 11 b3 c4 e6"
scsi0.present = "TRUE"
scsi0.virtualDev = "pvscsi"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "$NAME.vmdk"
scsi0:0.deviceType = "scsi-hardDisk"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.networkName = "VM Network"
ethernet0.addressType = "generated"
ethernet0.generatedAddress = "00:0c:29:b3:c4:e6"
F
}

build_guest debian-legacy.sh
