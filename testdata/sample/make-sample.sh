#!/usr/bin/env bash
# Builds the bundled sample guest: a small VMware-style Linux disk (MBR, ext4 at 1 MiB) as a
# streamOptimized VMDK, described by sample.vmx. It is a guest's configuration tree, not a
# bootable system: /bin/sh is the host's dash (so the arch is detected from a real ELF), the
# kernel image is a placeholder (its virtio drivers are declared built in). The real, bootable test guests are built by testdata/guests/.
# Output is committed; rerun only to change the sample.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
t=$tmp/tree
mkdir -p $t/etc/network $t/etc/default $t/boot/grub $t/bin $t/usr/lib/systemd \
  $t/etc/systemd/system/multi-user.target.wants $t/lib/systemd/system $t/etc/initramfs-tools
cat >$t/etc/os-release <<'E'
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
ID=debian
E
echo 12.8 >$t/etc/debian_version
echo sample >$t/etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\tsample\n' >$t/etc/hosts
cat >$t/etc/fstab <<'E'
# <file system> <mount point> <type> <options> <dump> <pass>
/dev/sda1 / ext4 errors=remount-ro 0 1
E
cat >$t/etc/network/interfaces <<'E'
auto lo
iface lo inet loopback

allow-hotplug ens192
iface ens192 inet dhcp
E
cat >$t/etc/default/grub <<'E'
GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_CMDLINE_LINUX=""
E
cat >$t/boot/grub/grub.cfg <<'E'
set default="0"
menuentry 'Debian GNU/Linux' --class debian --class gnu-linux --class gnu --class os {
	insmod ext2
	linux	/boot/vmlinuz-6.1.0-50-amd64 root=/dev/sda1 ro  quiet
}
E
echo 'placeholder kernel image' >$t/boot/vmlinuz-6.1.0-50-amd64
printf 'vmw_pvscsi\nmptspi\n' >$t/etc/initramfs-tools/modules
printf '[Unit]\nDescription=Service for virtual machines hosted on VMware\n[Service]\nExecStart=/usr/bin/vmtoolsd\n[Install]\nWantedBy=multi-user.target\n' \
  >$t/lib/systemd/system/open-vm-tools.service
ln -s /lib/systemd/system/open-vm-tools.service $t/etc/systemd/system/multi-user.target.wants/open-vm-tools.service
cp /bin/dash $t/bin/sh
# A kernel with its virtio drivers built in (as Ubuntu's): no initramfs to rebuild.
mkdir -p $t/lib/modules/6.1.0-50-amd64
printf 'kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_ring.ko\nkernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/block/virtio_blk.ko\nkernel/drivers/net/virtio_net.ko\nkernel/drivers/scsi/virtio_scsi.ko\n' \
  >$t/lib/modules/6.1.0-50-amd64/modules.builtin
: >$t/lib/modules/6.1.0-50-amd64/modules.dep
: >$t/usr/lib/systemd/systemd
size=$((32 << 20))
truncate -s $size $tmp/disk.raw
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q $tmp/disk.raw
mkfs.ext4 -q -F -b 4096 -L root -U 6f1c3a52-0d3e-4b8e-9a51-3c2f0e8d7a10 -E offset=1048576 -d $t \
  $tmp/disk.raw $(((size - 1048576) / 4096))
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized $tmp/disk.raw sample.vmdk
cat >sample.vmx <<'E'
.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "19"
displayName = "sample"
guestOS = "debian12-64"
memSize = "1024"
numvcpus = "2"
cpuid.coresPerSocket = "1"
scsi0.present = "TRUE"
scsi0.virtualDev = "pvscsi"
scsi0:0.present = "TRUE"
scsi0:0.deviceType = "scsi-hardDisk"
scsi0:0.fileName = "sample.vmdk"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.networkName = "VM Network"
ethernet0.addressType = "generated"
ethernet0.generatedAddress = "00:0c:29:5a:17:3e"
uuid.bios = "56 4d 2a 1b 3c 4d 5e 6f-70 81 92 a3 b4 c5 d6 e7"
vc.uuid = "52 1a 2b 3c 4d 5e 6f 70-81 92 a3 b4 c5 d6 e7 f8"
E
