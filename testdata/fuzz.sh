#!/usr/bin/env bash
# Runs cargo-fuzz targets for a bounded time each.
#
#   testdata/fuzz.sh TARGET... [SECONDS]      (default 60 s per target)
#   testdata/fuzz.sh all [SECONDS]            (every target of every <crate>/fuzz)
#
# A target lives in <crate>/fuzz/fuzz_targets/TARGET.rs. Only stable Rust exists here, so
# cargo-fuzz runs with RUSTC_BOOTSTRAP=1; cargo-fuzz is installed when missing. Each target's
# corpus (<crate>/fuzz/corpus/TARGET, not committed) gets the committed seeds of
# testdata/*/fuzz-seeds/TARGET/ and, on first use, small images made with qemu-img.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

secs=60
targets=()
for a in "$@"; do
  if [[ $a =~ ^[0-9]+$ ]]; then secs=$a; else targets+=("$a"); fi
done
if ((${#targets[@]} == 0)); then
  echo "usage: $0 TARGET... [SECONDS]   (or: $0 all [SECONDS])" >&2
  exit 2
fi
if [[ ${targets[0]} == all ]]; then
  targets=()
  for f in fuzz/fuzz_targets/*.rs */fuzz/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1

# Seeds that need tools: small images of each VMDK flavour qemu-img writes.
seed_vmdk() {
  local dir=$1 kind=$2 tmp
  command -v qemu-img >/dev/null || return 0
  tmp=$(mktemp -d)
  head -c 196608 /dev/urandom >"$tmp/r.raw"
  truncate -s 262144 "$tmp/r.raw"
  case $kind in
    stream) qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$tmp/r.raw" "$dir/qemu-stream.vmdk" ;;
    sparse)
      qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$tmp/r.raw" "$dir/qemu-stream.vmdk"
      qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse,zeroed_grain=on "$tmp/r.raw" "$dir/qemu-sparse.vmdk"
      ;;
    descriptor)
      qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentFlat "$tmp/d.vmdk" 1M
      cp "$tmp/d.vmdk" "$dir/qemu-split.txt"
      ;;
  esac
  rm -rf "$tmp"
}

for t in "${targets[@]}"; do
  src=$(ls fuzz/fuzz_targets/"$t".rs */fuzz/fuzz_targets/"$t".rs 2>/dev/null | head -1 || true)
  if [[ -z $src ]]; then
    echo "fuzz.sh: no target $t (looked for fuzz/fuzz_targets/$t.rs and */fuzz/fuzz_targets/$t.rs)" >&2
    exit 2
  fi
  fuzzdir=$root/${src%%/fuzz_targets/*}
  corpus=$fuzzdir/corpus/$t
  # Committed seeds (testdata/<area>/fuzz-seeds/TARGET/) are always offered.
  mkdir -p "$corpus"
  for seeds in "$root"/testdata/*/fuzz-seeds/"$t"; do
    [[ -d $seeds ]] && cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
  done
  if [[ ! -e $corpus/.tool-seeds ]]; then
    touch "$corpus/.tool-seeds"
    case $t in
      vmdk_stream) seed_vmdk "$corpus" stream ;;
      vmdk_sparse) seed_vmdk "$corpus" sparse ;;
      vmdk_descriptor) seed_vmdk "$corpus" descriptor ;;
    esac
  fi
  echo "== $t for ${secs}s (corpus $corpus)"
  log=$(mktemp)
  status=0
  # Optional extra libFuzzer flags for one target: <crate>/fuzz/<target>.args (one line).
  extra=()
  [[ -f $fuzzdir/$t.args ]] && read -r -a extra <"$fuzzdir/$t.args"
  (cd "$fuzzdir/.." && cargo fuzz run --fuzz-dir "$fuzzdir" "$t" "$corpus" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -max_len=1048576 -print_final_stats=1 "${extra[@]}") >"$log" 2>&1 || status=$?
  grep -E "^(Done|==[0-9]+==ERROR|SUMMARY|thread .* panicked)" "$log" | tail -5 || true
  ((status == 0)) || tail -40 "$log"
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  echo "== $t: $runs executions in ${secs}s, exit $status"
  rm -f "$log"
  ((status == 0)) || exit "$status"
done
