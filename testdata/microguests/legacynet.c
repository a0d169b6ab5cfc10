/* Legacy (virtio 0.9.5) virtio-net over a tap, through I/O BAR 0 of a transitional device
 * (1af4:1000): no VERSION_1, so every frame carries the 10-byte legacy header. Posts 4 receive
 * buffers, transmits one broadcast frame (ethertype 0x88b5, "ferry-tx-frame"), waits for the
 * host's reply and prints it. */
#include "lib.h"

static inline u16 inw(u16 p) { u16 v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(p)); return v; }

#define HDR 10
#define RXBUF 0x320000u
#define TXBUF 0x330000u

struct lq { u32 desc, avail, used; u16 size; };

static void desc(u32 t, u32 i, u32 addr, u32 len, u16 flags) {
	u32 d = t + 16 * i;
	wr32(d, addr); wr32(d + 4, 0); wr32(d + 8, len); wr16(d + 12, flags); wr16(d + 14, 0);
}

static struct lq setup(u16 io, u16 q, u32 ring) {
	struct lq l;
	outw(io + 0x0e, q);
	l.size = inw(io + 0x0c);
	l.desc = ring;
	l.avail = ring + 16u * l.size;
	l.used = (l.avail + 6 + 2u * l.size + 4095) & ~4095u;
	for (u32 a = ring; a < l.used + 8 + 8u * l.size; a += 4) wr32(a, 0);
	outl(io + 0x08, ring >> 12);
	return l;
}

int main(u32 start_info) {
	(void)start_info;
	serial_init();
	u32 s;
	for (s = 0; s < 32; s++)
		if (pci_rd32(0, s, 0, 0) == 0x10001af4u) break;
	if (s == 32) { puts("no transitional virtio-net\n"); return 0x61; }
	u32 bar = pci_rd32(0, s, 0, 0x10);
	if ((bar & ~3u) == 0) { pci_wr32(0, s, 0, 0x10, 0xc000u + (s << 8)); bar = pci_rd32(0, s, 0, 0x10); }
	u16 io = (u16)(bar & ~3u);
	pci_wr16(0, s, 0, 4, 0x5);
	outb(io + 0x12, 0);
	outb(io + 0x12, 3);
	outl(io + 0x04, 1u << 5); /* MAC only */
	struct lq rx = setup(io, 0, 0x300000u), tx = setup(io, 1, 0x310000u);
	outb(io + 0x12, 7);
	for (u32 i = 0; i < 4; i++) {
		desc(rx.desc, i, RXBUF + i * 0x800, 0x800, 2);
		wr16(rx.avail + 4 + 2 * i, (u16)i);
	}
	barrier();
	wr16(rx.avail + 2, 4);
	outw(io + 0x10, 0);
	for (u32 i = 0; i < 80; i++) wr8(TXBUF + i, 0);
	for (u32 i = 0; i < 6; i++) { wr8(TXBUF + HDR + i, 0xff); wr8(TXBUF + HDR + 6 + i, inb(io + 0x14 + i)); }
	wr8(TXBUF + HDR + 12, 0x88); wr8(TXBUF + HDR + 13, 0xb5);
	const char *msg = "ferry-tx-frame";
	for (u32 i = 0; msg[i]; i++) wr8(TXBUF + HDR + 14 + i, (u8)msg[i]);
	desc(tx.desc, 0, TXBUF, HDR + 60, 0);
	wr16(tx.avail + 4, 0);
	barrier();
	wr16(tx.avail + 2, 1);
	outw(io + 0x10, 1);
	for (u64 d = deadline(); before(d) && rd16(tx.used + 2) == 0;) {
	}
	puts(rd16(tx.used + 2) == 1 ? "tx done\n" : "tx stuck\n");
	u16 seen = 0, avail = 4;
	for (u32 k = 0; k < 20000000; k++) {
		if (rd16(rx.used + 2) == seen) continue;
		u32 e = rx.used + 4 + 8 * (seen % rx.size);
		u32 id = rd32(e), len = rd32(e + 4);
		u32 f = RXBUF + (id & 3) * 0x800 + HDR;
		seen++;
		if (rd8(f + 12) == 0x88 && rd8(f + 13) == 0xb5) {
			puts("rx ");
			for (u32 i = 0; i < 14; i++) putc((char)rd8(f + 14 + i));
			puts(" len-ok "); putdec(len >= HDR + 14 + 14);
			puts("\n");
			return 0x60;
		}
		wr16(rx.avail + 4 + 2 * (avail % rx.size), (u16)(id & 3));
		barrier();
		wr16(rx.avail + 2, ++avail);
		outw(io + 0x10, 0);
	}
	puts("rx nothing\n");
	return 0x63;
}
