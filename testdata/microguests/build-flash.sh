#!/bin/sh
# Builds one flash micro-guest: build-flash.sh NAME OUTDIR -> OUTDIR/NAME_CODE.fd, a 128 KiB
# image for pflash unit 0 (started at the reset vector; see flash-entry.S and flash.ld).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
name=$1; out=$2
mkdir -p "$out"
cflags="-m32 -march=i686 -ffreestanding -fno-pic -fno-pie -fno-stack-protector -fno-builtin -nostdlib -Os -Wall -Werror -fno-asynchronous-unwind-tables -mno-sse -mno-mmx -mgeneral-regs-only"
gcc $cflags -c "$here/flash-entry.S" -o "$out/$name.flash-entry.o"
gcc $cflags -c "$here/$name.c" -o "$out/$name.o"
ld -m elf_i386 --no-warn-rwx-segments -nostdlib -no-pie -T "$here/flash.ld" "$out/$name.flash-entry.o" "$out/$name.o" -o "$out/$name.flash.elf"
objcopy -O binary "$out/$name.flash.elf" "$out/$name.part"
size=$(wc -c < "$out/$name.part")
[ "$size" -eq 131072 ] || { echo "$name: flash image is $size bytes, not 131072" >&2; exit 1; }
mv "$out/$name.part" "$out/${name}_CODE.fd"
