#!/usr/bin/env bash
# Ferry's test command (the README's): installs what the tests need on a fresh Debian 12
# machine, then runs the whole suite. Expensive fixtures (guest images) are cached outside the
# repository in $FERRY_CACHE (default /var/tmp/ferry-cache), keyed by the hash of the script
# that builds them.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  ovmf libxml2-utils acpica-tools
  qemu-utils qemu-system-x86 seabios
  e2fsprogs dosfstools mtools fdisk gdisk lvm2 xfsprogs attr btrfs-progs ntfs-3g libhivex-bin cryptsetup-bin
  libvirt-clients cpio zstd xz-utils busybox-static debootstrap grub-common netplan.io gcc mdadm kmod lz4 python3-pip
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "tests/run.sh: installing ${missing[*]}"
  # Machines whose qemu-utils came from bookworm-backports need qemu-system-x86 from there too.
  target=()
  if dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null | grep -q bpo12; then
    [ -e /etc/apt/sources.list.d/ferry-backports.list ] ||
      echo 'deb http://deb.debian.org/debian bookworm-backports main' >/etc/apt/sources.list.d/ferry-backports.list
    target=(-t bookworm-backports)
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${target[@]}" "${missing[@]}" >/dev/null
fi

# The QMP conformance test drives both QEMU and Ferry's runtime with PyPI's qemu.qmp client.
python3 -c 'import qemu.qmp' 2>/dev/null || pip3 install -q qemu.qmp 2>/dev/null || pip3 install -q --break-system-packages qemu.qmp || true

export FERRY_CACHE="${FERRY_CACHE:-/var/tmp/ferry-cache}"
mkdir -p "$FERRY_CACHE"

cargo test --workspace --no-fail-fast "$@"
