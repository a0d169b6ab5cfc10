/* SMP: the boot CPU wakes the application processors with INIT-SIPI-SIPI (xAPIC ICR,
 * all-excluding-self) as Linux does. Each AP enters a real-mode trampoline at 0x3000 (SIPI vector
 * 3), switches to 32-bit protected mode on its own GDT, and records its local APIC ID (LAPIC ID
 * register) and whether CPUID agrees with it (leaf 1 EBX[31:24] initial APIC ID, leaf 0xB EDX
 * x2APIC ID). The boot CPU waits for the number of CPUs given on the command line (PVH
 * start_info cmdline, decimal), then prints every CPU sorted by APIC ID and exits 0x33. */
#include "lib.h"

#define TRAMPOLINE 0x3000u
#define AP_COUNT 0x280000u   /* APs that have started */
#define AP_SLOT 0x280004u    /* next free record index */
#define AP_RECORDS 0x280100u /* per AP: APIC ID, CPUID agreement */
#define AP_STACKS 0x300000u  /* 4 KiB per AP */
#define LAPIC 0xfee00000u

extern const u8 trampoline_start[], trampoline_end[];
void ap_main(u32 slot);

/* 16-bit entry (copied to TRAMPOLINE), then 32-bit code still inside the copy that takes a record
 * slot, sets up that slot's stack and calls ap_main(slot). */
__asm__(
	".pushsection .text\n"
	".globl trampoline_start\n.globl trampoline_end\n"
	".code16\n"
	"trampoline_start:\n"
	"  cli\n"
	"  xorw %ax, %ax\n"
	"  movw %ax, %ds\n"
	"  lgdtl (tr_gdtdesc - trampoline_start + 0x3000)\n"
	"  movl %cr0, %eax\n"
	"  orl $1, %eax\n"
	"  movl %eax, %cr0\n"
	"  ljmpl $0x08, $(tr_32 - trampoline_start + 0x3000)\n"
	".code32\n"
	"tr_32:\n"
	"  movw $0x10, %ax\n"
	"  movw %ax, %ds\n  movw %ax, %es\n  movw %ax, %ss\n  movw %ax, %fs\n  movw %ax, %gs\n"
	"  movl $1, %eax\n"
	"  lock xaddl %eax, 0x280004\n"
	"  movl %eax, %esp\n"
	"  incl %esp\n"
	"  shll $12, %esp\n"
	"  addl $0x300000, %esp\n"
	"  pushl %eax\n"
	"  movl $ap_main, %ecx\n"
	"  call *%ecx\n"
	"1: cli\n  hlt\n  jmp 1b\n"
	".p2align 3\n"
	"tr_gdt:\n"
	"  .quad 0\n"
	"  .quad 0x00cf9a000000ffff\n"
	"  .quad 0x00cf92000000ffff\n"
	"tr_gdtdesc:\n"
	"  .word 23\n"
	"  .long tr_gdt - trampoline_start + 0x3000\n"
	"trampoline_end:\n"
	".popsection\n");

static void cpuid(u32 leaf, u32 sub, u32 *a, u32 *b, u32 *c, u32 *d) {
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}

/* This CPU's APIC ID, and 1 when CPUID leaves 1 and 0xB (where present) report the same. */
static u32 identify(u32 *agrees) {
	u32 id = rd32(LAPIC + 0x20) >> 24, a, b, c, d, max;
	cpuid(0, 0, &max, &b, &c, &d);
	cpuid(1, 0, &a, &b, &c, &d);
	*agrees = (b >> 24) == id;
	if (max >= 0xb) {
		cpuid(0xb, 0, &a, &b, &c, &d);
		*agrees = *agrees && d == id;
	}
	return id;
}

void ap_main(u32 slot) {
	u32 agrees;
	u32 id = identify(&agrees);
	wr32(AP_RECORDS + slot * 8, id);
	wr32(AP_RECORDS + slot * 8 + 4, agrees);
	__asm__ volatile("lock incl (%0)" ::"r"(AP_COUNT) : "memory");
}

static void icr(u32 low) {
	wr32(LAPIC + 0x310, 0);
	wr32(LAPIC + 0x300, low);
	while (rd32(LAPIC + 0x300) & (1u << 12)) /* delivery pending */
		__asm__ volatile("pause");
}

static void delay(u32 n) {
	for (volatile u32 i = 0; i < n; i++) __asm__ volatile("pause");
}

int main(u32 start_info) {
	marker(1);
	serial_init();
	u32 cmdline = rd32(start_info + 24), want = 0;
	for (u32 p = cmdline; p && rd8(p) >= '0' && rd8(p) <= '9'; p++) want = want * 10 + (u32)(rd8(p) - '0');
	if (want == 0 || want > 64) {
		puts("smp: bad cpu count on the command line\n");
		return 0x34;
	}
	const u8 *s = trampoline_start;
	for (u32 i = 0; s + i < trampoline_end; i++) wr8(TRAMPOLINE + i, s[i]);
	wr32(AP_COUNT, 0);
	wr32(AP_SLOT, 0);
	barrier();
	wr32(LAPIC + 0xf0, rd32(LAPIC + 0xf0) | 0x100); /* software-enable the LAPIC */
	if (want > 1) {
		icr(0x000c4500); /* INIT, assert, all excluding self */
		delay(10000);
		icr(0x000c0500); /* INIT de-assert (level), as the MP spec's sequence */
		delay(10000);
		icr(0x000c4600 | (TRAMPOLINE >> 12)); /* SIPI */
		delay(2000);
		icr(0x000c4600 | (TRAMPOLINE >> 12));
	}
	while (rd32(AP_COUNT) < want - 1) __asm__ volatile("pause");
	u32 bsp_agrees, ids[64], agree[64], n = want - 1;
	for (u32 i = 0; i < n; i++) {
		ids[i] = rd32(AP_RECORDS + i * 8);
		agree[i] = rd32(AP_RECORDS + i * 8 + 4);
	}
	ids[n] = identify(&bsp_agrees);
	agree[n] = bsp_agrees;
	n++;
	for (u32 i = 1; i < n; i++) /* insertion sort by APIC ID */
		for (u32 j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
			u32 t = ids[j]; ids[j] = ids[j - 1]; ids[j - 1] = t;
			t = agree[j]; agree[j] = agree[j - 1]; agree[j - 1] = t;
		}
	puts("smp: cpus=");
	putdec(n);
	puts("\n");
	for (u32 i = 0; i < n; i++) {
		puts("smp: apic ");
		putdec(ids[i]);
		puts(agree[i] ? " cpuid agrees\n" : " cpuid DIFFERS\n");
	}
	marker(2);
	return 0x33;
}
