#!/bin/sh -
# Written by ferry convert. Machine profile q35-v1 (pc-q35-7.2).
# Extra arguments are passed to QEMU.
# net0: bridge br-dmz (QEMU user networking here)
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
  -name 'app01' \
  -machine pc-q35-7.2 \
  $accel \
  -cpu max \
  -m 1024 \
  -smp 1 \
  -uuid 'd9560609-7808-53eb-b758-4cbae9d22d08' \
  -smbios type=1,uuid='d9560609-7808-53eb-b758-4cbae9d22d08' \
  -device VGA,id=video0,bus=pcie.0,addr=0x1 \
  -device virtio-serial-pci-non-transitional,id=console0,bus=pcie.0,addr=0x2 \
  -device virtio-balloon-pci-non-transitional,id=balloon0,bus=pcie.0,addr=0x3 \
  -object rng-random,id=obj-rng0,filename=/dev/urandom \
  -device virtio-rng-pci-non-transitional,rng=obj-rng0,id=rng0,bus=pcie.0,addr=0x4 \
  -netdev user,id=hostnet-net0 \
  -device virtio-net-pci-non-transitional,netdev=hostnet-net0,id=net0,mac='52:54:00:bf:17:6d',bus=pcie.0,addr=0x5 \
  -drive file='@OUT@/app01-sda',format=qcow2,if=none,id=drive-disk0 \
  -device virtio-blk-pci-non-transitional,drive=drive-disk0,id=disk0,serial='FRY1D3060639E8560F8',bootindex=1,bus=pcie.0,addr=0xd \
  -drive file='@OUT@/app01-sdb',format=qcow2,if=none,id=drive-disk1 \
  -device virtio-blk-pci-non-transitional,drive=drive-disk1,id=disk1,serial='FRYD9F8C766E19250E5',bus=pcie.0,addr=0xe \
  -serial stdio \
  "$@"
