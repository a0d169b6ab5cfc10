/* Legacy (virtio 0.9.5) virtio-blk driver for a transitional device: finds 1af4:1001, drives
 * it only through I/O BAR 0 (no VERSION_1, queue by PFN in the 4096-aligned legacy vring
 * layout, kicks through the queue-notify register), reads sector 0 and prints its CRC32, the
 * queue size, the capacity from the legacy config block and the ISR after completion. */
#include "lib.h"

static inline u16 inw(u16 p) { u16 v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(p)); return v; }

#define RING 0x300000u /* PFN 0x300 */
#define HDR 0x340000u
#define BUF 0x341000u
#define ST 0x342000u

int main(u32 start_info) {
	(void)start_info;
	serial_init();
	u32 s;
	for (s = 0; s < 32; s++)
		if (pci_rd32(0, s, 0, 0) == 0x10011af4u) break;
	if (s == 32) { puts("no transitional virtio-blk\n"); return 0x21; }
	u32 bar = pci_rd32(0, s, 0, 0x10);
	if (!(bar & 1)) { puts("BAR0 is not I/O\n"); return 0x22; }
	if ((bar & ~3u) == 0) { pci_wr32(0, s, 0, 0x10, 0xc000u + (s << 8)); bar = pci_rd32(0, s, 0, 0x10); }
	u16 io = (u16)(bar & ~3u);
	pci_wr16(0, s, 0, 4, 0x5); /* I/O decoding + bus master */
	outb(io + 0x12, 0);
	outb(io + 0x12, 1);
	outb(io + 0x12, 3);
	u32 host = inl(io + 0x00);
	outl(io + 0x04, 0); /* no optional features */
	outw(io + 0x0e, 0);
	u16 qsz = inw(io + 0x0c);
	if (!qsz || qsz > 1024) { puts("bad queue size\n"); return 0x23; }
	u32 avail = RING + 16u * qsz;
	u32 used = (avail + 6 + 2u * qsz + 4095) & ~4095u;
	for (u32 a = RING; a < used + 8 + 8u * qsz; a += 4) wr32(a, 0);
	outl(io + 0x08, RING >> 12);
	outb(io + 0x12, 7); /* ACKNOWLEDGE | DRIVER | DRIVER_OK */
	/* MSI-X is off: the device config starts at 0x14. */
	u32 cap_lo = inl(io + 0x14), cap_hi = inl(io + 0x18);
	wr32(HDR, 0); wr32(HDR + 4, 0); wr32(HDR + 8, 0); wr32(HDR + 12, 0);
	wr8(ST, 0xff);
	u32 d = RING;
	wr32(d, HDR); wr32(d + 4, 0); wr32(d + 8, 16); wr16(d + 12, 1); wr16(d + 14, 1);
	wr32(d + 16, BUF); wr32(d + 20, 0); wr32(d + 24, 512); wr16(d + 28, 3); wr16(d + 30, 2);
	wr32(d + 32, ST); wr32(d + 36, 0); wr32(d + 40, 1); wr16(d + 44, 2); wr16(d + 46, 0);
	wr16(avail + 4, 0);
	barrier();
	wr16(avail + 2, 1);
	barrier();
	outw(io + 0x10, 0);
	for (u64 d = deadline(); before(d) && rd16(used + 2) == 0;) {
	}
	u8 isr = inb(io + 0x13);
	u8 isr2 = inb(io + 0x13);
	puts("legacy indirect "); putdec((host >> 28) & 1);
	puts(" queue_size "); putdec(qsz);
	puts(" capacity "); puthex(((u64)cap_hi << 32) | cap_lo, 10); puts("\n");
	if (rd16(used + 2) != 1) { puts("no completion\n"); return 0x24; }
	puts("read sector 0 status "); putdec(rd8(ST));
	puts(" used.len "); putdec(rd32(used + 8));
	puts(" crc "); puthex(crc32((const u8 *)BUF, 512), 8);
	puts(" isr "); putdec(isr); puts(" then "); putdec(isr2);
	puts(" status "); putdec(inb(io + 0x12)); puts("\n");
	outb(io + 0x12, 0);
	puts("reset pfn "); putdec(inl(io + 0x08)); puts("\n");
	return 0x20;
}
