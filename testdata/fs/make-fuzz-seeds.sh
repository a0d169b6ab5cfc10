#!/usr/bin/env bash
# Builds the small ext images the ext4-metadata fuzz target mutates (committed next to this
# script; rerun to regenerate). Fixed UUIDs, hash seeds and time keep the output stable.
set -euo pipefail
cd "$(dirname "$0")"
export E2FSPROGS_FAKE_TIME=1700000000
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/etc" "$tree/var/lib" "$tree/many" "$tree/usr/bin"
printf '/dev/sda1 / ext4 defaults 0 1\n' >"$tree/etc/fstab"
printf 'guest\n' >"$tree/etc/hostname"
head -c 20000 /dev/zero | tr '\0' 'x' >"$tree/var/lib/data"
ln "$tree/etc/hostname" "$tree/etc/hostname.link"
ln -s usr/bin "$tree/bin"
ln -s "/usr/share/$(printf 'deep/%.0s' $(seq 1 15))target" "$tree/etc/slow-link"
for i in $(seq 1 60); do printf '%s\n' "$i" >"$tree/many/entry_number_$i"; done
make() { # name mkfs args...
  local name=$1; shift
  rm -f "$name"
  "$@" -q -F -U 6f1c2b9a-0d3e-4c55-9a7e-1b2c3d4e5f60 -E hash_seed=0b8e6d2c-1111-4222-8333-944455556666 \
    -d "$tree" "$name" 512k
  e2fsck -fyD "$name" >/dev/null || [ $? -le 1 ]
  e2fsck -fn "$name" >/dev/null
}
make ext4-nocsum.img mkfs.ext4 -b 1024 -N 96 -O ^metadata_csum,^has_journal,^resize_inode
make ext4-csum.img mkfs.ext4 -b 1024 -N 96 -O metadata_csum,^has_journal,^resize_inode
make ext2.img mkfs.ext2 -b 1024 -N 96 -O ^resize_inode
