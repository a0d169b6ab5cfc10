#!/usr/bin/env bash
# Benchmark (not a test): `ferry img convert -O qcow2` against `qemu-img convert -O qcow2`
# (default, and `-m 8 -W`) on a 4 GiB disk holding 1 GiB of data in 800 extents, random and
# compressible ("mixed"), as raw, monolithicSparse VMDK, streamOptimized VMDK and qcow2.
#
# usage: testdata/bench/convert.sh [SOURCE-FILTER]     e.g. `convert.sh random.raw`
#   RUNS=5            timed runs per tool and source (median reported), after one warm-up
#   BENCH_DIR=...     where images live (default /var/tmp/ferry-bench; ~12 GB)
#
# Fairness: the tools alternate run by run; the output is deleted and `sync`ed, the page cache
# dropped and the source warmed (`cat >/dev/null`) before each run (untimed); neither side flushes the output
# (qemu-img `-t unsafe`, ferry without --flush). Every output is validated with
# `qemu-img compare` and `qemu-img check`. Peak RSS comes from /usr/bin/time.
# Sources Ferry cannot open yet are reported as n/a for Ferry (qemu-img still runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-5}
DIR=${BENCH_DIR:-/var/tmp/ferry-bench}
FILTER=${1:-}
FERRY=$PWD/target/release/ferry

command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
command -v qemu-img >/dev/null || { echo "qemu-img is needed (apt-get install qemu-utils)" >&2; exit 1; }
cargo build --release --quiet
mkdir -p "$DIR"

# Images are rebuilt when the generator changes.
stamp=$(sha256sum testdata/bench/mkdisk.py | cut -c1-16)
if [ "$(cat "$DIR/stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -f "$DIR"/*.raw "$DIR"/*.vmdk "$DIR"/*.qcow2
  echo "$stamp" >"$DIR/stamp"
fi
for kind in random mixed; do
  [ -e "$DIR/$kind.raw" ] || python3 testdata/bench/mkdisk.py "$DIR/$kind.raw" "$kind"
  [ -e "$DIR/$kind.sparse.vmdk" ] || qemu-img convert -O vmdk "$DIR/$kind.raw" "$DIR/$kind.sparse.vmdk"
  [ -e "$DIR/$kind.stream.vmdk" ] ||
    qemu-img convert -O vmdk -o subformat=streamOptimized "$DIR/$kind.raw" "$DIR/$kind.stream.vmdk"
  [ -e "$DIR/$kind.qcow2" ] || qemu-img convert -O qcow2 "$DIR/$kind.raw" "$DIR/$kind.qcow2"
done

results="$DIR/results.tsv"
: >"$results"
out="$DIR/out.qcow2"

# run TOOL SOURCE: one timed conversion; appends "source tool seconds rss_kib user sys".
run() {
  local tool=$1 src=$2 cmd
  case $tool in
    ferry) cmd=("$FERRY" img convert -O qcow2 "$src" "$out") ;;
    qemu) cmd=(qemu-img convert -t unsafe -O qcow2 "$src" "$out") ;;
    qemu-m8W) cmd=(qemu-img convert -t unsafe -m 8 -W -O qcow2 "$src" "$out") ;;
  esac
  rm -f "$out"
  sync
  # Free page cache first (root only), so neither tool pays for reclaiming memory to hold the
  # output's pages: with a full page cache that cost dominates and swings run to run.
  [ -w /proc/sys/vm/drop_caches ] && echo 1 >/proc/sys/vm/drop_caches
  cat "$src" >/dev/null
  /usr/bin/time -f "%e %M %U %S" -o "$DIR/time.txt" "${cmd[@]}" >/dev/null
  echo "$(basename "$src") $tool $(cat "$DIR/time.txt") $(stat -c %s "$out")" >>"$3"
}

for kind in random mixed; do
  for fmt in raw sparse.vmdk stream.vmdk qcow2; do
    src="$DIR/$kind.$fmt"
    [[ -z "$FILTER" || "$(basename "$src")" == *"$FILTER"* ]] || continue
    tools=(qemu qemu-m8W)
    if "$FERRY" img info "$src" >/dev/null 2>&1; then
      tools=(ferry qemu qemu-m8W)
    else
      echo "$(basename "$src") ferry n/a" >>"$results"
    fi
    for t in "${tools[@]}"; do run "$t" "$src" /dev/null; done # warm-up
    for ((i = 0; i < RUNS; i++)); do
      # Alternate the order from run to run.
      if ((i % 2)); then order=("${tools[@]}"); else order=($(printf '%s\n' "${tools[@]}" | tac)); fi
      for t in "${order[@]}"; do
        run "$t" "$src" "$results"
        if [ "$t" = ferry ] && ((i == 0)); then
          qemu-img compare -q "$src" "$out" || { echo "ferry output differs from $src" >&2; exit 1; }
          qemu-img check -q "$out" || { echo "ferry output of $src fails qemu-img check" >&2; exit 1; }
        fi
      done
    done
  done
done
rm -f "$out" "$DIR/time.txt"

python3 - "$results" <<'EOF'
import statistics, sys
rows = {}
na = set()
for line in open(sys.argv[1]):
    f = line.split()
    if f[2] == "n/a":
        na.add(f[0]); continue
    rows.setdefault(f[0], {}).setdefault(f[1], []).append((float(f[2]), int(f[3]), float(f[4]), float(f[5]), int(f[6])))
print("| source | ferry s, median (min-max) | qemu-img s | qemu-img -m8 -W s | ferry / best qemu | ferry RSS MiB | qemu RSS MiB | ferry user+sys s | qemu user+sys s |")
print("|---|---|---|---|---|---|---|---|---|")
for src, tools in rows.items():
    def med(t):
        v = [r[0] for r in tools.get(t, [])]
        return statistics.median(v) if v else None
    def cell(t):
        v = [r[0] for r in tools.get(t, [])]
        return f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})" if v else "n/a"
    def rss(t):
        v = [r[1] for r in tools.get(t, [])]
        return f"{max(v)/1024:.0f}" if v else "n/a"
    def cpu(t):
        v = [r[2] + r[3] for r in tools.get(t, [])]
        return f"{statistics.median(v):.2f}" if v else "n/a"
    best = min(x for x in (med("qemu"), med("qemu-m8W")) if x is not None)
    ratio = f"{med('ferry') / best:.2f}" if med("ferry") else "n/a"
    print(f"| {src} | {cell('ferry')} | {cell('qemu')} | {cell('qemu-m8W')} | {ratio} | {rss('ferry')} | {rss('qemu')} | {cpu('ferry')} | {cpu('qemu')} |")
for src in sorted(na):
    print(f"\n{src}: Ferry cannot read this source yet (n/a).")
EOF
