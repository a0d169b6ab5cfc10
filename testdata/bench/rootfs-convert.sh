#!/usr/bin/env bash
# Benchmark (not a test): `ferry convert -i vmx` of a Debian 12 guest whose root is on
# another filesystem than ext4 against the ext4 one (debian-vmware.sh): same userland and
# plan; the other guest's root edits go through that filesystem's writer.
#   GUEST=xfs    (default) debian-xfs.sh: XFS root, same 1.5 GiB disk (issue 14)
#   GUEST=btrfs  debian-btrfs.sh: root on btrfs subvolume @, /boot ext4 on sda1, 2 GiB disk
#                (issue 18)
#
# usage: [GUEST=xfs|btrfs] testdata/bench/rootfs-convert.sh   (builds or reuses both guests)
#   RUNS=5   timed runs per guest (median reported), after one warm-up each
#   FERRY=…  the binary (default target/release/ferry, built here)
#
# The guests alternate run by run; each output dir is removed first; warm page cache (the
# sources are read once before timing). Wall, user and system seconds from /usr/bin/time;
# the load average is printed before and after (the machine is shared).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-5}
GUEST=${GUEST:-xfs}
case $GUEST in
  xfs | btrfs) ;;
  *) echo "GUEST is xfs or btrfs, not $GUEST" >&2; exit 2 ;;
esac
if [ -z "${FERRY:-}" ]; then cargo build --release --quiet --bin ferry; FERRY=$PWD/target/release/ferry; fi
other=$("testdata/guests/debian-$GUEST.sh" | tail -1)
ext4=$(testdata/guests/debian-vmware.sh | tail -1)
work=$(mktemp -d "/var/tmp/ferry-$GUEST-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
declare -A vmx=([$GUEST]="$other/debian-$GUEST.vmx" [ext4]="$ext4/debian-vmware.vmx")
for g in "$GUEST" ext4; do cat "$(dirname "${vmx[$g]}")"/*.vmdk >/dev/null; done

run() { # run GUEST → "guest wall user sys"
  rm -rf "$work/out"; mkdir "$work/out"
  /usr/bin/time -f "%e %U %S" -o "$work/time" "$FERRY" convert -i vmx "${vmx[$1]}" -o local -os "$work/out" >/dev/null
  echo "$1 $(cat "$work/time")"
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
run "$GUEST" >/dev/null; run ext4 >/dev/null
: >"$work/results"
for ((i = 0; i < RUNS; i++)); do
  if ((i % 2)); then order=(ext4 "$GUEST"); else order=("$GUEST" ext4); fi
  for g in "${order[@]}"; do run "$g" >>"$work/results"; done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work/results" "$GUEST" <<'P'
import statistics, sys
rows = {}
for l in open(sys.argv[1]):
    g, wall, user, sys_ = l.split()
    rows.setdefault(g, []).append((float(wall), float(user) + float(sys_)))
other = sys.argv[2]
print("| guest | wall s, median (min-max) | CPU (user+sys) s, median (min-max) |")
print("|---|---|---|")
for g in ("ext4", other):
    w = [r[0] for r in rows[g]]; c = [r[1] for r in rows[g]]
    print(f"| {g} | {statistics.median(w):.2f} ({min(w):.2f}-{max(w):.2f}) | {statistics.median(c):.2f} ({min(c):.2f}-{max(c):.2f}) |")
mw = lambda g: statistics.median(r[0] for r in rows[g])
mc = lambda g: statistics.median(r[1] for r in rows[g])
print(f"\n{other} / ext4: wall {mw(other) / mw('ext4'):.2f}x, CPU {mc(other) / mc('ext4'):.2f}x (target <= 1.5x)")
P
