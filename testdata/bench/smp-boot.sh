#!/usr/bin/env bash
# Benchmark (not a test): boot-to-marker of the `smp` micro-guest (the boot CPU wakes every AP
# with INIT-SIPI-SIPI, each reports its APIC ID, the guest exits through port 0xf4) on
# `ferry run` against `qemu-system-x86_64 -accel kvm` with the same ELF, memory, vCPU count and
# command line. Wall seconds to the guest's exit, CPU seconds (user+sys), host load average
# before each run; the runs alternate.
#
# usage: testdata/bench/smp-boot.sh [RUNS] [VCPUS...]   (default: 3 runs of 1 and 8 vCPUs)
set -euo pipefail
runs=${1:-3}
shift || true
counts=("${@:-1 8}")
here=$(cd "$(dirname "$0")" && pwd)
ferry=${FERRY:-$here/../../target/debug/ferry}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sh "$here/../microguests/build.sh" smp "$tmp" >/dev/null
elf=$tmp/smp.elf

# Runs "$@"; prints "wall cpu exit-code".
timed() {
  /usr/bin/time -f "%e %U %S %x" -o "$tmp/time" "$@" >"$tmp/out" 2>&1 || true
  read -r wall user sys code < <(tail -1 "$tmp/time")
  echo "$wall $(echo "$user + $sys" | bc) $code"
}

for n in ${counts[*]}; do
  python3 - "$tmp/spec-$n.json" "$elf" "$n" <<'PY'
import json, sys
path, elf, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
json.dump({"spec_version": 1, "name": "smp", "profile": "q35-v1", "memory_mib": 128, "vcpus": n,
           "firmware": "bios", "boot": {"kernel": elf, "cmdline": str(n)}, "devices": []}, open(path, "w"))
PY
  for i in $(seq 1 "$runs"); do
    echo "vcpus $n run $i load $(cut -d' ' -f1 /proc/loadavg) ferry $(timed "$ferry" run --no-reboot --console /dev/null "$tmp/spec-$n.json")"
    echo "vcpus $n run $i load $(cut -d' ' -f1 /proc/loadavg) qemu $(timed qemu-system-x86_64 -accel kvm -machine q35 -m 128 -smp "$n" \
      -nodefaults -display none -serial null -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel "$elf" -append "$n")"
  done
done
