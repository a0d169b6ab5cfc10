/* virtio-net over a tap: posts 4 receive buffers, transmits one broadcast frame (ethertype
 * 0x88b5, payload "ferry-tx-frame"), then waits for the host's reply frame and prints it. */
#include "virtio.h"

#define RXD 0x310000u
#define RXA 0x311000u
#define RXU 0x312000u
#define RXBUF 0x320000u
#define TXBUF 0x330000u

static void setq(u32 c, u16 q, u32 d, u32 a, u32 u) {
	wr16(c + 0x16, q);
	wr16(c + 0x18, QSZ);
	wr16(c + 0x1a, 0xffff);
	wr32(c + 0x20, d); wr32(c + 0x24, 0);
	wr32(c + 0x28, a); wr32(c + 0x2c, 0);
	wr32(c + 0x30, u); wr32(c + 0x34, 0);
	for (u32 i = 0; i < 0x3000; i += 4) wr32(d + i, 0);
	wr16(c + 0x1c, 1);
}

int main(u32 start_info) {
	(void)start_info;
	serial_init();
	struct vdev n = {0};
	if (!vdev_find(&n, 0x1041)) { puts("no virtio-net\n"); return 0x61; }
	u32 c = n.common;
	wr8(c + 0x14, 0);
	wr8(c + 0x14, 3);
	wr32(c + 0x08, 0); wr32(c + 0x0c, 1u << 5); /* MAC */
	wr32(c + 0x08, 1); wr32(c + 0x0c, 1);       /* VERSION_1 */
	wr8(c + 0x14, 11);
	if (!(rd8(c + 0x14) & 8)) { puts("FEATURES_OK refused\n"); return 0x62; }
	setq(c, 0, RXD, RXA, RXU);
	setq(c, 1, DESC, AVAIL, USED);
	wr8(c + 0x14, 15);
	u32 mult = n.notify_mult;
	for (u32 i = 0; i < 4; i++) {
		desc_set(RXD, i, RXBUF + i * 0x800, 0x800, VIRTQ_F_WRITE, 0);
		wr16(RXA + 4 + 2 * i, (u16)i);
	}
	barrier();
	wr16(RXA + 2, 4);
	wr16(n.notify + 0 * mult, 0);
	for (u32 i = 0; i < 72; i++) wr8(TXBUF + i, 0);
	for (u32 i = 0; i < 6; i++) { wr8(TXBUF + 12 + i, 0xff); wr8(TXBUF + 18 + i, rd8(n.device + i)); }
	wr8(TXBUF + 24, 0x88); wr8(TXBUF + 25, 0xb5);
	const char *msg = "ferry-tx-frame";
	for (u32 i = 0; msg[i]; i++) wr8(TXBUF + 26 + i, (u8)msg[i]);
	desc_set(DESC, 0, TXBUF, 72, 0, 0);
	wr16(AVAIL + 4, 0);
	barrier();
	wr16(AVAIL + 2, 1);
	wr16(n.notify + 1 * mult, 1);
	for (u64 d = deadline(); before(d) && rd16(USED + 2) == 0;) {
	}
	puts(rd16(USED + 2) == 1 ? "tx done\n" : "tx stuck\n");
	/* Skip unrelated frames (IPv6 neighbour discovery etc.), re-posting their buffers. */
	u16 seen = 0, avail = 4;
	for (u32 k = 0; k < 20000000; k++) {
		if (rd16(RXU + 2) == seen) continue;
		u32 e = RXU + 4 + 8 * (seen % QSZ);
		u32 id = rd32(e), len = rd32(e + 4);
		u32 f = RXBUF + (id & 3) * 0x800 + 12;
		seen++;
		if (rd8(f + 12) == 0x88 && rd8(f + 13) == 0xb5) {
			puts("rx ");
			for (u32 i = 0; i < 14; i++) putc((char)rd8(f + 14 + i));
			puts(" len-ok "); putdec(len >= 12 + 14 + 14);
			puts("\n");
			return 0x60;
		}
		wr16(RXA + 4 + 2 * (avail % QSZ), (u16)(id & 3));
		barrier();
		wr16(RXA + 2, ++avail);
		wr16(n.notify, 0);
	}
	puts("rx nothing\n");
	return 0x63;
	return 0x60;
}
