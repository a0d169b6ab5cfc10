#!/usr/bin/env bash
# Benchmark (not a test): `ferry convert` of a synthetic Windows Server 2022 system volume
# (a 2.5 GiB whole-disk NTFS made by mkntfs and filled through an ntfs-3g FUSE mount: the
# 2022-shaped SYSTEM/SOFTWARE hives of converters/tests/windows_support, 50,000 small files
# in 500 directories and 1.8 GiB of incompressible data) with a virtio-win tree laid out as
# the ISO, against `qemu-img convert -O qcow2` of the same disk (virt-v2v cannot be
# installed on this machine: Debian 12 has no virt-v2v with a working appliance here).
#
# usage: testdata/bench/windows-convert.sh
#   RUNS=3   timed runs of each (median reported), alternating, after one warm-up each
#   FERRY=…  the binary (default target/release/ferry, built here)
#
# The volume is built once into $FERRY_CACHE (default /var/tmp/ferry-cache), keyed by this
# script's hash. Wall, user, system seconds and peak RSS from /usr/bin/time; the load
# average before and after (the machine is shared). Needs root and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
if [ -z "${FERRY:-}" ]; then cargo build --release --quiet --bin ferry; FERRY=$PWD/target/release/ferry; fi
cache=${FERRY_CACHE:-/var/tmp/ferry-cache}
key=$(sha256sum "$0" | cut -c1-16)
vol=$cache/win2022-bench-$key
if [ ! -e "$vol/done" ]; then
  rm -rf "$vol"; mkdir -p "$vol"
  hive() { # NAME REG PREFIX: the minimal hive, regf minor 5, REG merged
    perl testdata/inspect/minimal-hive.pl "$vol/$1"
    python3 - "$vol/$1" <<'P'
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[24:28] = struct.pack('<I', 5)
x = 0
for i in range(127):
    x ^= struct.unpack_from('<I', b, i * 4)[0]
b[508:512] = struct.pack('<I', x)
open(sys.argv[1], 'wb').write(b)
P
    hivexregedit --merge --prefix "$3" "$vol/$1" "converters/tests/windows_support/$2"
  }
  hive SYSTEM system-2022.reg 'HKEY_LOCAL_MACHINE\SYSTEM'
  hive SOFTWARE software-2022.reg 'HKEY_LOCAL_MACHINE\SOFTWARE'
  truncate -s 2560M "$vol/win.img"
  mkntfs -q -F -f -L Windows "$vol/win.img"
  mnt=$vol/mnt; mkdir -p "$mnt"
  ntfs-3g -o big_writes "$vol/win.img" "$mnt"
  mkdir -p "$mnt/Windows/System32/config" "$mnt/Windows/System32/drivers"
  cp "$vol/SYSTEM" "$vol/SOFTWARE" "$mnt/Windows/System32/config/"
  python3 - "$mnt" <<'P'
import os, sys
root = sys.argv[1]
for d in range(500):
    p = os.path.join(root, "Windows", "WinSxS", f"amd64_component{d:04d}")
    os.makedirs(p)
    for f in range(100):
        with open(os.path.join(p, f"file{f:03d}.dll"), "wb") as o:
            o.write(os.urandom(512 + (d * 100 + f) % 7000))
for i in range(3):
    with open(os.path.join(root, f"data{i}.bin"), "wb") as o:
        for _ in range(600):
            o.write(os.urandom(1 << 20))
P
  umount "$mnt"
  # The virtio-win tree: three drivers for 2k22/amd64 plus the guest agent MSI.
  for drv in viostor NetKVM Balloon; do
    d=$vol/virtio-win/$drv/2k22/amd64; mkdir -p "$d"
    head -c 300000 /dev/urandom >"$d/$(echo "$drv" | tr 'A-Z' 'a-z').sys"
    printf '[Manufacturer]\r\n%%Disk%% = x, PCI\\VEN_1AF4&DEV_1001, PCI\\VEN_1AF4&DEV_1042\r\n' >"$d/$(echo "$drv" | tr 'A-Z' 'a-z').inf"
  done
  mkdir -p "$vol/virtio-win/guest-agent"; head -c 9000000 /dev/urandom >"$vol/virtio-win/guest-agent/qemu-ga-x86_64.msi"
  touch "$vol/done"
fi
work=$(mktemp -d /var/tmp/ferry-win-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
cat "$vol/win.img" >/dev/null
run() { # ferry|qemu-img → "tool wall user sys maxrss_kib"
  rm -rf "$work/out"; mkdir "$work/out"
  case $1 in
    ferry) /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$FERRY" convert -i disk "$vol/win.img" -o local -os "$work/out" -on win -of qcow2 --virtio-win "$vol/virtio-win" >/dev/null ;;
    qemu-img) /usr/bin/time -f "%e %U %S %M" -o "$work/time" qemu-img convert -f raw -O qcow2 "$vol/win.img" "$work/out/win.qcow2" ;;
  esac
  echo "$1 $(cat "$work/time")"
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "volume: $(du -h --apparent-size "$vol/win.img" | cut -f1) apparent, $(du -h "$vol/win.img" | cut -f1) allocated"
run ferry >/dev/null; run qemu-img >/dev/null
: >"$work/results"
for ((i = 0; i < RUNS; i++)); do
  if ((i % 2)); then order=(qemu-img ferry); else order=(ferry qemu-img); fi
  for g in "${order[@]}"; do run "$g" >>"$work/results"; done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
ntfsfix --no-action "$work/out/win-sda" >/dev/null 2>&1 || true
python3 - "$work/results" <<'P'
import statistics, sys
rows = {}
for l in open(sys.argv[1]):
    g, wall, user, sys_, rss = l.split()
    rows.setdefault(g, []).append((float(wall), float(user) + float(sys_), int(rss)))
print("| tool | wall s, median (min-max) | CPU (user+sys) s, median (min-max) | peak RSS MiB (max) |")
print("|---|---|---|---|")
for g in ("ferry", "qemu-img"):
    w = [r[0] for r in rows[g]]; c = [r[1] for r in rows[g]]; m = max(r[2] for r in rows[g]) / 1024
    print(f"| {g} | {statistics.median(w):.2f} ({min(w):.2f}-{max(w):.2f}) | {statistics.median(c):.2f} ({min(c):.2f}-{max(c):.2f}) | {m:.0f} |")
mw = lambda g: statistics.median(r[0] for r in rows[g])
mc = lambda g: statistics.median(r[1] for r in rows[g])
print(f"\nferry convert / qemu-img convert: wall {mw('ferry') / mw('qemu-img'):.2f}x, CPU {mc('ferry') / mc('qemu-img'):.2f}x (target <= 1.5x)")
P
