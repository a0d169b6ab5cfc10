#!/usr/bin/env bash
# Warm-migration cutover on the real Debian 12 test guest (debian-vmware from $FERRY_CACHE):
# the guest's disk grown to DISK GiB (base: a monolithicSparse VMDK; FILL_GIB GiB (default 1) of
# data written from 2 GiB on, past the guest's 1.5 GiB partition), a snapshot delta VMDK with DELTA MiB written in 1 MiB pieces
# spread over the disk past the partition (qemu-io), the target: the base copied to qcow2 by
# `ferry img convert` (not timed: done while the source runs). Cutover = `ferry img sync` of
# the delta + `ferry convert --in-place`; against `ferry convert` of the whole chain (the
# copy + conversion a cold migration makes at cutover). Same SOURCE_DATE_EPOCH: both results
# are checked `qemu-img compare`-identical. Wall seconds (and CPU user+sys) of each.
#   testdata/bench/cutover.sh "4 32" "16 64 256"     (disk GiB list, delta MiB list)
set -euo pipefail
cd "$(dirname "$0")/../.."
ferry=${FERRY:-$PWD/target/release/ferry}
cache=${FERRY_CACHE:-/var/tmp/ferry-cache}
src=$(ls -d "$cache"/guest-debian-vmware-*/debian-vmware.vmdk | tail -1)
work=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" ferry-cutover-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
export SOURCE_DATE_EPOCH=1700000000
# Runs a command; prints "wall cpu" seconds.
timed() { /usr/bin/time -f '%e %U %S' -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }; awk '{printf "%s %.2f", $1, $2 + $3}' "$work/time"; }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
part_end=$((1536 + 16))   # MiB: past the guest's partition
for disk in ${1:-4 32}; do
  rm -rf "${work:?}"/*
  qemu-img create -q -f vmdk -o subformat=monolithicSparse "$work/base.vmdk" "${disk}G"
  qemu-img convert -n -O vmdk "$src" "$work/base.vmdk"
  for g in $(seq 2 $((2 + ${FILL_GIB:-1} - 1))); do
    qemu-io -f vmdk -c "write -P 0xaa ${g}G 1G" "$work/base.vmdk" >/dev/null
  done
  for delta in ${2:-16 64 256}; do
    rm -rf "$work/d.vmdk" "$work/cut" "$work/full"
    mkdir "$work/cut" "$work/full"
    qemu-img create -q -f vmdk -b base.vmdk -F vmdk "$work/d.vmdk"
    cmds=()
    step=$(( (disk * 1024 - part_end) / delta ))
    for i in $(seq 0 $((delta - 1))); do cmds+=(-c "write -P 0x55 $((part_end + i * step))M 1M"); done
    qemu-io -f vmdk "${cmds[@]}" "$work/d.vmdk" >/dev/null
    "$ferry" img convert -O qcow2 "$work/base.vmdk" "$work/cut/g.qcow2"
    sync; echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true
    read -r sync_s sync_cpu <<<"$(timed "$ferry" img sync "$work/cut/g.qcow2" "$work/d.vmdk")"
    read -r inp_s inp_cpu <<<"$(timed "$ferry" convert -i disk "$work/cut/g.qcow2" --in-place -o local -os "$work/cut" -on g)"
    sync; echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true
    read -r full_s full_cpu <<<"$(timed "$ferry" convert -i disk "$work/d.vmdk" -o local -os "$work/full" -on g)"
    qemu-img compare -q "$work/cut/g.qcow2" "$work/full/g-sda"
    cut_s=$(echo "$sync_s + $inp_s" | bc)
    echo "disk=${disk}GiB delta=${delta}MiB sync_s=$sync_s in_place_s=$inp_s cutover_s=$cut_s (cpu $(echo "$sync_cpu + $inp_cpu" | bc)) full_convert_s=$full_s (cpu $full_cpu) ratio=$(echo "scale=3; $cut_s / $full_s" | bc)"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
