#!/bin/sh -
# Written by ferry convert. Machine profile q35-v1 (pc-q35-7.2).
# Extra arguments are passed to QEMU.
# net0: network ethernet0 (QEMU user networking here)
# net1: bridge ethernet1 (QEMU user networking here)
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
ovmf_code="${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}"
# The guest's UEFI variables live next to this script, created on first start.
ovmf_vars="$(dirname "$0")"/'Windows 10 x64 "dev".vars.fd'
[ -e "$ovmf_vars" ] || cp "${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}" "$ovmf_vars"
exec qemu-system-x86_64 \
  -no-user-config -nodefaults \
  -name 'Windows 10 x64 "dev"' \
  -machine pc-q35-7.2 \
  $accel \
  -cpu max \
  -m 4096 \
  -smp 2,sockets=1,cores=2,threads=1 \
  -uuid '564d9a8e-1b2c-3d4e-5f60-718293a4b5c6' \
  -smbios type=1,uuid='564d9a8e-1b2c-3d4e-5f60-718293a4b5c6' \
  -drive if=pflash,format=raw,unit=0,readonly=on,file="$ovmf_code" \
  -drive if=pflash,format=raw,unit=1,file="$ovmf_vars" \
  -device VGA,id=video0,bus=pcie.0,addr=0x1 \
  -device virtio-serial-pci-non-transitional,id=console0,bus=pcie.0,addr=0x2 \
  -device virtio-balloon-pci-non-transitional,id=balloon0,bus=pcie.0,addr=0x3 \
  -object rng-random,id=obj-rng0,filename=/dev/urandom \
  -device virtio-rng-pci-non-transitional,rng=obj-rng0,id=rng0,bus=pcie.0,addr=0x4 \
  -netdev user,id=hostnet-net0 \
  -device virtio-net-pci-non-transitional,netdev=hostnet-net0,id=net0,mac='00:0c:29:4f:8e:35',bus=pcie.0,addr=0x5 \
  -netdev user,id=hostnet-net1 \
  -device virtio-net-pci-non-transitional,netdev=hostnet-net1,id=net1,mac='00:50:56:3f:00:10',bus=pcie.0,addr=0x6 \
  -drive file='@OUT@/Windows 10 x64 "dev"-sda',format=qcow2,if=none,id=drive-disk0 \
  -device virtio-blk-pci-non-transitional,drive=drive-disk0,id=disk0,serial='FRY1DD744DCCC62C028',bootindex=1,bus=pcie.0,addr=0xd \
  -drive if=none,id=drive-cd0,media=cdrom,readonly=on \
  -device ide-cd,drive=drive-cd0,id=cd0,bus=ide.0,unit=0 \
  -serial stdio \
  "$@"
