#!/usr/bin/env python3
"""Writes the benchmark disk: a sparse raw file of SIZE bytes holding DATA bytes in ~800
extents of 4 KiB to 8 MiB at random 4 KiB-aligned offsets (seeded, so always the same).

usage: mkdisk.py OUT random|mixed [SIZE_GIB=4] [DATA_GIB=1]
  random: every data byte random (incompressible)
  mixed:  40 % random, 60 % text-like (deflates to about 0.6)
"""
import os
import random
import sys

out, kind = sys.argv[1], sys.argv[2]
size = int(float(sys.argv[3]) * (1 << 30)) if len(sys.argv) > 3 else 4 << 30
data = int(float(sys.argv[4]) * (1 << 30)) if len(sys.argv) > 4 else 1 << 30
rng = random.Random(20261125)

# Extent lengths: log-uniform 4 KiB..8 MiB, scaled to sum to `data`.
lengths = [int(2 ** rng.uniform(12, 23)) for _ in range(800)]
scale = data / sum(lengths)
lengths = [max(4096, int(n * scale) // 4096 * 4096) for n in lengths]
lengths[-1] += data - sum(lengths)
# Non-overlapping positions: shuffle the gaps between extents.
free = size - data
cuts = sorted(rng.randrange(0, free // 4096) * 4096 for _ in lengths)
words = b"the quick brown fox jumps over the lazy dog ferry carries disks to kvm 0123456789 ".split()


def text(n):
    parts = []
    total = 0
    while total < n:
        w = rng.choice(words) + b" "
        parts.append(w)
        total += len(w)
    return b"".join(parts)[:n]


text_block = text(1 << 20)
with open(out, "wb") as f:
    f.truncate(size)
    pos_shift = 0
    for gap, n in zip(cuts, lengths):
        off = gap + pos_shift
        pos_shift += n
        f.seek(off)
        left = n
        while left > 0:
            step = min(left, 1 << 20)
            if kind == "random" or rng.random() < 0.4:
                f.write(os.urandom(step))
            else:
                start = rng.randrange(0, len(text_block) - step + 1)
                f.write(text_block[start:start + step])
            left -= step
print(f"{out}: {size} bytes, {data} bytes of {kind} data in {len(lengths)} extents")
