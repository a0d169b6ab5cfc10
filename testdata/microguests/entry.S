/* PVH entry shared by every micro-guest: 32-bit protected mode, paging off, %ebx = start_info.
 * The Xen PHYS32_ENTRY note makes the same ELF boot under Ferry's runtime and `qemu -kernel`. */
	.section .note.pvh, "a"
	.balign 4
	.long 4			/* namesz */
	.long 8			/* descsz */
	.long 18		/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long _start
	.long 0

	.text
	.code32
	.globl _start
_start:
	cli
	movl $stack_top, %esp
	pushl %ebx
	call main
	pushl %eax
	call guest_exit
1:	hlt
	jmp 1b

	.bss
	.balign 16
	.space 16384
stack_top:
	.section .note.GNU-stack,"",@progbits
