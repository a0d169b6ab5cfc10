# Shared helpers for the guest build scripts (sourced, not run).
# Guests are cached in $FERRY_CACHE/guest-NAME-SHA256/ where SHA256 is the hash of the
# scripts that build them; a guest is rebuilt only when one of its scripts changes.
set -euo pipefail

FERRY_CACHE="${FERRY_CACHE:-/var/tmp/ferry-cache}"
GUESTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SUITE=bookworm

# scripts_hash FILE... : sha256 over the named scripts (in this directory), in order.
scripts_hash() {
  (cd "$GUESTS_DIR" && cat "$@") | sha256sum | cut -c1-16
}

# in_chroot ROOT CMD... : run CMD inside ROOT with /proc, /sys and /dev bound, in a private
# mount namespace so that nothing stays mounted when it ends.
in_chroot() {
  local root=$1; shift
  unshare --mount --propagation private -- bash -euc '
    root=$1; shift
    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs tmpfs "$root/run"
    exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
      DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"' in_chroot "$root" "$@"
}
