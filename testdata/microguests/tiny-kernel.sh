#!/bin/sh
# Builds the tiny Linux 6.1 kernel used to prove the runtime with a real kernel on kvm_pvm
# (recipe: /work/shared/notes/vmm-anchors.md appendix): tinyconfig + serial console, PCI/MSI,
# virtio-pci blk/console, ext4, PVH entry. Keeps both the uncompressed vmlinux (booted through
# PVH) and arch/x86/boot/bzImage (booted through the 64-bit boot protocol). The bzImage is
# LZ4-compressed: its decompressor runs in guest kernel mode, which kvm_pvm emulates at ~1 M
# instructions/s, where tinyconfig's XZ takes minutes.
# Output: $FERRY_CACHE/tiny-kernel-<hash of this script>/{vmlinux,bzImage} (cached; ~3-5 min on 2
# idle cores). The kernel is built in place in tiny-kernel-<hash>.tree, which is kept: the
# build records absolute paths (objtool's), so a variant (tiny-kernel-legacy.sh) patches and
# rebuilds that very tree, where only what its patch touches is compiled again.
# Needs: linux-source-6.1 flex bison bc libelf-dev lz4 (Debian).
set -eu
cache=${FERRY_CACHE:-/var/tmp/ferry-cache}
hash=$(sha256sum "$0" | cut -c1-16)
out="$cache/tiny-kernel-$hash"
[ -f "$out/vmlinux" ] && [ -f "$out/bzImage" ] && { echo "$out/vmlinux"; exit 0; }
tarball=$(ls /usr/src/linux-source-6.1*.tar.xz 2>/dev/null | head -1)
[ -n "$tarball" ] || { echo "tiny-kernel.sh: linux-source-6.1 is not installed" >&2; exit 2; }
mkdir -p "$cache"
src="$out.tree"
# A tree left by an interrupted build is started again.
rm -rf "$src" "$out.tmp"
mkdir -p "$src"
trap '[ -f "$out/vmlinux" ] || rm -rf "$src"' EXIT
tar -C "$src" --strip-components=1 -xf "$tarball"
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
  -d ACPI -d PTP_1588_CLOCK -d MODULES -d RANDOMIZE_BASE -d KERNEL_XZ -e KERNEL_LZ4
make -s olddefconfig
make -s -j"$(nproc)" vmlinux bzImage
mkdir -p "$out.tmp"
cp vmlinux arch/x86/boot/bzImage .config "$out.tmp/"
mv "$out.tmp" "$out"
echo "$out/vmlinux"
