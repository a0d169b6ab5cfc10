#!/usr/bin/env bash
# Builds (once) the Debian 12 base root filesystem shared by every test guest:
# debootstrap --variant=minbase + kernel, initramfs-tools, ifupdown, systemd-sysv, open-vm-tools,
# and the .debs of dracut and grub-pc kept in /var/cache/apt/archives so that variants install
# them offline. Output: $FERRY_CACHE/guest-debian12-base-HASH/rootfs.tar.zst. Prints that dir.
source "$(dirname "$0")/common.sh"

hash=$(scripts_hash common.sh base.sh)
out="$FERRY_CACHE/guest-debian12-base-$hash"
if [ -e "$out/rootfs.tar.zst" ]; then echo "$out"; exit 0; fi
mkdir -p "$FERRY_CACHE"
work=$(mktemp -d "$FERRY_CACHE/.base-XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"

# The Debian mirror: FERRY_DEBIAN_MIRROR, else the one this machine's apt fetches bookworm from
# (its own parse of sources.list and sources.list.d); no host is named here.
mirror="${FERRY_DEBIAN_MIRROR:-$("$GUESTS_DIR/../../tests/apt-mirror.sh" "$SUITE")}"
debootstrap --variant=minbase "$SUITE" "$root" "$mirror" >&2
cat >"$root/usr/sbin/policy-rc.d" <<'P'
#!/bin/sh
exit 101
P
chmod +x "$root/usr/sbin/policy-rc.d"
in_chroot "$root" apt-get update -qq >&2
in_chroot "$root" apt-get install -y -qq --no-install-recommends \
  linux-image-amd64 initramfs-tools zstd ifupdown systemd-sysv open-vm-tools \
  kmod udev procps iproute2 >&2
in_chroot "$root" apt-get install -y -qq --no-install-recommends --download-only \
  dracut dracut-core grub-pc-bin grub-common >&2
rm -f "$root/usr/sbin/policy-rc.d"
rm -rf "$root/var/lib/apt/lists/"*_Packages "$root/var/lib/apt/lists/"*_Translation*
tar --numeric-owner --xattrs -C "$root" -cf - . | zstd -q -T0 -3 >"$work/rootfs.tar.zst"
mkdir -p "$out.tmp" && mv "$work/rootfs.tar.zst" "$out.tmp/" && mv "$out.tmp" "$out"
echo "$out"
