#!/bin/sh
# Builds one micro-guest: build.sh NAME OUTDIR -> OUTDIR/NAME.elf (ELF64 holding 32-bit PVH code).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
name=$1; out=$2
mkdir -p "$out"
cflags="-m32 -march=i686 -ffreestanding -fno-pic -fno-pie -fno-stack-protector -fno-builtin -nostdlib -Os -Wall -Werror -fno-asynchronous-unwind-tables -mno-sse -mno-mmx -mgeneral-regs-only"
gcc $cflags -c "$here/entry.S" -o "$out/$name.entry.o"
gcc $cflags -c "$here/$name.c" -o "$out/$name.o"
ld -m elf_i386 --no-warn-rwx-segments -nostdlib -no-pie -T "$here/guest.ld" "$out/$name.entry.o" "$out/$name.o" -o "$out/$name.elf32"
objcopy -I elf32-i386 -O elf64-x86-64 "$out/$name.elf32" "$out/$name.elf"
