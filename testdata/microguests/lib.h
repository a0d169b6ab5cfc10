/* Tiny freestanding library for Ferry's micro-guests (32-bit, paging off, polled I/O only). */
#ifndef FERRY_MICROGUEST_LIB_H
#define FERRY_MICROGUEST_LIB_H
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

#define DEBUG_EXIT_PORT 0xf4 /* QEMU isa-debug-exit / Ferry debug-exit */
#define MARKER_PORT 0x80     /* Ferry boot-marker port (ignored by QEMU) */
#define COM1 0x3f8

static inline void outb(u16 p, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(p)); }
static inline void outw(u16 p, u16 v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(p)); }
static inline void outl(u16 p, u32 v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(p)); }
static inline u8 inb(u16 p) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline u32 inl(u16 p) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline u8 rd8(u32 a) { return *(volatile u8 *)a; }
static inline u16 rd16(u32 a) { return *(volatile u16 *)a; }
static inline u32 rd32(u32 a) { return *(volatile u32 *)a; }
static inline void wr8(u32 a, u8 v) { *(volatile u8 *)a = v; }
static inline void wr16(u32 a, u16 v) { *(volatile u16 *)a = v; }
static inline void wr32(u32 a, u32 v) { *(volatile u32 *)a = v; }
/* Time-stamp counter: waits for a device are bounded in time, not in loop turns (a loop
 * count that is seconds on kvm_pvm is milliseconds under TCG, less than a loaded host may
 * take to run QEMU's or the runtime's device thread). */
static inline u64 rdtsc(void) { u32 lo, hi; __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi)); return ((u64)hi << 32) | lo; }
/* About 5-10 s of TSC ticks on current hosts: only a device that never answers waits it out. */
#define WAIT_TICKS (1ull << 34)
static inline u64 deadline(void) { return rdtsc() + WAIT_TICKS; }
static inline int before(u64 d) { return rdtsc() < d; }
static inline void barrier(void) { __asm__ volatile("lock; addl $0,(%%esp)" ::: "memory"); }

static __attribute__((unused)) void serial_init(void) {
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x80);
	outb(COM1 + 0, 0x01);
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03);
	outb(COM1 + 4, 0x03);
}
static __attribute__((unused)) void putc(char c) {
	while (!(inb(COM1 + 5) & 0x20)) {
	}
	outb(COM1, (u8)c);
}
static __attribute__((unused)) void puts(const char *s) { while (*s) { if (*s == '\n') putc('\r'); putc(*s++); } }
static __attribute__((unused)) void puthex(u64 v, int digits) {
	static const char h[] = "0123456789abcdef";
	for (int i = digits - 1; i >= 0; i--) putc(h[(v >> (i * 4)) & 0xf]);
}
static __attribute__((unused)) void putdec(u32 v) {
	char b[11]; int n = 0;
	do { b[n++] = (char)('0' + v % 10); v /= 10; } while (v);
	while (n) putc(b[--n]);
}
static __attribute__((unused)) void marker(u8 code) { outb(MARKER_PORT, code); }
void guest_exit(u32 code) {
	outb(DEBUG_EXIT_PORT, (u8)code);
	for (;;) __asm__ volatile("cli; hlt");
}

static __attribute__((unused)) u32 pci_addr(u32 bus, u32 slot, u32 fn, u32 off) {
	return 0x80000000u | bus << 16 | slot << 11 | fn << 8 | (off & 0xfc);
}
static __attribute__((unused)) u32 pci_rd32(u32 b, u32 s, u32 f, u32 off) { outl(0xcf8, pci_addr(b, s, f, off)); return inl(0xcfc); }
static __attribute__((unused)) void pci_wr32(u32 b, u32 s, u32 f, u32 off, u32 v) { outl(0xcf8, pci_addr(b, s, f, off)); outl(0xcfc, v); }
static __attribute__((unused)) u16 pci_rd16(u32 b, u32 s, u32 f, u32 off) { return (u16)(pci_rd32(b, s, f, off) >> ((off & 2) * 8)); }
static __attribute__((unused)) u8 pci_rd8(u32 b, u32 s, u32 f, u32 off) { return (u8)(pci_rd32(b, s, f, off) >> ((off & 3) * 8)); }
static __attribute__((unused)) void pci_wr16(u32 b, u32 s, u32 f, u32 off, u16 v) {
	outl(0xcf8, pci_addr(b, s, f, off));
	outw((u16)(0xcfc + (off & 2)), v);
}

static __attribute__((unused)) u32 crc32(const u8 *p, u32 n) {
	u32 c = 0xffffffffu;
	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return ~c;
}
#endif
