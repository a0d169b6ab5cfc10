#!/usr/bin/env bash
# `ferry img sync` time against delta size and disk size, and a full `ferry img convert` of
# the same chain for comparison. Base: DISK-sized monolithicSparse VMDK with 1 GiB written;
# delta: a snapshot VMDK with DELTA MiB written (qemu-io), target: the base copied to qcow2.
#   testdata/bench/sync.sh "4 32" "16 64 256"     (disk GiB list, delta MiB list)
set -euo pipefail
cd "$(dirname "$0")/../.."
ferry=${FERRY:-$PWD/target/release/ferry}
work=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}")
trap 'rm -rf "$work"' EXIT
secs() { local s; s=$(date +%s.%N); "$@" >/dev/null 2>&1; echo "$(date +%s.%N) - $s" | bc; }
for disk in ${1:-4 32}; do
  rm -f "$work"/*
  qemu-img create -q -f vmdk -o subformat=monolithicSparse "$work/base.vmdk" "${disk}G"
  qemu-io -f vmdk -c "write -P 0xaa 0 1G" "$work/base.vmdk" >/dev/null
  for delta in ${2:-16 64 256}; do
    rm -f "$work/d.vmdk" "$work/t.qcow2" "$work/.t.qcow2.ferry-sync.json" "$work/full.qcow2"
    qemu-img create -q -f vmdk -b base.vmdk -F vmdk "$work/d.vmdk"
    # The delta spread over the disk in 1 MiB writes.
    cmds=()
    step=$(( disk * 1024 / delta ))
    for i in $(seq 0 $((delta - 1))); do cmds+=(-c "write -P 0x55 $((i * step))M 1M"); done
    qemu-io -f vmdk "${cmds[@]}" "$work/d.vmdk" >/dev/null
    "$ferry" img convert -O qcow2 "$work/base.vmdk" "$work/t.qcow2"
    sync_s=$(secs "$ferry" img sync "$work/t.qcow2" "$work/d.vmdk")
    full_s=$(secs "$ferry" img convert -O qcow2 "$work/d.vmdk" "$work/full.qcow2")
    qemu-img compare -q "$work/t.qcow2" "$work/full.qcow2"
    echo "disk=${disk}GiB delta=${delta}MiB sync_s=$sync_s full_convert_s=$full_s ratio=$(echo "scale=3; $sync_s / $full_s" | bc)"
  done
done
