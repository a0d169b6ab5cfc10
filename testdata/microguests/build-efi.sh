#!/bin/sh
# Builds one UEFI micro-guest: build-efi.sh NAME OUTDIR -> OUTDIR/NAME.efi, an x86-64 EFI
# application (PE32+, subsystem 10, with base relocations) from NAME.c (see efi-marker.c).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
name=$1; out=$2
mkdir -p "$out"
cflags="-m64 -ffreestanding -fpie -fno-stack-protector -fno-builtin -nostdlib -Os -Wall -Werror -fno-asynchronous-unwind-tables -mno-red-zone -mgeneral-regs-only -fshort-wchar -fno-ident"
gcc $cflags -c "$here/$name.c" -o "$out/$name.efi.o"
ld -m i386pep --subsystem 10 --entry efi_main --image-base 0x10000000 --enable-reloc-section --dynamicbase --no-insert-timestamp -nostdlib "$out/$name.efi.o" -o "$out/$name.efi"
