#!/usr/bin/env bash
# Builds the small btrfs image the btrfs_metadata fuzz target mutates (btrfs.img.gz,
# committed next to this script; rerun to regenerate): mkfs.btrfs --rootdir (btrfs-progs
# 6.12 or later) of a tree with inline and regular files, a zstd-compressed file, a directory
# of 600 entries (a two-level fs tree), symlinks, an xattr and a second
# subvolume, shrunk to its minimum size (--shrink). A fixed UUID keeps the metadata stable;
# timestamps still change from run to run.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/root/@/etc" "$tmp/root/@/boot" "$tmp/root/@/many" "$tmp/root/@home/user"
printf 'UUID=x / btrfs defaults 0 0\n' >"$tmp/root/@/etc/fstab"
printf 'guest\n' >"$tmp/root/@/etc/hostname"
head -c 20000 /dev/urandom >"$tmp/root/@/boot/vmlinuz"
awk 'BEGIN { for (i = 0; i < 8000; i++) print "compressible line of text" }' >"$tmp/root/@/boot/config"
for i in $(seq 1 600); do printf 'file %s\n' "$i" >"$tmp/root/@/many/f$i"; done
ln -s ../boot/vmlinuz "$tmp/root/@/etc/kernel"
setfattr -n security.selinux -v system_u:object_r:etc_t:s0 "$tmp/root/@/etc/fstab"
printf 'home\n' >"$tmp/root/@home/user/notes"
truncate -s 128M "$tmp/btrfs.img"
mkfs.btrfs -q -f -U 6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f --rootdir "$tmp/root" \
  --subvol default:@ --subvol @home --compress zstd --shrink "$tmp/btrfs.img"
btrfs check --readonly "$tmp/btrfs.img" >/dev/null 2>&1
gzip -9 -n -c "$tmp/btrfs.img" >btrfs.img.gz
