#!/usr/bin/env bash
# Issue 15's fleet benchmark on the real Debian 12 test guest (debian-vmware from $FERRY_CACHE,
# 1.5 GiB disk, ~760 MB of data; the conversion rebuilds its initramfs): N entries of one
# manifest, each converting that guest's VMX under its own name, with `ferry batch run`
# (--jobs auto unless JOBS is given), against N sequential `ferry convert` runs; same
# SOURCE_DATE_EPOCH. Wall and CPU seconds and the peak RSS summed over the whole process tree
# (testdata/bench/peak_rss.py) of each; load average before and after. Three batch outputs
# are checked `qemu-img compare`-identical to their sequential twins.
#   testdata/bench/fleet.sh [N] [JOBS]      (defaults: 20, auto)
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-20}
jobs=${2:-}
ferry=${FERRY:-$PWD/target/release/ferry}
cache=${FERRY_CACHE:-/var/tmp/ferry-cache}
vmx=$(ls -d "$cache"/guest-debian-vmware-*/debian-vmware.vmx | tail -1)
rss=$PWD/testdata/bench/peak_rss.py
work=$(mktemp -d -p /var/tmp ferry-fleet-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
export SOURCE_DATE_EPOCH=1700000000
{
  printf '[defaults]\ninput-mode = "vmx"\nos = "out"\nsource = "%s"\n' "$vmx"
  for i in $(seq -w 1 "$n"); do printf '[[vm]]\nname = "g%s"\n' "$i"; done
} >"$work/fleet.toml"
mkdir -p "$work/seq" "$work/out"
keep="01 $(printf %02d $((n / 2))) $(printf %02d "$n")"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# Both timings end with `sync`: the outputs are on disk (ferry convert does not fsync its
# outputs, and a deleted output's dirty pages would never be written).
cat >"$work/seq.sh" <<SEQ
for i in \$(seq -w 1 $n); do
  "$ferry" convert -i vmx "$vmx" -o local -os "$work/seq" -on "g\$i" >/dev/null 2>&1
done
sync
SEQ
sync; echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true
python3 "$rss" -- bash "$work/seq.sh" 2>"$work/seq.json"
echo "sequential: $(cat "$work/seq.json")"
# Keep three for the comparison; the disk space of the rest is given back.
for f in "$work"/seq/g*-sda; do
  case " $keep " in *" $(basename "$f" -sda | cut -c2-) "*) ;; *) rm -f "$f" ;; esac
done
sync; echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true
(cd "$work" && python3 "$rss" -- sh -c "\"\$0\" batch run ${jobs:+-j $jobs} --report report.json fleet.toml && sync" "$ferry" 2>"$work/batch.err") 2>&1 || true
tail -1 "$work/batch.err" | grep -q '"peak_tree_rss_kib"' || { cat "$work/batch.err"; exit 1; }
echo "batch: $(tail -1 "$work/batch.err")"
echo "batch's own report: peak_rss_kib=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("peak_rss_kib"))' "$work/report.json")"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $keep; do
  [ -e "$work/seq/g$i-sda" ] && qemu-img compare -q "$work/seq/g$i-sda" "$work/out/g$i-sda"
done
echo "compared: identical"
