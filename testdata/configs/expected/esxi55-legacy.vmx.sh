#!/bin/sh -
# Written by ferry convert. Machine profile q35-v1 (pc-q35-7.2).
# Extra arguments are passed to QEMU.
# net0: network Prod (QEMU user networking here)
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
  -name 'db-legacy' \
  -machine pc-q35-7.2 \
  $accel \
  -cpu max \
  -m 2048 \
  -smp 2 \
  -uuid '420a8b1c-2d3e-4f50-6172-8394a5b6c7d8' \
  -smbios type=1,uuid='420a8b1c-2d3e-4f50-6172-8394a5b6c7d8' \
  -device VGA,id=video0,bus=pcie.0,addr=0x1 \
  -device virtio-serial-pci-non-transitional,id=console0,bus=pcie.0,addr=0x2 \
  -device virtio-balloon-pci-non-transitional,id=balloon0,bus=pcie.0,addr=0x3 \
  -object rng-random,id=obj-rng0,filename=/dev/urandom \
  -device virtio-rng-pci-non-transitional,rng=obj-rng0,id=rng0,bus=pcie.0,addr=0x4 \
  -netdev user,id=hostnet-net0 \
  -device virtio-net-pci-non-transitional,netdev=hostnet-net0,id=net0,mac='00:50:56:00:12:34',bus=pcie.0,addr=0x5 \
  -drive file='@OUT@/db-legacy-sda',format=qcow2,if=none,id=drive-disk0 \
  -device virtio-blk-pci-non-transitional,drive=drive-disk0,id=disk0,serial='FRY5DF1C05450FB6D3C',bootindex=1,bus=pcie.0,addr=0xd \
  -drive file='@OUT@/db-legacy-sdb',format=qcow2,if=none,id=drive-disk1 \
  -device virtio-blk-pci-non-transitional,drive=drive-disk1,id=disk1,serial='FRY8D893564249CC685',bus=pcie.0,addr=0xe \
  -drive file='@OUT@/db-legacy-sdc',format=qcow2,if=none,id=drive-disk2 \
  -device virtio-blk-pci-non-transitional,drive=drive-disk2,id=disk2,serial='FRYC36738B1F6BF5E8E',bus=pcie.0,addr=0xf \
  -drive if=none,id=drive-cd0,media=cdrom,readonly=on \
  -device ide-cd,drive=drive-cd0,id=cd0,bus=ide.0,unit=0 \
  -serial stdio \
  "$@"
