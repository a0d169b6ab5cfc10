#!/usr/bin/env bash
# Runs cargo-fuzz targets for a bounded time each.
#
#   testdata/fuzz.sh TARGET... [SECONDS]      (default 60 s per target)
#   testdata/fuzz.sh all [SECONDS]            (every target of every <crate>/fuzz*)
#
# A target lives in <crate>/fuzz*/fuzz_targets/TARGET.rs (<crate>/fuzz, converters/fuzz-linux).
# Only stable Rust exists here, so cargo-fuzz runs with RUSTC_BOOTSTRAP=1; cargo-fuzz is
# installed when missing. Each target's corpus (<fuzzdir>/corpus/TARGET, not committed) gets
# the committed seeds of testdata/*/fuzz-seeds/TARGET/ and <fuzzdir>/seeds/TARGET/, the
# configuration files under testdata/configs for the description parsers, and, on first
# use, small images made with qemu-img (VMDK flavours, qcow2 variants) or cpio. A target
# that ends with no seed is an error: every target starts from real inputs.
#
# FUZZ_TARGET_DIR shares one cargo target directory between the fuzz workspaces (CI);
# FUZZ_FLAGS adds cargo-fuzz build flags (CI: "--dev -s none": quick to build, overflow
# checks on); FUZZ_JOBS runs that many targets at once (default 1; each libFuzzer run is
# one process, so CI runs one per core). Each target's summary is printed when it ends.
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
  for f in */fuzz*/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

# A debug build of cargo-fuzz: it only drives cargo and libFuzzer, and builds in half the time.
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --debug
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

# qcow2 seeds: v3 and v2 (compat=0.10), small clusters, compressed clusters, zero clusters,
# a backing reference, an L2 spread (data far apart), all small.
seed_qcow2() {
  local dir=$1 tmp
  command -v qemu-img >/dev/null || return 0
  tmp=$(mktemp -d)
  head -c 65536 /dev/urandom >"$tmp/r.raw"
  head -c 65536 /dev/zero | tr '\0' 'f' >>"$tmp/r.raw"
  truncate -s 1M "$tmp/r.raw"
  qemu-img convert -q -f raw -O qcow2 -o cluster_size=4096 "$tmp/r.raw" "$dir/small-clusters.qcow2"
  qemu-img convert -q -f raw -O qcow2 -o cluster_size=4096,compat=0.10 "$tmp/r.raw" "$dir/v2.qcow2"
  qemu-img convert -q -c -f raw -O qcow2 -o cluster_size=4096 "$tmp/r.raw" "$dir/compressed.qcow2"
  qemu-img create -q -f qcow2 -o cluster_size=512 "$dir/zero.qcow2" 8M
  command -v qemu-io >/dev/null && qemu-io -f qcow2 -c "write -z 0 64k" -c "write -P 7 1M 4k" "$dir/zero.qcow2" >/dev/null
  qemu-img create -q -f qcow2 -o cluster_size=4096 -b base.raw -F raw -u "$dir/backing.qcow2" 1M
  rm -rf "$tmp"
}

# cpio / initramfs seeds: a newc archive, and the same compressed.
seed_cpio() {
  local dir=$1 tmp
  command -v cpio >/dev/null || return 0
  tmp=$(mktemp -d)
  mkdir -p "$tmp/t/etc" "$tmp/t/lib/modules"
  echo guest >"$tmp/t/etc/hostname"
  ln -s ../etc/hostname "$tmp/t/lib/link"
  mkdir -p "$tmp/t/lib/modules/6.1.0/kernel/drivers/block"
  echo module >"$tmp/t/lib/modules/6.1.0/kernel/drivers/block/virtio_blk.ko"
  echo kernel/drivers/virtio/virtio_pci.ko >"$tmp/t/lib/modules/6.1.0/modules.builtin"
  (cd "$tmp/t" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$dir/newc.cpio"
  gzip -9c "$dir/newc.cpio" >"$dir/newc.cpio.gz"
  command -v zstd >/dev/null && zstd -q -c "$dir/newc.cpio" >"$dir/newc.cpio.zst"
  rm -rf "$tmp"
}

# ISO 9660 seeds: a Joliet image and a plain one, laid out as a small virtio-win tree.
seed_iso() {
  local dir=$1 tmp mk
  mk=$(command -v genisoimage || command -v mkisofs || true)
  [[ -n $mk ]] || return 0
  tmp=$(mktemp -d)
  mkdir -p "$tmp/t/viostor/2k22/amd64"
  echo driver >"$tmp/t/viostor/2k22/amd64/viostor.sys"
  echo inf >"$tmp/t/viostor/2k22/amd64/viostor.inf"
  "$mk" -quiet -J -V VIRTIO -o "$dir/joliet.iso" "$tmp/t"
  "$mk" -quiet -V VIRTIO -o "$dir/plain.iso" "$tmp/t"
  rm -rf "$tmp"
}

# Committed files that are real inputs of a target.
seed_files() {
  case $1 in
    vmx) ls testdata/configs/vmx/*.vmx testdata/configs/bad/*.vmx ;;
    libvirt) ls testdata/configs/libvirt/*.xml testdata/configs/bad/*.xml ;;
    xl) ls testdata/configs/xen/* testdata/configs/bad/*.cfg ;;
    ovf) ls testdata/configs/ovf/*.ovf ;;
    modules_dep) ls testdata/linux/expected/*/root/usr/lib/modules/*/modules.dep | head -4 ;;
  esac 2>/dev/null || true
}

# Byte-level seeds of targets whose input is a selector plus bytes: one per selector value.
seed_bytes() {
  local dir=$1 n=$2 len=$3 i
  for ((i = 0; i < n; i++)); do
    { printf "\\x$(printf %02x "$i")"; head -c "$len" /dev/zero | tr '\0' '\1'; } >"$dir/select-$i"
  done
}

# Seeds for the VHD, VHDX and VDI readers: small images qemu-img writes, with data.
seed_foreign() {
  local dir=$1 fmt=$2 tmp
  command -v qemu-img >/dev/null || return 0
  tmp=$(mktemp -d)
  head -c 196608 /dev/urandom >"$tmp/r.raw"
  truncate -s 2M "$tmp/r.raw"
  case $fmt in
    vhd)
      qemu-img convert -f raw -O vpc -o subformat=dynamic,block_size=512K "$tmp/r.raw" "$dir/qemu-dynamic.vhd" 2>/dev/null ||
        qemu-img convert -f raw -O vpc -o subformat=dynamic "$tmp/r.raw" "$dir/qemu-dynamic.vhd"
      qemu-img convert -f raw -O vpc -o subformat=fixed "$tmp/r.raw" "$dir/qemu-fixed.vhd"
      ;;
    vdi) qemu-img convert -f raw -O vdi "$tmp/r.raw" "$dir/qemu.vdi" ;;
    vhdx) qemu-img convert -f raw -O vhdx -o block_size=1M,log_size=1M "$tmp/r.raw" "$dir/qemu.vhdx" ;;
  esac
  rm -rf "$tmp"
}

one_target() { # TARGET: seeds, then a bounded run; its summary lines on stdout
  local t=$1 src fuzzdir corpus seeds log status extra build more runs f
  src=$(ls */fuzz*/fuzz_targets/"$t".rs 2>/dev/null | head -1 || true)
  if [[ -z $src ]]; then
    echo "fuzz.sh: no target $t (looked for */fuzz*/fuzz_targets/$t.rs)" >&2
    exit 2
  fi
  fuzzdir=$root/${src%%/fuzz_targets/*}
  corpus=$fuzzdir/corpus/$t
  # Committed seeds (testdata/<area>/fuzz-seeds/TARGET/) are always offered.
  mkdir -p "$corpus"
  for seeds in "$root"/testdata/*/fuzz-seeds/"$t" "$fuzzdir/seeds/$t"; do
    [[ -d $seeds ]] && cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
  done
  for f in $(seed_files "$t"); do cp -n "$f" "$corpus"/; done
  if [[ ! -e $corpus/.tool-seeds ]]; then
    touch "$corpus/.tool-seeds"
    case $t in
      vmdk_stream) seed_vmdk "$corpus" stream ;;
      vmdk_sparse) seed_vmdk "$corpus" sparse ;;
      vmdk_descriptor) seed_vmdk "$corpus" descriptor ;;
      qcow2) seed_qcow2 "$corpus" ;;
      cpio | initramfs | initramfs_virtio) seed_cpio "$corpus" ;;
      ext4_metadata) seed_bytes "$corpus" 3 64 ;;
      virtio_queues) seed_bytes "$corpus" 5 4096 ;;
      scsi_cdb) seed_bytes "$corpus" 4 64 ;;
      fw_cfg_dma) seed_bytes "$corpus" 2 512 ;;
      pflash_commands) seed_bytes "$corpus" 2 1024 ;;
      vhd | vhdx | vdi) seed_foreign "$corpus" "$t" ;;
      iso9660) seed_iso "$corpus" ;;
      ntfs_write) seed_bytes "$corpus" 4 10 ;;
      # The input's length modulo 5 picks the image (see the target): a 10-byte seed the
      # plain one, a 1-byte one (no change) the reflink image's sharers as the kernel left
      # them, a 3-byte one the rmapbt image.
      xfs_metadata)
        seed_bytes "$corpus" 4 10
        head -c 10 /dev/zero | tr '\0' '\1' >"$corpus/plain-image"
        printf 'r' >"$corpus/reflink-image"
        printf 'mmm' >"$corpus/rmapbt-image"
        ;;
    esac
  fi
  if [[ -z $(ls -A "$corpus" | grep -v '^\.tool-seeds$' | head -1) ]]; then
    echo "fuzz.sh: target $t has no seed (commit some under testdata/*/fuzz-seeds/$t/)" >&2
    exit 2
  fi
  echo "== $t for ${secs}s (corpus $corpus)"
  log=$(mktemp)
  status=0
  # Optional extra libFuzzer flags for one target: <crate>/fuzz/<target>.args (one line).
  extra=()
  [[ -f $fuzzdir/$t.args ]] && read -r -a extra <"$fuzzdir/$t.args"
  build=()
  [[ -n ${FUZZ_TARGET_DIR:-} ]] && build+=(--target-dir "$FUZZ_TARGET_DIR")
  [[ -n ${FUZZ_FLAGS:-} ]] && read -r -a more <<<"$FUZZ_FLAGS" && build+=("${more[@]}")
  (cd "$fuzzdir/.." && cargo fuzz run --fuzz-dir "$fuzzdir" "${build[@]}" "$t" "$corpus" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -max_len=1048576 -print_final_stats=1 "${extra[@]}") >"$log" 2>&1 || status=$?
  grep -E "^(Done|==[0-9]+==ERROR|SUMMARY|thread .* panicked)" "$log" | tail -5 || true
  ((status == 0)) || tail -40 "$log"
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  echo "== $t: $runs executions in ${secs}s, exit $status"
  rm -f "$log"
  return "$status"
}

# The targets, FUZZ_JOBS at a time; each one's output printed whole when it ends.
jobs_max=${FUZZ_JOBS:-1}
outdir=$(mktemp -d)
trap 'rm -rf "$outdir"' EXIT
failed=0
running=0
finish_one() {
  local st=0
  wait -n || st=$?
  running=$((running - 1))
  for o in "$outdir"/*.done; do
    [[ -e $o ]] || continue
    cat "${o%.done}.out"
    rm -f "$o" "${o%.done}.out"
  done
  ((st == 0)) || failed=$st
}
for t in "${targets[@]}"; do
  # one_target exits on a setup error: its own subshell, so the summary is still printed.
  (
    if (one_target "$t") >"$outdir/$t.out" 2>&1; then st=0; else st=$?; fi
    touch "$outdir/$t.done"
    exit "$st"
  ) &
  running=$((running + 1))
  if ((running >= jobs_max)); then finish_one; fi
  ((failed == 0)) || break
done
while ((running > 0)); do finish_one; done
exit "$failed"
