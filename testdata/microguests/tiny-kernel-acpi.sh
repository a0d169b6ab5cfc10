#!/bin/sh
# The tiny Linux 6.1 kernel of tiny-kernel.sh with ACPI (tables, power button, ACPI PCI hotplug)
# enabled, to check the runtime's ACPI tables with a real kernel; otherwise the same recipe. Origin:
# (recipe: /work/shared/notes/vmm-anchors.md appendix): tinyconfig + serial console, PCI/MSI,
# virtio-pci blk/console, ext4, PVH entry; uncompressed vmlinux booted through PVH.
# Output: $FERRY_CACHE/tiny-kernel-<hash of this script>/vmlinux (cached; ~3 min on 2 idle cores).
# Needs: linux-source-6.1 flex bison bc libelf-dev (Debian).
set -eu
cache=${FERRY_CACHE:-/var/tmp/ferry-cache}
hash=$(sha256sum "$0" | cut -c1-16)
out="$cache/tiny-kernel-acpi-$hash"
[ -f "$out/vmlinux" ] && { echo "$out/vmlinux"; exit 0; }
tarball=$(ls /usr/src/linux-source-6.1*.tar.xz 2>/dev/null | head -1)
[ -n "$tarball" ] || { echo "tiny-kernel-acpi.sh: linux-source-6.1 is not installed" >&2; exit 2; }
mkdir -p "$cache"
work=$(mktemp -d "$cache/tiny-kernel-acpi-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xf "$tarball"
src=$(ls -d "$work"/linux-source-6.1*)
cd "$src"
# kvm_pvm's instruction emulator cannot deliver INT3: skip the boot-time int3 self test.
sed -i 's/^\tint3_selftest();/\t\/\* int3_selftest() skipped for kvm_pvm \*\//' arch/x86/kernel/alternative.c
make -s tinyconfig
./scripts/config \
  -e 64BIT -e PRINTK -e PRINTK_TIME -e EARLY_PRINTK -e TTY -e SERIAL_8250 -e SERIAL_8250_CONSOLE \
  -e BLK_DEV_INITRD -e BINFMT_ELF -e BINFMT_SCRIPT -e PROC_FS -e SYSFS -e DEVTMPFS -e DEVTMPFS_MOUNT \
  -e PCI -e PCI_MSI -e VIRTIO_MENU -e VIRTIO -e VIRTIO_PCI -e VIRTIO_MMIO -e BLOCK -e BLK_DEV -e VIRTIO_BLK \
  -e VIRTIO_CONSOLE -e EXT4_FS -e PVH -e HYPERVISOR_GUEST -e PARAVIRT -e KVM_GUEST -e X86_MPPARSE \
  -e FUTEX -e EPOLL -e SHMEM -e TMPFS -e NET -e UNIX -e SMP -e X86_LOCAL_APIC -e X86_IO_APIC \
  -e ACPI -e ACPI_BUTTON -e PCI_MMCONFIG -e HOTPLUG_PCI -e HOTPLUG_PCI_ACPI -e MSDOS_PARTITION \
  -d PTP_1588_CLOCK -d MODULES -d RANDOMIZE_BASE
make -s olddefconfig
make -s -j"$(nproc)" vmlinux
mkdir -p "$out.tmp"
cp vmlinux .config "$out.tmp/"
mv "$out.tmp" "$out"
echo "$out/vmlinux"
