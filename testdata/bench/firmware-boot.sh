#!/usr/bin/env bash
# Benchmark (not a test): firmware boot of a spec's first disk until a console line, on
# `ferry run --boot firmware` against `qemu-system-x86_64 -accel kvm` with the same firmware
# file, machine type, memory, VGA adapter slot and virtio-blk disk (bootindex 1). Wall seconds
# to the line (QEMU's default CPU model: `-cpu host` aborts on kvm_pvm, MSR 0x10a), CPU seconds (user+sys of the whole process at that moment), host load average
# before each run. The runs alternate.
#
# usage: testdata/bench/firmware-boot.sh SPEC WANT [RUNS]
#   SPEC: a spec with "firmware": "bios" and a virtio-blk disk at slot 4 (raw or qcow2);
#   WANT: the serial-console line that ends a run ("ferry mbr: booted by firmware",
#   "Linux version").   FIRMWARE (default Debian's bios-256k.bin), FERRY (the binary).
set -euo pipefail
spec=$1 want=$2 runs=${3:-3}
ferry=${FERRY:-$(dirname "$0")/../../target/debug/ferry}
fw=${FIRMWARE:-/usr/share/seabios/bios-256k.bin}
field() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$spec" "$1"; }
mem=$(field 's["memory_mib"]')
machine=$(field '"q35" if s["profile"].startswith("q35") else "pc"')
vga=$(field '"1" if s["profile"].startswith("q35") else "2"')
disk=$(field '[d for d in s["devices"] if d["type"]=="virtio-blk"][0]["file"]')
fmt=$(field '[d for d in s["devices"] if d["type"]=="virtio-blk"][0]["format"]')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. "$(dirname "$0")/console-timer.sh"

for i in $(seq 1 "$runs"); do
  echo "run $i load $(cut -d' ' -f1 /proc/loadavg)"
  echo "  ferry run:  $(timed "$ferry" run --boot firmware --firmware "$fw" --console "$tmp/log" --timeout 600 "$spec")"
  echo "  qemu kvm:   $(timed qemu-system-x86_64 -accel kvm -machine "$machine" -nodefaults -display none -m "$mem" \
    -bios "$fw" -device "VGA,addr=$vga" \
    -drive if=none,id=d0,file="$disk",format="$fmt",readonly=on -device virtio-blk-pci-non-transitional,drive=d0,addr=4,bootindex=1 \
    -serial file:"$tmp/log")"
done
