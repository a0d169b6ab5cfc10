/* Reset-vector entry of the flash micro-guests: the image is pflash unit 0 (where OVMF's code
 * sits), so the vCPU starts here in real mode at 0xffff_fff0. It enters flat 32-bit protected
 * mode, copies the program (linked at 1 MiB, stored at the start of the image) and its data
 * into RAM, clears its .bss and calls main() there: the program may then put unit 0 itself
 * into a command mode, where it no longer reads as memory. See flash.ld. */
	.section .reset16, "ax"
	.code16
	.globl reset16
reset16:
	cli
	cld
	/* CS base is 0xffff0000 at reset and .reset16 is linked at 0xffffff00. */
	lgdtl %cs:(gdt_desc - reset16 + 0xff00)
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $0x08, $start32

	.code32
start32:
	movl $0x10, %eax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	movl $__load_start, %esi
	movl $__text_start, %edi
	movl $__copy_len, %ecx
	rep movsb
	movl $__bss_start, %edi
	movl $__bss_len, %ecx
	xorl %eax, %eax
	rep stosb
	movl $stack_top, %esp
	movl $main, %eax
	call *%eax
	pushl %eax
	movl $guest_exit, %eax
	call *%eax
1:	hlt
	jmp 1b

	/* The descriptors carry their accessed bit, as OVMF's reset-vector GDT does: loading one
	 * without it makes the CPU write the bit into the GDT, here flash (a read-only KVM slot).
	 * Under kvm_pvm that write never completes (measured: the vCPU spins in the kernel at the
	 * far jump); under QEMU it is a flash write cycle (0x00: read array). */
	.balign 8
gdt:
	.quad 0
	.quad 0x00cf9b000000ffff	/* 0x08: flat 32-bit code */
	.quad 0x00cf93000000ffff	/* 0x10: flat data */
gdt_desc:
	.word gdt_desc - gdt - 1
	.long gdt

	.section .resetvec, "ax"
	.code16
	jmp reset16
	.balign 16, 0xf4

	.bss
	.balign 16
	.space 16384
stack_top:
	.section .note.GNU-stack,"",@progbits
