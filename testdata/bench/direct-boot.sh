#!/usr/bin/env bash
# Benchmark (not a test): direct boot of a converted guest's own kernel to `Run /init`,
# `ferry run` (kernel + initrd read from the converted qcow2 by Ferry) against
# `qemu-system-x86_64 -accel kvm -kernel/-initrd/-append` with the same files, command line,
# memory and disk. Wall seconds to the console line, CPU seconds (user+sys of the whole
# process), host load average before each run. The runs alternate.
#
# usage: testdata/bench/direct-boot.sh SPEC KERNEL INITRD [RUNS]
#   SPEC: NAME.ferry.json written by `ferry convert` (its `boot` names the guest's kernel),
#   or a spec whose `boot` names host files;
#   KERNEL, INITRD: host copies of the same files, for QEMU (INITRD "-": none).
#   WANT: the console line that ends a run (default "Run /init").
# QEMU runs with its default CPU model: `-cpu host` aborts on kvm_pvm (MSR 0x10a).
set -euo pipefail
spec=$1 kernel=$2 initrd=$3 runs=${4:-3}
ferry=${FERRY:-$(dirname "$0")/../../target/debug/ferry}
cmdline=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["boot"]["cmdline"])' "$spec")
mem=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["memory_mib"])' "$spec")
disk=$(python3 -c 'import json,sys; d=[x for x in json.load(open(sys.argv[1]))["devices"] if x["type"]=="virtio-blk"][0]; print(d["file"])' "$spec")
want=${WANT:-Run /init}
fmt=$(python3 -c 'import json,sys; d=[x for x in json.load(open(sys.argv[1]))["devices"] if x["type"]=="virtio-blk"][0]; print(d["format"])' "$spec")
initrd_args=()
[ "$initrd" = - ] || initrd_args=(-initrd "$initrd")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. "$(dirname "$0")/console-timer.sh"

for i in $(seq 1 "$runs"); do
  echo "run $i load $(cut -d' ' -f1 /proc/loadavg)"
  echo "  ferry run:  $(timed "$ferry" run --boot direct --console "$tmp/log" --timeout 300 "$spec")"
  echo "  qemu kvm:   $(timed qemu-system-x86_64 -accel kvm -machine q35 -nodefaults -display none -m "$mem" \
    -drive if=none,id=d0,file="$disk",format="$fmt",readonly=on -device virtio-blk-pci-non-transitional,drive=d0 \
    -kernel "$kernel" "${initrd_args[@]}" -append "$cmdline" -serial file:"$tmp/log")"
done
