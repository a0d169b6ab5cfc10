# A 512-byte MBR boot sector: the firmware loads it at 0x7c00 in real mode; it prints a marker
# on COM1 (0x3f8) and on the firmware debug port (0x402), then writes 0x10 to the debug-exit
# port 0xf4 (QEMU isa-debug-exit / the runtime) and halts.
# Build: as --32 mbr-marker.S -o x.o && ld -m elf_i386 -Ttext 0x7c00 --oformat binary x.o -o mbr.bin
        .code16
        .globl _start
_start:
        cli
        xor %ax, %ax
        mov %ax, %ds
        mov $msg, %si
1:      lodsb
        test %al, %al
        jz 2f
        mov $0x3f8, %dx
        outb %al, %dx
        mov $0x402, %dx
        outb %al, %dx
        jmp 1b
2:      mov $0xf4, %dx
        mov $0x10, %al
        outb %al, %dx
3:      hlt
        jmp 3b
msg:    .asciz "ferry mbr: booted by firmware\n"
        .org 440
        .org 510
        .byte 0x55, 0xaa
