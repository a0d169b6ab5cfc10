#!/usr/bin/env bash
# Benchmark (not a test): the whole conversion of the VMware-style Debian 12 guest,
# `ferry convert -i vmx -o local -of qcow2` against
# `virt-v2v -i vmx -o local -of qcow2` (LIBGUESTFS_BACKEND=direct, TCG appliance).
#
# usage: testdata/bench/v2v.sh        RUNS=3 (timed runs per tool, median reported)
#   BENCH_DIR=...   where the bench guest and outputs live (default /var/tmp/ferry-bench)
#   GUEST=xfs       the XFS-root guest (testdata/guests/debian-xfs.sh, its mkfs.xfs options)
#                   instead of the ext4 one (default GUEST=ext4)
#
# The guest is testdata/guests/debian-vmware.sh's (debootstrap + linux-image-amd64, sda1 in
# fstab, MODULES=list with VMware storage drivers only, open-vm-tools, ens192) plus grub-pc
# installed, as on a real install: virt-v2v refuses a grub2 guest without grub-mkconfig.
# Installs virt-v2v (Debian 12's 2.2) and a host kernel for its appliance when missing.
# Both tools start from a warm page cache; the outputs are checked with `qemu-img check`.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
GUEST=${GUEST:-ext4}
DIR=${BENCH_DIR:-/var/tmp/ferry-bench}
FERRY=$PWD/target/release/ferry
export LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg

if ! command -v virt-v2v >/dev/null || ! command -v nbdkit >/dev/null || ! ls /boot/vmlinuz-* >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends virt-v2v nbdkit libnbd-bin linux-image-amd64 >/dev/null
fi
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet

# The bench guest, rebuilt when this script or the guest's scripts change.
case $GUEST in
  ext4) guest=$(testdata/guests/debian-vmware.sh | tail -1); vmx=debian-vmware.vmx ;;
  xfs) guest=$(testdata/guests/debian-xfs.sh | tail -1); vmx=debian-xfs.vmx
    XFS_OPTS=$(sed -n 's/^XFS_OPTS=(\(.*\))$/\1/p' testdata/guests/debian-xfs.sh) ;;
  *) echo "v2v.sh: GUEST is ext4 or xfs, not $GUEST" >&2; exit 2 ;;
esac
base=$(testdata/guests/base.sh)
source testdata/guests/common.sh
stamp=$( (cat "$0"; echo "$guest") | sha256sum | cut -c1-16)
g="$DIR/v2v-guest-$GUEST"
if [ "$(cat "$g/stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$g"; mkdir -p "$g"
  cp -a "$guest/root" "$g/root"
  # grub-pc's packages, downloaded into the base image for offline installs.
  zstd -dc "$base/rootfs.tar.zst" | tar -C "$g/root" -xf - --wildcards './var/cache/apt/archives/*.deb'
  in_chroot "$g/root" sh -c 'cd /var/cache/apt/archives && dpkg -i gettext-base_*.deb libefivar1_*.deb \
    libefiboot1_*.deb libfreetype6_*.deb libpng16-16_*.deb libbrotli1_*.deb libfuse3-3_*.deb libfuse2_*.deb \
    grub-common_*.deb grub-pc-bin_*.deb' >/dev/null
  rm -f "$g/root/var/cache/apt/archives/"*.deb
  truncate -s 1536M "$g/disk.raw"
  echo 'label: dos
start=2048, type=83, bootable' | sfdisk -q "$g/disk.raw"
  if [ "$GUEST" = ext4 ]; then
    mkfs.ext4 -q -F -b 4096 -L "" -E offset=1048576 -d "$g/root" "$g/disk.raw" $(((1536 * 1048576 - 1048576) / 4096))
  else
    # As debian-xfs.sh: mkfs.xfs on a file, filled through a loop mount in a private mount
    # namespace, checked, written at 1 MiB.
    truncate -s $((1536 * 1048576 - 1048576)) "$g/part"
    # shellcheck disable=SC2086
    mkfs.xfs -q -f $XFS_OPTS "$g/part"
    unshare --mount --propagation private -- bash -euc '
      m=$(mktemp -d); mount -o loop "$1" "$m"; cp -a "$2/." "$m/"; umount "$m"; rmdir "$m"' fill "$g/part" "$g/root"
    xfs_repair -n -f "$g/part" >/dev/null 2>&1 || { echo "v2v.sh: xfs_repair -n fails on the bench guest" >&2; exit 1; }
    dd if="$g/part" of="$g/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
    rm -f "$g/part"
  fi
  qemu-img convert -f raw -O vmdk "$g/disk.raw" "$g/bench.vmdk"
  sed -e 's/^displayName = .*/displayName = "bench"/' \
    -e 's/^scsi0:0.fileName = .*/scsi0:0.fileName = "bench.vmdk"/' "$guest/$vmx" >"$g/bench.vmx"
  rm -rf "$g/root" "$g/disk.raw"
  echo "$stamp" >"$g/stamp"
fi

results="$DIR/v2v-results-$GUEST.tsv"
: >"$results"
# run TOOL: one timed conversion into a fresh directory; appends "tool seconds rss_kib".
run() {
  local tool=$1 out="$DIR/v2v-out-$1"
  rm -rf "$out"; mkdir -p "$out"; sync
  cat "$g/bench.vmdk" >/dev/null
  case $tool in
    ferry) cmd=("$FERRY" convert -i vmx "$g/bench.vmx" -o local -os "$out" -of qcow2) ;;
    virt-v2v) cmd=(virt-v2v -i vmx "$g/bench.vmx" -o local -os "$out" -of qcow2) ;;
  esac
  /usr/bin/time -f "%e %M %U %S" -o "$DIR/time.txt" "${cmd[@]}" >"$DIR/v2v-$tool.log" 2>&1 ||
    { echo "$tool failed, see $DIR/v2v-$tool.log" >&2; tail -5 "$DIR/v2v-$tool.log" >&2; exit 1; }
  qemu-img check -q "$out/bench-sda" || { echo "$tool output fails qemu-img check" >&2; exit 1; }
  echo "$tool $(cat "$DIR/time.txt")" >>"$results"
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((i = 0; i < RUNS; i++)); do
  if ((i % 2)); then run ferry; run virt-v2v; else run virt-v2v; run ferry; fi
done

echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" <<'P'
import statistics, sys, collections
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    tool, secs, rss, user, sys_ = line.split()
    d[tool].append((float(secs), int(rss), float(user) + float(sys_)))
v = statistics.median(r[0] for r in d["virt-v2v"])
vc = statistics.median(r[2] for r in d["virt-v2v"])
for tool, runs in d.items():
    m = statistics.median(r[0] for r in runs)
    c = statistics.median(r[2] for r in runs)
    print(f"{tool:9} median {m:8.2f} s wall, {c:8.2f} s CPU  ratio {m / v:.4f} wall, {c / vc:.4f} CPU  peak RSS {max(r[1] for r in runs) // 1024} MiB  runs {[r[0] for r in runs]}")
P
