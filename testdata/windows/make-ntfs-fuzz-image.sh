#!/usr/bin/env bash
# Builds ntfs-hive.img, the small NTFS volume the ntfs_write fuzz target mutates (committed
# next to this script; rerun to regenerate): mkntfs with 512-byte clusters, and a SOFTWARE
# hive (hivexregedit from converters/tests/windows_support/software-2022.reg) copied to
# Windows/System32/config/SYSTEM through an ntfs-3g mount. Needs root and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'umount "$tmp/m" 2>/dev/null || true; rm -rf "$tmp"' EXIT
perl ../inspect/minimal-hive.pl "$tmp/hive"
hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SOFTWARE' "$tmp/hive" \
  ../../converters/tests/windows_support/software-2022.reg
rm -f ntfs-hive.img
truncate -s 1100K ntfs-hive.img
mkntfs -q -F -f -c 512 -L Windows ntfs-hive.img >/dev/null 2>&1
mkdir "$tmp/m"
ntfs-3g ntfs-hive.img "$tmp/m"
mkdir -p "$tmp/m/Windows/System32/config"
cp "$tmp/hive" "$tmp/m/Windows/System32/config/SYSTEM"
umount "$tmp/m"
ntfsfix --no-action ntfs-hive.img >/dev/null
