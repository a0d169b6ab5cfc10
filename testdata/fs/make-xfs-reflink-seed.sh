#!/usr/bin/env bash
# Builds the small reflink XFS v5 image the xfs_metadata fuzz target also mutates
# (xfs-reflink.img.gz, committed next to this script; rerun to regenerate). Sharing is made
# by the kernel, so this needs root and a loop mount: /r/a is shared three ways (a, b, c),
# c then partly overwritten (partial sharing), /r/m (every other block written: several
# extents) two ways. mkfs.xfs refuses filesystems under 300 MB unless it believes it runs
# under xfstests (TEST_DIR, TEST_DEV, QA_CHECK_FS); a fixed UUID keeps the metadata stable.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
cleanup() { umount "$tmp/mnt" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
truncate -s 32M "$tmp/xfs.img"
TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -q -f -m uuid=0b7e4c2a-5d61-4f1e-8c3b-7a9d2e6f1c40,reflink=1,rmapbt=0 \
  -d agcount=2 "$tmp/xfs.img"
mkdir "$tmp/mnt"
mount -t xfs -o loop "$tmp/xfs.img" "$tmp/mnt"
mkdir "$tmp/mnt/r"
head -c 81920 /dev/zero | tr '\0' 'a' >"$tmp/mnt/r/a"
for i in 0 2 4 6 8; do printf 'block %s' "$i" | dd of="$tmp/mnt/r/m" bs=4096 seek="$i" conv=notrunc status=none; done
sync
cp --reflink=always "$tmp/mnt/r/a" "$tmp/mnt/r/b"
cp --reflink=always "$tmp/mnt/r/a" "$tmp/mnt/r/c"
cp --reflink=always "$tmp/mnt/r/m" "$tmp/mnt/r/m2"
printf 'overwritten' | dd of="$tmp/mnt/r/c" bs=4096 seek=2 conv=notrunc,fsync status=none
umount "$tmp/mnt"
xfs_repair -n -f "$tmp/xfs.img" >/dev/null 2>&1
gzip -9 -n -c "$tmp/xfs.img" >xfs-reflink.img.gz
