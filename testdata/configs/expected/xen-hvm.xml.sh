#!/bin/sh -
# Written by ferry convert. Machine profile q35-v1 (pc-q35-7.2).
# Extra arguments are passed to QEMU.
# net0: bridge xenbr0 (QEMU user networking here)
set -e
# KVM when available, else TCG; FERRY_QEMU_ACCEL overrides (e.g. "-accel tcg").
# Under kvm_pvm (a nested KVM without hardware virtualization) QEMU's KVM accelerator
# cannot run a guest: use TCG there.
default_accel="-accel kvm -accel tcg"
if [ -z "${FERRY_QEMU_ACCEL-}" ] && [ -e /sys/module/kvm_pvm ]; then
  echo "$0: this host's KVM is kvm_pvm, where QEMU's KVM accelerator cannot run a guest: using TCG" >&2
  default_accel="-accel tcg"
fi
accel="${FERRY_QEMU_ACCEL:-$default_accel}"
exec qemu-system-x86_64 \
  -no-user-config -nodefaults \
  -name 'win01' \
  -machine pc-q35-7.2 \
  $accel \
  -cpu max \
  -m 4096 \
  -smp 4,sockets=2,cores=2,threads=1 \
  -uuid '7c3e1f2a-9b8d-4e6f-a1b2-c3d4e5f60718' \
  -smbios type=1,uuid='7c3e1f2a-9b8d-4e6f-a1b2-c3d4e5f60718' \
  -device VGA,id=video0,bus=pcie.0,addr=0x1 \
  -device virtio-serial-pci-non-transitional,id=console0,bus=pcie.0,addr=0x2 \
  -device virtio-balloon-pci-non-transitional,id=balloon0,bus=pcie.0,addr=0x3 \
  -object rng-random,id=obj-rng0,filename=/dev/urandom \
  -device virtio-rng-pci-non-transitional,rng=obj-rng0,id=rng0,bus=pcie.0,addr=0x4 \
  -netdev user,id=hostnet-net0 \
  -device virtio-net-pci-non-transitional,netdev=hostnet-net0,id=net0,mac='00:16:3e:5a:00:01',bus=pcie.0,addr=0x5 \
  -drive file='@OUT@/win01-sda',format=qcow2,if=none,id=drive-disk0 \
  -device virtio-blk-pci-non-transitional,drive=drive-disk0,id=disk0,serial='FRY284E078E766D573B',bootindex=1,bus=pcie.0,addr=0xd \
  -drive if=none,id=drive-cd0,media=cdrom,readonly=on \
  -device ide-cd,drive=drive-cd0,id=cd0,bus=ide.0,unit=0 \
  -serial stdio \
  "$@"
