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
  e2fsprogs dosfstools mtools fdisk gdisk lvm2 xfsprogs attr btrfs-progs ntfs-3g libhivex-bin libwin-hivex-perl cryptsetup-bin genisoimage
  libvirt-clients cpio zstd xz-utils busybox-static debootstrap grub-common netplan.io gcc mdadm kmod lz4 python3-pip
  linux-source-6.1 flex bison bc libelf-dev grub-pc-bin patch
  selinux-utils semodule-utils bzip2 libclang-dev
)
# Ferry's runtime presents the devices of QEMU 10 (PCIe root ports, pflash) and the btrfs
# fixtures need mkfs.btrfs --compress (btrfs-progs 6.3+), the debian-btrfs guest mkfs.btrfs
# --subvol default:@ (6.11+): on Debian 12 these come from
# bookworm-backports, whatever version the machine had, as does everything installed with
# them. The backports line uses the mirror apt is already configured with (its own parse of
# sources.list and sources.list.d, deb822 or one-line), never a hard-coded host.
from_backports=(qemu-utils qemu-system-x86 seabios btrfs-progs)
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  elif [ "$codename" = bookworm ] && [[ " ${from_backports[*]} " == *" $p "* ]] &&
    ! dpkg-query -W -f='${Version}' "$p" | grep -q bpo; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "tests/run.sh: installing ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then
    echo "tests/run.sh: installing packages needs root: run as root, or install them first: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  target=()
  if [ "$codename" = bookworm ]; then
    if ! apt-get indextargets --format '$(RELEASE)' 'Created-By: Packages' | grep -qx "$codename-backports"; then
      mirror=$(tests/apt-mirror.sh "$codename")
      if [ -z "$mirror" ]; then
        echo "tests/run.sh: no apt source serves $codename to derive a $codename-backports line from" >&2
        exit 1
      fi
      echo "deb $mirror $codename-backports main" >/etc/apt/sources.list.d/ferry-backports.list
      apt-get update -qq
    fi
    target=(-t "$codename-backports")
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${target[@]}" "${missing[@]}" >/dev/null
fi

# The QMP conformance test drives both QEMU and Ferry's runtime with PyPI's qemu.qmp client.
python3 -c 'import qemu.qmp' 2>/dev/null || pip3 install -q qemu.qmp 2>/dev/null || pip3 install -q --break-system-packages qemu.qmp || true
# The Kubernetes manifests in deploy/ are checked offline against the API schemas PyPI's
# kubernetes-validate bundles.
command -v kubernetes-validate >/dev/null || pip3 install -q kubernetes-validate 2>/dev/null || pip3 install -q --break-system-packages kubernetes-validate || true

export FERRY_CACHE="${FERRY_CACHE:-/var/tmp/ferry-cache}"
mkdir -p "$FERRY_CACHE"

# The SELinux label tests compare Ferry with matchpathcon on Debian's reference policy, which
# they unpack from its package (dpkg-deb -x, semodule_unpackage) into a temporary directory:
# the package is downloaded here, never installed (the host does not become SELinux-enabled).
policy_deb_dir="$FERRY_CACHE/selinux-policy-default"
if ! compgen -G "$policy_deb_dir/selinux-policy-default_*.deb" >/dev/null; then
  mkdir -p "$policy_deb_dir"
  (cd "$policy_deb_dir" && apt-get download -qq selinux-policy-default 2>/dev/null) ||
    echo "tests/run.sh: could not download selinux-policy-default: the file_contexts oracle tests will skip" >&2
fi

# Disk is what CI runs out of first: no incremental caches (a clean checkout gains nothing from
# them), and each stage says what it left on the disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
disk() { echo "tests/run.sh: after $1: $(du -sh target 2>/dev/null | cut -f1) in target, $(du -sh "$FERRY_CACHE" 2>/dev/null | cut -f1) in \$FERRY_CACHE, $(df -h --output=avail . | tail -1 | tr -d ' ') free"; }

status=0
cargo test --workspace --no-fail-fast "$@" || status=$?
disk tests

# A short bounded fuzz pass of every target (FERRY_FUZZ_SECONDS each, 0 skips it; not when
# tests are filtered): a dev build without sanitizer (quick to build, overflow checks on),
# all fuzz workspaces in one target directory, one target per core at a time.
fuzz_secs=${FERRY_FUZZ_SECONDS:-8}
if (($# == 0 && fuzz_secs > 0)); then
  CARGO_PROFILE_DEV_DEBUG=0 FUZZ_TARGET_DIR="$PWD/target/fuzz" FUZZ_FLAGS="--dev -s none" FUZZ_JOBS="$(nproc)" testdata/fuzz.sh all "$fuzz_secs" || status=$?
  disk fuzzing
fi
exit "$status"
