#!/bin/sh -
# Written by ferry convert. Machine profile q35-v1 (pc-q35-7.2).
# Extra arguments are passed to QEMU.
# net0: bridge xenbr0 (QEMU user networking here)
# net1: bridge xenbr1 (QEMU user networking here)
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
  -name 'web01' \
  -machine pc-q35-7.2 \
  $accel \
  -cpu max \
  -m 4096 \
  -smp 2 \
  -uuid 'c0ffee00-1234-4cde-8f00-aabbccddeeff' \
  -smbios type=1,uuid='c0ffee00-1234-4cde-8f00-aabbccddeeff' \
  -device VGA,id=video0,bus=pcie.0,addr=0x1 \
  -device virtio-serial-pci-non-transitional,id=console0,bus=pcie.0,addr=0x2 \
  -device virtio-balloon-pci-non-transitional,id=balloon0,bus=pcie.0,addr=0x3 \
  -object rng-random,id=obj-rng0,filename=/dev/urandom \
  -device virtio-rng-pci-non-transitional,rng=obj-rng0,id=rng0,bus=pcie.0,addr=0x4 \
  -netdev user,id=hostnet-net0 \
  -device virtio-net-pci-non-transitional,netdev=hostnet-net0,id=net0,mac='00:16:3e:12:34:56',bus=pcie.0,addr=0x5 \
  -netdev user,id=hostnet-net1 \
  -device virtio-net-pci-non-transitional,netdev=hostnet-net1,id=net1,mac='00:16:3e:12:34:57',bus=pcie.0,addr=0x6 \
  -drive file='@OUT@/web01-sda',format=qcow2,if=none,id=drive-disk0 \
  -device virtio-blk-pci-non-transitional,drive=drive-disk0,id=disk0,serial='FRYA957B2C10B7E32ED',bootindex=1,bus=pcie.0,addr=0xd \
  -drive file='@OUT@/web01-sdb',format=qcow2,if=none,id=drive-disk1 \
  -device virtio-blk-pci-non-transitional,drive=drive-disk1,id=disk1,serial='FRY99B41430237771E1',bus=pcie.0,addr=0xe \
  -drive file='@OUT@/web01-sdc',format=qcow2,if=none,id=drive-disk2,readonly=on \
  -device virtio-blk-pci-non-transitional,drive=drive-disk2,id=disk2,serial='FRYAB9E3F3F6E08EDF0',bus=pcie.0,addr=0xf \
  -serial stdio \
  "$@"
