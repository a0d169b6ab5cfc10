#!/bin/sh -
# Written by ferry convert. Machine profile q35-v1 (pc-q35-7.2).
# Extra arguments are passed to QEMU.
# net0: network default (QEMU user networking here)
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
ovmf_code="${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.secboot.fd}"
# The guest's UEFI variables live next to this script, created on first start.
ovmf_vars="$(dirname "$0")"/'debian12.vars.fd'
[ -e "$ovmf_vars" ] || cp "${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.ms.fd}" "$ovmf_vars"
exec qemu-system-x86_64 \
  -no-user-config -nodefaults \
  -name 'debian12' \
  -machine pc-q35-7.2,smm=on \
  $accel \
  -cpu max \
  -m 2048 \
  -smp 2 \
  -uuid '2f0a3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d' \
  -smbios type=1,uuid='2f0a3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d' \
  -drive if=pflash,format=raw,unit=0,readonly=on,file="$ovmf_code" \
  -drive if=pflash,format=raw,unit=1,file="$ovmf_vars" \
  -device VGA,id=video0,bus=pcie.0,addr=0x1 \
  -device virtio-serial-pci-non-transitional,id=console0,bus=pcie.0,addr=0x2 \
  -device virtio-balloon-pci-non-transitional,id=balloon0,bus=pcie.0,addr=0x3 \
  -object rng-random,id=obj-rng0,filename=/dev/urandom \
  -device virtio-rng-pci-non-transitional,rng=obj-rng0,id=rng0,bus=pcie.0,addr=0x4 \
  -netdev user,id=hostnet-net0 \
  -device virtio-net-pci-non-transitional,netdev=hostnet-net0,id=net0,mac='52:54:00:6b:3c:58',bus=pcie.0,addr=0x5 \
  -drive file='@OUT@/debian12-sda',format=qcow2,if=none,id=drive-disk0 \
  -device virtio-blk-pci-non-transitional,drive=drive-disk0,id=disk0,serial='FRY9FD4D268FE9C5C3C',bootindex=1,bus=pcie.0,addr=0xd \
  -serial stdio \
  "$@"
