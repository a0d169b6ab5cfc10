#!/usr/bin/env bash
# Makes the committed seeds of the btrfs_reader fuzz target (testdata/inspect/fuzz-seeds/
# btrfs_reader/): small `mkfs.btrfs --rootdir --shrink` filesystems, one per checksum type
# and compression, encoded as the target reads them: records of (u32 LE offset, u16 LE
# length, bytes) with runs of 32 or more zero bytes left out.
set -euo pipefail
cd "$(dirname "$0")"
out=fuzz-seeds/btrfs_reader
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src/etc" "$tmp/src/bin" "$tmp/src/sub/dir"
echo guest >"$tmp/src/etc/hostname"
head -c 40000 < <(yes 'compressible line') >"$tmp/src/etc/text"
head -c 3000 /dev/urandom >"$tmp/src/sub/dir/random"
ln -s ../etc/hostname "$tmp/src/bin/link"
truncate -s 64K "$tmp/src/sub/sparse"
echo end >>"$tmp/src/sub/sparse"
for spec in crc32c:zlib xxhash64:lzo sha256:zstd blake2b:no; do
  csum=${spec%%:*} comp=${spec##*:}
  img=$tmp/$csum.img
  mkfs.btrfs -q -m single -d single --csum "$csum" --compress "$comp" -u rw:sub --shrink -r "$tmp/src" "$img" 2>/dev/null
  python3 - "$img" "$out/mkfs-$csum-$comp" <<'PY'
import re, struct, sys
data = open(sys.argv[1], 'rb').read()[: 16 << 20]
out = bytearray()
for m in re.finditer(rb'(?:[^\x00]|\x00{1,31}(?=[^\x00]))+', data):
    s, e = m.span()
    while s < e:
        n = min(e - s, 65535)
        out += struct.pack('<IH', s, n) + data[s : s + n]
        s += n
open(sys.argv[2], 'wb').write(out)
PY
done
ls -l "$out"
