#!/usr/bin/env bash
# Benchmark (not a test): `ferry convert -i vmx` of the XFS-root Debian 12 guest
# (testdata/guests/debian-xfs.sh) against the ext4 one (debian-vmware.sh): same 1.5 GiB disk,
# same userland and plan; the XFS guest's root edits go through the XFS writer.
#
# usage: testdata/bench/xfs-convert.sh        (builds or reuses both cached guests)
#   RUNS=5   timed runs per guest (median reported), after one warm-up each
#   FERRY=…  the binary (default target/release/ferry, built here)
#
# The guests alternate run by run; each output dir is removed first; warm page cache (the
# sources are read once before timing). Wall, user and system seconds from /usr/bin/time;
# the load average is printed before and after (the machine is shared).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-5}
if [ -z "${FERRY:-}" ]; then cargo build --release --quiet --bin ferry; FERRY=$PWD/target/release/ferry; fi
xfs=$(testdata/guests/debian-xfs.sh | tail -1)
ext4=$(testdata/guests/debian-vmware.sh | tail -1)
work=$(mktemp -d /var/tmp/ferry-xfs-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
declare -A vmx=([xfs]="$xfs/debian-xfs.vmx" [ext4]="$ext4/debian-vmware.vmx")
for g in xfs ext4; do cat "$(dirname "${vmx[$g]}")"/*.vmdk >/dev/null; done

run() { # run GUEST → "guest wall user sys"
  rm -rf "$work/out"; mkdir "$work/out"
  /usr/bin/time -f "%e %U %S" -o "$work/time" "$FERRY" convert -i vmx "${vmx[$1]}" -o local -os "$work/out" >/dev/null
  echo "$1 $(cat "$work/time")"
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
run xfs >/dev/null; run ext4 >/dev/null
: >"$work/results"
for ((i = 0; i < RUNS; i++)); do
  if ((i % 2)); then order=(ext4 xfs); else order=(xfs ext4); fi
  for g in "${order[@]}"; do run "$g" >>"$work/results"; done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work/results" <<'P'
import statistics, sys
rows = {}
for l in open(sys.argv[1]):
    g, wall, user, sys_ = l.split()
    rows.setdefault(g, []).append((float(wall), float(user) + float(sys_)))
print("| guest | wall s, median (min-max) | CPU (user+sys) s, median (min-max) |")
print("|---|---|---|")
for g in ("ext4", "xfs"):
    w = [r[0] for r in rows[g]]; c = [r[1] for r in rows[g]]
    print(f"| {g} | {statistics.median(w):.2f} ({min(w):.2f}-{max(w):.2f}) | {statistics.median(c):.2f} ({min(c):.2f}-{max(c):.2f}) |")
mw = lambda g: statistics.median(r[0] for r in rows[g])
mc = lambda g: statistics.median(r[1] for r in rows[g])
print(f"\nXFS / ext4: wall {mw('xfs') / mw('ext4'):.2f}x, CPU {mc('xfs') / mc('ext4'):.2f}x (target <= 1.5x)")
P
