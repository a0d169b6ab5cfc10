#!/usr/bin/env bash
# Builds the small XFS v5 images the xfs_metadata fuzz target mutates (xfs-v5.img.gz, and
# xfs-v5-rmapbt.img.gz made with RHEL/Oracle's -m rmapbt=1,reflink=1; committed next to this
# script; rerun to regenerate, `$0 rmapbt` for the second one only). mkfs.xfs refuses filesystems under 300 MB unless
# it believes it runs under xfstests (TEST_DIR, TEST_DEV, QA_CHECK_FS). A fixed UUID keeps the
# metadata stable; the timestamps still change from run to run.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '/dev/sda1 / xfs defaults 0 0\n' >"$tmp/fstab"
head -c 20000 /dev/zero | tr '\0' 'x' >"$tmp/data"
{
  printf '/dev/null\n0 0\nd--755 0 0\n'
  printf 'etc d--755 0 0\nfstab ---644 0 0 %s\nhostname ---644 0 0 %s\nlong l--777 0 0 /%s\n$\n' \
    "$tmp/fstab" "$tmp/fstab" "$(printf 'deep/%.0s' $(seq 1 40))target"
  printf 'var d--755 0 0\ndata ---644 0 0 %s\n$\n' "$tmp/data"
  printf 'bin l--777 0 0 usr/bin\n'
  printf 'block d--755 0 0\n'; for i in $(seq 1 20); do printf 'entry_%s ---644 0 0 %s\n' "$i" "$tmp/fstab"; done; printf '$\n'
  printf 'many d--755 0 0\n'; for i in $(seq 1 300); do printf 'entry_number_%s ---644 0 0 %s\n' "$i" "$tmp/fstab"; done; printf '$\n'
  printf '$\n'
} >"$tmp/proto"
build() { # OUTPUT MKFS_M_OPTIONS
  rm -f "$tmp/xfs.img"
  truncate -s 32M "$tmp/xfs.img"
  TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -q -f -m "uuid=6f1c2b9a-0d3e-4c55-9a7e-1b2c3d4e5f60$2" \
    -d agcount=2 -p "$tmp/proto" "$tmp/xfs.img"
  xfs_repair -n -f "$tmp/xfs.img" >/dev/null
  gzip -9 -n -c "$tmp/xfs.img" >"$1"
}
if [[ ${1:-all} != rmapbt ]]; then build xfs-v5.img.gz ""; fi
build xfs-v5-rmapbt.img.gz ",rmapbt=1,reflink=1"
