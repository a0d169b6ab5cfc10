#!/usr/bin/env bash
# Runs cargo-fuzz targets for a bounded time: testdata/fuzz.sh TARGET... [SECONDS]
# Each target is looked up in every <crate>/fuzz/fuzz_targets/ of the workspace. Only stable
# Rust is installed, so cargo-fuzz runs with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=60
targets=()
for a in "$@"; do
  if [[ $a =~ ^[0-9]+$ ]]; then secs=$a; else targets+=("$a"); fi
done
((${#targets[@]})) || { echo "usage: $0 TARGET... [SECONDS]" >&2; exit 2; }
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for t in "${targets[@]}"; do
  dir=$(dirname "$(dirname "$(ls -d */fuzz/fuzz_targets/"$t".rs | head -1)")")
  [ -n "$dir" ] || { echo "no fuzz target $t" >&2; exit 2; }
  crate=$(dirname "$dir")
  mkdir -p "$dir/corpus/$t"
  echo "fuzzing $t in $crate for ${secs}s"
  # Optional extra libFuzzer flags for one target: <crate>/fuzz/<target>.args (one line).
  extra=()
  [ -f "$dir/$t.args" ] && read -r -a extra <"$dir/$t.args"
  (cd "$crate" && RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 "${extra[@]}")
done
