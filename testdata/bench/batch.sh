#!/usr/bin/env bash
# `ferry batch run` of N guests (the bundled sample under N names) against N sequential
# `ferry convert` runs of the same guests, same SOURCE_DATE_EPOCH, release build.
#   testdata/bench/batch.sh [N] [JOBS]      (defaults: 20, auto)
# Prints wall seconds of each and the batch's peak RSS (GNU time: the largest single process,
# the batch or one of its convert children).
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-20}
jobs=${2:-}
ferry=${FERRY:-$PWD/target/release/ferry}
sample=$PWD/testdata/sample/sample.vmx
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SOURCE_DATE_EPOCH=1700000000
{
  printf '[defaults]\ninput-mode = "vmx"\nos = "out"\nsource = "%s"\n' "$sample"
  for i in $(seq -w 1 "$n"); do printf '[[vm]]\nname = "g%s"\n' "$i"; done
} >"$work/fleet.toml"
mkdir -p "$work/seq"
start=$(date +%s.%N)
for i in $(seq -w 1 "$n"); do
  "$ferry" convert -i vmx "$sample" -o local -os "$work/seq" -on "g$i" >/dev/null 2>&1
done
seq_s=$(echo "$(date +%s.%N) - $start" | bc)
start=$(date +%s.%N)
/usr/bin/time -f '%M' -o "$work/rss" "$ferry" batch run ${jobs:+-j "$jobs"} "$work/fleet.toml" 2>/dev/null
batch_s=$(echo "$(date +%s.%N) - $start" | bc)
for i in $(seq -w 1 "$n"); do
  qemu-img compare -q "$work/seq/g$i-sda" "$work/out/g$i-sda"
done
echo "guests=$n sequential_s=$seq_s batch_s=$batch_s ratio=$(echo "scale=3; $batch_s / $seq_s" | bc) batch_peak_rss_kib=$(cat "$work/rss")"
